# SPDX-License-Identifier: GPL-3.0-or-later
"""The execution environment (EE): execution-environment.yml built with ansible-builder, pushed to a registry, and
the site job run inside it by ansible-runner with podman process isolation -- as AWX runs a job.

Default tier (seconds): ``ansible-builder create`` generates the real build context from execution-environment.yml,
and what the build's stages do with this collection runs on this machine: the galaxy stage's
``ansible-galaxy collection install -r requirements.yml`` (dependencies left out), the builder stage's introspection
of meta/execution-environment.yml, and bindep on meta/ee-bindep.txt.

Opt-in tier (``VLLM_INFRA_REGISTRY_FULL=1``, the registry tests' switch; several minutes on a loaded 2-core
machine: the build alone takes about a minute cold or warm, the job starts a vLLM server),
test_ee_built_pushed_and_site_job_run_inside_it:

1. ``ansible-builder build`` of the repository's execution-environment.yml, unchanged, with only what this machine
   forces swapped (tests/support/ee.py says each): the base image (localhost/vllm-infra-ee-base, Debian 13 made with
   debootstrap, for quay.io/centos/centos:stream9: no registry is reachable), its Python (a venv of Debian's
   python3.13 for the base's python3.12) and package manager (apt-get behind dnf's verbs), the dependency
   collections (containers.podman, ansible.posix, community.general from this machine's ansible bundle, listed in
   ee/requirements.yml and installed ``--offline``, for Galaxy or an Automation Hub), and the host's CA bundle
   mounted into the build for pip (HTTPS here is intercepted).
2. ``podman push`` to a real registry (tests/support/registry.py: distribution 2.8, TLS with a test CA trusted
   through certs.d, htpasswd login), then the local image removed.
3. ``ansible_runner.run(process_isolation=True, process_isolation_executable="podman", container_image=<registry
   ref>)`` with what AWX adds for an EE (awx/main/tasks/jobs.py): ``container_auth_data`` from the EE's registry
   credential (ansible-runner writes the auth file and passes --authfile), ``--user=root``, ``--pull=<the EE's pull
   policy>`` (docs/awx/job_templates.yml: missing), the survey's destination exposed to the job as a volume
   (AWX's "Paths to expose to isolated jobs"), the machine credential's key in env/ssh_key (ssh-agent in the EE),
   and AWX's ANSIBLE_HOST_KEY_CHECKING=False. Podman pulls the EE from the registry (nothing is left locally).
   The job reaches its GPU host over SSH: the test's own sshd (tests/support/sshd.py) on 127.0.0.1:<free port>,
   as root, so the role runs against this machine's podman with the vLLM CPU image.

What still differs from a real AWX: the EE container runs with ``--network host`` (AWX's default is slirp4netns)
so that it reaches the loopback sshd, which stands for a GPU host on the network; the "GPU host" is this Debian 12
machine without a GPU (vLLM on CPU, playbooks/vars/cpu_demo.yml), its sshd sessions get CONTAINERS_CONF (runc,
cgroupfs); AWX's project sync is a copy of playbooks/ into the private data dir, its inventory a YAML file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import ansible_runner
import pytest
import yaml
from support import ansible, awx, ee, output, podman, registry, sshd

REPO = ansible.REPO
FULL = os.environ.get("VLLM_INFRA_REGISTRY_FULL") == "1"
full_tier = pytest.mark.skipif(not FULL, reason="opt-in tier: set VLLM_INFRA_REGISTRY_FULL=1 to run it")


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=ansible.env(), text=True, capture_output=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"{cmd} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    """The EE definition copied with its files, the collection built beside it, then `ansible-builder create`."""
    work = tmp_path_factory.mktemp("ee")
    shutil.copy(REPO / "execution-environment.yml", work)
    (work / "ee").mkdir()
    shutil.copy(REPO / "ee" / "requirements.yml", work / "ee")
    run("ansible-galaxy", "collection", "build", "--force", "--output-path", work / "ee" / "collections", REPO)
    run("ansible-builder", "create", "-f", work / "execution-environment.yml", "-c", work / "context", "-v3")
    listing = sorted(str(p.relative_to(work / "context")) for p in (work / "context").rglob("*") if p.is_file())
    print("\nansible-builder create context:\n  " + "\n  ".join(listing))
    return work / "context"


def test_definition_is_version_3_with_the_collection(context: Path) -> None:
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    containerfile = (context / "Containerfile").read_text()
    # ansible-core and ansible-runner for the EE's Python 3.12, the galaxy stage installing requirements.yml,
    # the introspection of the installed collections, and the final image's checks.
    assert 'ARG PYCMD="/usr/bin/python3.12"' in containerfile
    assert "ansible-core>=2.17,<2.22 ansible-runner" in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "introspect.py introspect" in containerfile
    assert "RUN /output/scripts/check_ansible $PYCMD" in containerfile


def test_requirements_point_at_the_tarball_in_the_context(context: Path) -> None:
    """The tarball ee/requirements.yml names is the one the build context carries, at galaxy.yml's version."""
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    (entry,) = requirements["collections"]
    assert entry["type"] == "file"
    assert entry["name"] == f"/build/collections/vllm_infra-profiling-{version}.tar.gz"
    assert (context / "_build" / "collections" / f"vllm_infra-profiling-{version}.tar.gz").is_file()


def test_galaxy_stage_installs_the_collection_and_introspection_finds_its_requirements(
    context: Path, tmp_path: Path
) -> None:
    """The galaxy stage's install (the image's /build is the context's _build/), then the builder's introspect."""
    build = context / "_build"
    requirements = (build / "requirements.yml").read_text().replace("/build/", f"{build}/")
    (tmp_path / "requirements.yml").write_text(requirements)
    installed = tmp_path / "collections"
    # --no-deps: containers.podman, ansible.posix and community.general come from Galaxy in a real build.
    run(
        "ansible-galaxy", "collection", "install", "--force", "--no-deps",
        "-r", tmp_path / "requirements.yml", "-p", installed,
    )  # fmt: skip
    meta = installed / "ansible_collections" / "vllm_infra" / "profiling" / "meta"
    assert (meta / "execution-environment.yml").is_file()
    out = run("ansible-builder", "introspect", "--sanitize", installed).stdout
    print(out)
    deps = yaml.safe_load(out.split("\n", 1)[1])
    python = [line.split("#")[0].strip() for line in deps["python"]]
    system = [line.split("#")[0].strip() for line in deps["system"]]
    # PyYAML is listed too, but ansible-builder drops it: ansible-core already brings it. msgspec and isal:
    # trace_summary's optional fast JSON decoding and gzip inflate.
    assert python == ["requests>=2.25", "msgspec>=0.18", "isal>=1.0"]
    assert "openssh-clients [platform:rpm]" in system
    assert "openssh-client [platform:dpkg]" in system


def test_bindep_file_parses_and_selects_ssh_by_default(tmp_path: Path) -> None:
    """bindep (as the builder stage runs it) reads meta/ee-bindep.txt; podman only with its profile."""
    shutil.copy(REPO / "meta" / "ee-bindep.txt", tmp_path / "bindep.txt")
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bindep", "-l", "newline", "-f", "bindep.txt"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    listed = proc.stdout.split()
    assert proc.returncode in (0, 1), proc.stderr
    assert "openssh-client" in listed  # this machine is Debian: the dpkg entry
    assert "podman" not in listed


def test_offline_build_directory_installs_with_its_dependencies(tmp_path: Path) -> None:
    """The galaxy stage of the offline build (tests/support/ee.py), run here: this collection and its dependency
    collections from ee/collections/, ``--offline``; ansible-galaxy resolves galaxy.yml's dependencies from them."""
    work = tmp_path / "build"
    work.mkdir()
    made = ee.build_dir(work)
    requirements = (
        (work / "ee" / "requirements.yml").read_text().replace("/build/collections/", f"{work}/ee/collections/")
    )
    (tmp_path / "requirements.yml").write_text(requirements)
    installed = tmp_path / "collections"
    # Not --force-with-deps: the resolver must take the dependencies from the listed directories, and
    # ANSIBLE_COLLECTIONS_PATH names only the target, so this machine's own collections do not count as installed.
    proc = subprocess.run(
        ["ansible-galaxy", "collection", "install", "--offline", "-r", str(tmp_path / "requirements.yml"),
         "-p", str(installed)],
        env={**ansible.env(), "ANSIBLE_COLLECTIONS_PATH": str(installed), "HOME": str(tmp_path)},
        cwd=tmp_path, text=True, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for fqcn, version in made.items():
        namespace, name = fqcn.split(".")
        manifest = installed / "ansible_collections" / namespace / name / "MANIFEST.json"
        assert json.loads(manifest.read_text())["collection_info"]["version"] == version, fqcn


def inspect_once_running(name: str) -> subprocess.Popen[str]:
    """``podman inspect NAME`` as soon as ansible-runner's container runs (it is started with --rm, so the test
    cannot inspect it afterwards). A child process, not a thread: ansible-runner forks its pty from this one."""
    return subprocess.Popen(
        # Not `until podman inspect`: for a missing container it prints "[]" too.
        ["sh", "-c", f'until out=$(podman inspect "{name}" 2>/dev/null); do sleep 1; done; printf "%s" "$out"'],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=podman.env(),
    )  # fmt: skip


@full_tier
@pytest.mark.podman
@pytest.mark.vllm
def test_ee_built_pushed_and_site_job_run_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("CONTAINERS_CONF", podman.env()["CONTAINERS_CONF"])  # ansible-runner's podman runs with it
    ours: list[str] = []  # this test's image names; the build's layer cache (unnamed stage images) stays
    request.addfinalizer(lambda: [podman.run("rmi", "--force", name, check=False) for name in ours])
    vllm_image = podman.ensure_image("vllm-cpu-tiny")
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]

    # 1. The build.
    work = tmp_path / "build"
    work.mkdir()
    made = ee.build_dir(work)
    local = f"localhost/{podman.unique_name('ee')}:{version}"
    ours.append(local)
    build_log = tmp_path / "ansible-builder.log"
    took = ee.build(work, local, build_log)
    log = build_log.read_text()
    cached, steps = log.count("--> Using cache"), sum(1 for line in log.splitlines() if "] STEP " in line)
    info = podman.inspect(local)
    image_id, size = info["Id"], info["Size"]
    print(f"\nansible-builder build: {local} id {image_id[:12]} size {size / 1e6:.0f} MB in {took:.1f} s"
          f" ({cached} of {steps} steps from podman's layer cache)")  # fmt: skip
    assert info["Config"]["Labels"]["ansible-execution-environment"] == "true"
    assert info["Config"]["User"] == "1000"
    listing = podman.run("run", "--rm", local, "ansible-galaxy", "collection", "list", "--format", "json").stdout
    in_image = {fqcn: meta["version"] for path in json.loads(listing).values() for fqcn, meta in path.items()}
    print("collections in the EE:", in_image)
    assert in_image == made
    output.record(
        "execution_environment",
        ee_build_s=round(took, 1),
        ee_build_cached_steps=f"{cached}/{steps}",
        ee_size_mb=round(size / 1e6),
    )

    template = awx.job_template("playbooks/site.yml")
    pull = awx.load()["execution_environment"]["pull"]
    with registry.running() as reg:
        # 2. Push, then nothing of it left locally.
        ref = reg.ref(f"vllm-infra-profiling-ee:{version}")
        ours.append(ref)
        auth = tmp_path / "operator-auth" / "auth.json"
        auth.parent.mkdir(mode=0o700)
        login = subprocess.run(
            ["podman", "login", "--authfile", str(auth), "--username", reg.username, "--password-stdin", reg.host],
            input=reg.password, text=True, capture_output=True, env=podman.env(), check=False,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        start = time.monotonic()
        pushed = podman.run("push", "--authfile", str(auth), local, ref, timeout=900)
        print(f"podman push {local} {ref} ({time.monotonic() - start:.1f} s):\n{pushed.stderr.strip()}")
        output.record("execution_environment", ee_push_s=round(time.monotonic() - start, 1))
        podman.run("rmi", local)
        for gone in (local, ref):
            assert podman.run("image", "exists", gone, check=False).returncode == 1, gone
        print(f"podman rmi {local}: neither {local} nor {ref} is in the local store")
        log_before_job = len(reg.log_text())

        with sshd.running({"CONTAINERS_CONF": podman.env()["CONTAINERS_CONF"]}) as host:
            private = tmp_path / "private"
            captures = tmp_path / "captures"  # the host side of the exposed path
            captures.mkdir()
            answers = {
                "vllm_fleet_prepare": "false",  # never install drivers on this machine
                "vllm_profile_image": vllm_image,
                "vllm_profile_model": "/models/tiny-qwen3",
                "vllm_profile_restore": "remove",
                "vllm_profile_max_tokens": "8",
                "vllm_profile_run_id": "ee-job-43",
            }
            extra_vars = awx.job_extra_vars(template, answers)
            dest = extra_vars["vllm_profile_dest"]  # the survey's default, a path inside the EE
            demo = yaml.safe_load((REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
            container = podman.unique_name("ee-gpu1")
            gpu_host = {
                "ansible_host": host.host,
                "ansible_port": host.port,
                "ansible_user": host.user,
                "ansible_python_interpreter": "/usr/bin/python3",
                "vllm_profile_container_name": container,
                "vllm_profile_port": podman.free_port(),
                "vllm_profile_capture_dir_host": str(tmp_path / "gpu1" / "traces"),
                "vllm_profile_cache_dir": str(tmp_path / "gpu1" / "cache"),
            }
            awx.write_private_data_dir(
                private,
                {"all": {"children": {"vllm_hosts": {"hosts": {"gpu1": gpu_host}, "vars": demo}}}},
                extra_vars,
                {"ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1"},
            )
            (private / "env" / "ssh_key").write_text(host.private_key.read_text())
            # AWX's project sync: the project checkout inside the private data dir.
            shutil.copytree(REPO / "playbooks", private / "project" / "playbooks")
            ident = podman.unique_name("job")  # AWX's job id; ansible-runner names its container after it
            watcher = inspect_once_running(f"ansible_runner_{ident}")
            try:
                runner = ansible_runner.run(
                    private_data_dir=str(private),
                    playbook=template["playbook"],
                    forks=template["forks"],
                    ident=ident,
                    quiet=True,
                    timeout=1200,
                    process_isolation=True,
                    process_isolation_executable="podman",
                    container_image=ref,
                    container_auth_data={
                        "host": reg.host, "username": reg.username, "password": reg.password, "verify_ssl": True
                    },
                    container_options=["--user=root", f"--pull={pull}", "--network=host"],
                    container_volume_mounts=[f"{captures}:{dest}:z"],
                )  # fmt: skip
            finally:
                if watcher.poll() is None:
                    watcher.terminate()
                inspected_text = watcher.communicate(timeout=30)[0]
                podman.remove(container)
            stdout = runner.stdout.read()
            sshd_log = host.log_text()
        registry_log = reg.log_text()[log_before_job:]
        pulled = podman.run("image", "inspect", ref, check=False)
        secrets = registry.secret_forms(reg.password, reg.username)

    events = list(runner.events)
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
    print(f"ansible-runner: status {runner.status}, rc {runner.rc}")
    print("\n".join(line for line in stdout.splitlines() if line.startswith(("PLAY RECAP", "gpu1 ", "localhost "))))
    assert runner.status == "successful" and runner.rc == 0, stdout[-8000:]

    # Podman pulled the EE from the registry during the job (the registry's log after the push) ...
    manifest = f"/v2/vllm-infra-profiling-ee/manifests/{version}"
    pulls = [line for line in registry_log.splitlines() if f'"GET {manifest} ' in line]  # the access log's lines
    blobs = [line for line in registry_log.splitlines() if '"GET /v2/vllm-infra-profiling-ee/blobs/' in line]
    print("registry log during the job, the EE's manifest:\n  " + "\n  ".join(pulls))
    print(f"  ... and {len(blobs)} layer/config blobs fetched (the others were in the local layer cache)")
    assert pulls, registry_log[-3000:]
    assert pulled.returncode == 0, f"{ref} is not in the local store after the job: {pulled.stderr}"
    pulled_id = json.loads(pulled.stdout)[0]["Id"]
    print(f"pulled: {ref} id {pulled_id[:12]}")
    assert pulled_id == image_id
    # ... and the job reached its host over SSH with the machine credential's key.
    accepted = [line for line in sshd_log.splitlines() if line.startswith("Accepted publickey for root")]
    print("sshd:", accepted[:1])
    assert accepted, sshd_log[-3000:]

    # What AWX shows: per-host events, the recap, the set_stats artifact.
    ok_tasks = [
        e["event_data"]["task"]
        for e in events
        if e["event"] == "runner_on_ok" and e["event_data"].get("host") == "gpu1"
    ]
    assert any(task.startswith("Fetch") for task in ok_tasks), ok_tasks
    assert not [e for e in events if e["event"] in ("runner_on_failed", "runner_on_unreachable")]
    assert stats["failures"] == {} and stats["dark"] == {} and stats["ok"]["gpu1"] > 0, stats
    artifact = stats["artifact_data"]["vllm_profile"]
    print("artifact:", json.dumps({k: artifact[k] for k in ("run_id", "captured", "failed")}),
          json.dumps(artifact["hosts"]["gpu1"], sort_keys=True))  # fmt: skip
    assert artifact["run_id"] == "ee-job-43" and artifact["captured"] == ["gpu1"] and artifact["failed"] == []
    gpu1 = artifact["hosts"]["gpu1"]
    assert gpu1["status"] == "captured" and gpu1["files"] >= 1 and gpu1["headline"]
    assert gpu1["dest"] == f"{dest}/ee-job-43/gpu1"

    # The capture on the host side: the exposed path outlives the job's container.
    on_host = sorted(str(p.relative_to(captures)) for p in captures.rglob("*") if p.is_file())
    print("captures on the host:\n  " + "\n  ".join(on_host))
    assert len([p for p in on_host if p.startswith("ee-job-43/gpu1/")]) >= gpu1["files"], on_host
    assert (captures / Path(gpu1["report"]).relative_to(dest)).is_file()
    assert (captures / Path(artifact["fleet_report"]).relative_to(dest)).is_file()
    job = private / "artifacts" / ident
    assert (job / "rc").read_text().strip() == "0" and (job / "status").read_text().strip() == "successful"

    # The registry password: not in the job's output, events or records, nor in podman inspect of the job's container.
    assert inspected_text, "ansible-runner's container was never seen running"
    inspected = json.loads(inspected_text)[0]
    assert any(arg.startswith("--authfile=") for arg in inspected["Config"]["CreateCommand"])
    records = "\n".join(p.read_text(errors="replace") for p in private.rglob("*") if p.is_file())
    for secret in secrets:
        assert secret not in stdout and secret not in json.dumps(events)
        assert secret not in records and secret not in inspected_text
