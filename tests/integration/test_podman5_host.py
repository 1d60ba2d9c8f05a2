# SPDX-License-Identifier: GPL-3.0-or-later
"""The vllm_profile role and CDI on a real podman 5: STAND-IN hosts of Debian 13 (podman 5.4.2).

The hosts (tests/support/podman5_host.py, image tools/images/debian13-host) stand for fresh RHEL 9.5+ GPU hosts
with podman 5.x. They are privileged containers reached through the containers.podman.podman connection, as
root (become not needed). What still differs from RHEL 9: Debian userland and apt, no SELinux (label=disable
changes nothing here), runc and cgroupfs on cgroups v1 (RHEL: crun, systemd, cgroups v2), no GPU: the vLLM
image is the harness's CPU build (localhost/vllm-cpu-tiny, user 1001:0) and CDI device nodes are made with
mknod, without a driver behind them.

* (a) ``test_bare_host_*``: a host WITHOUT podman. With prerequisites installation off the host fails with the
  preflight sentence that names what to install; with ``vllm_profile_install_prerequisites: true`` the role
  installs podman and catatonit with apt, launches and profiles: 10 engine steps fetched to the controller.
* (b) ``test_rootful_keep_id_*``: the same run as (a)'s second, once the role installed podman; the README's
  minimal vars (only image, model
  and devices swapped for the CPU harness): ``vllm_profile_userns: auto`` resolves to keep-id with the image's
  uid on rootful podman 5 (``keep-id:uid=1001``), and the INNER ``podman inspect`` shows it, with label=disable
  and shm 8g.
* (c) ``test_cdi_*``: NVIDIA's own CDI specs of cdiVersion 0.6.0 and 0.7.0 (tests/fixtures/cdi, generated
  on Tesla T4 hosts) applied by the real podman 5 (the one the role installed in (a)) with
  ``--device nvidia.com/gpu=0``; and a cdiVersion sweep whose outcome must match the collection's
  podman/cdiVersion table (plugins/module_utils/_cdi.py). Debian builds
  podman 5.4.2 with its own CDI library package (Built-Using: golang-tags.cncf-container-device-interface
  0.8.0), the same CDI v0.8.0 that upstream podman vendors since 5.2.
"""

from __future__ import annotations

import json
import re
import shlex
import time
import typing as t
from pathlib import Path

import pytest
import yaml
from support import ansible, podman, podman5_host
from support.traces import engine_steps
from support.vllm import TINY_MODEL, TINY_SERVER_ARGS

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _cdi

pytestmark = [pytest.mark.podman]

REPO = ansible.REPO
PLAYBOOK = "playbooks/profile_torch.yml"
CPU_IMAGE = "localhost/vllm-cpu-tiny:0.32.0"
SMALL_IMAGE = "localhost/vllm-infra-debian12:latest"
HF_TOKEN = "hf_vllmInfraPodman5Token0123456789ab"
FIXTURES = REPO / "tests" / "fixtures" / "cdi"
CDI_FIXTURES = {
    "0.6.0": FIXTURES / "v0.6.0_tesla-t4_g4dn_docker-docs.yaml.txt",
    "0.7.0": FIXTURES / "v0.7.0_tesla-t4_gcp_ctk-1.20.0_kwx4957-study.yaml.txt",
}
# Timings and `podman inspect` lines, printed at the end of each test (pytest -s / -rA shows them).
MEASURED: dict[str, t.Any] = {}


def minimal_vars(tmp: Path, **overrides: t.Any) -> dict[str, t.Any]:
    """README.md "A minimal my-vars.yml", with only image, model and devices swapped for the CPU harness,
    plus the tiny server's arguments and this test's unique container name, port and controller destination."""
    variables = {
        # README's minimal vars, CPU swap:
        "vllm_profile_image": CPU_IMAGE,
        "vllm_profile_model": TINY_MODEL,
        "vllm_profile_devices": [],
        "vllm_profile_hf_token": HF_TOKEN,  # README: "{{ vault_hf_token }}"
        "vllm_profile_max_tokens": 10,
        # the tiny model's server arguments (as playbooks/vars/cpu_demo.yml)
        "vllm_profile_extra_args": list(TINY_SERVER_ARGS),
        # unique names/ports, and the controller destination in the test's directory
        "vllm_profile_container_name": podman.unique_name("p5role"),
        "vllm_profile_port": podman.free_port(),
        "vllm_profile_dest": str(tmp / "captures"),
    }
    variables.update(overrides)
    return variables


def run_role(tmp: Path, host: podman5_host.Host, variables: dict[str, t.Any], label: str):
    inventory = podman5_host.write_inventory(tmp / f"inventory-{label}.json", podman5_host.inventory({"p5": host}))
    started = time.monotonic()
    proc = ansible.run_playbook(
        PLAYBOOK, variables, inventory=inventory, timeout=1800,
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",  # one result per line: the host line is one JSON string
    )  # fmt: skip
    MEASURED[f"{label}: playbook_s"] = round(time.monotonic() - started, 1)
    MEASURED[f"{label}: recap"] = [line for line in proc.stdout.splitlines() if re.match(r"^\S+\s+: ok=", line)]
    (tmp / f"{label}.log").write_text(proc.stdout + proc.stderr)
    return proc


def fetched_worker_traces(dest: Path) -> list[Path]:
    return sorted(dest.glob("*/p5/*rank0*.pt.trace.json.gz"))


@pytest.fixture(scope="module", autouse=True)
def report_measurements():
    yield
    print("\n== podman 5 stand-in measurements ==")
    for key, value in MEASURED.items():
        print(f"{key}: {value}")


# --------------------------------------------------------------------------- hosts


@pytest.fixture(scope="module")
def installed_host(bare_host_runs):
    """The bare host once the role has installed podman 5 on it (its second run): the CDI checks run there rather
    than on a host of their own whose podman an admin installs (measured: ~15 CPU-s more on 2 shared cores, for the
    same podman 5.4.2 from the same apt repository)."""
    host = bare_host_runs["host"]
    if bare_host_runs["installed"].returncode != 0:
        pytest.fail(f"the role did not install podman on the bare host: {bare_host_runs['installed'].stdout}")
    # (its podman --version is in MEASURED["bare host after install"] already)
    MEASURED[f"{SMALL_IMAGE} available via"] = host.make_available(SMALL_IMAGE)
    MEASURED["image availability timings"] = {k: round(v, 2) for k, v in host.timings.items()}
    return host


# --------------------------------------------------------------------------- (c) CDI on podman 5

# A STAND-IN for NVIDIA's nvidia-cdi-hook (the specs' createContainer hooks): it records its arguments.
HOOK_LOG = "/var/log/vit-cdi-hook-standin.log"
HOOK_STANDIN = f"""#!/bin/sh
# STAND-IN nvidia-cdi-hook (vllm_infra.profiling tests, not NVIDIA's): records the call, changes nothing.
echo "$*" >> {HOOK_LOG}
"""
# Conventional major numbers of NVIDIA's device nodes, for specs that leave them to the host (0.6.0's).
DEFAULT_MAJOR = {"nvidia-uvm": 234, "nvidia-caps": 237, "dri": 226}


def node_numbers(node: dict[str, t.Any]) -> tuple[int, int]:
    path = node.get("hostPath") or node["path"]
    base = path.rsplit("/", 1)[-1]
    if "major" in node:
        return node["major"], node.get("minor", 0)
    if base.startswith("nvidia-uvm"):
        return DEFAULT_MAJOR["nvidia-uvm"], 1 if base.endswith("tools") else 0
    if base == "nvidiactl":
        return 195, 255
    if base == "nvidia-modeset":
        return 195, 254
    match = re.match(r"nvidia(\d+)$", base)
    return 195, int(match.group(1)) if match else 0


def stage_host_for_spec(host: podman5_host.Host, spec: dict[str, t.Any]) -> None:
    """Make the spec's host side exist on the stand-in: device nodes (mknod, same major/minor as the GPU host's,
    no driver behind them), empty files where the driver's libraries and binaries would be, stand-in hooks."""
    script = ["set -e"]
    blocks = [spec.get("containerEdits") or {}] + [d.get("containerEdits") or {} for d in spec.get("devices") or []]
    seen: set[str] = set()
    for block in blocks:
        for node in block.get("deviceNodes") or []:
            path = node.get("hostPath") or node["path"]
            if path in seen:
                continue
            seen.add(path)
            major, minor = node_numbers(node)
            q = shlex.quote(path)
            script.append(f"mkdir -p $(dirname {q}); [ -e {q} ] || mknod -m 666 {q} c {major} {minor}")
        for mount in block.get("mounts") or []:
            q = shlex.quote(mount["hostPath"])
            script.append(f"mkdir -p $(dirname {q}); [ -e {q} ] || : > {q}")
        for hook in block.get("hooks") or []:
            q = shlex.quote(hook["path"])
            script.append(f"cat > {q} <<'EOF'\n{HOOK_STANDIN}EOF\nchmod 755 {q}")
    host.sh("\n".join(script))


def apply_spec(host: podman5_host.Host, text: str, device: str, command: str, *extra: str):
    """Write the spec to the host's /etc/cdi, run `podman run --device DEVICE` there; always remove the spec."""
    path = f"/etc/cdi/{podman.unique_name('cdi')}.yaml"
    host.exec("/bin/sh", "-c", f"mkdir -p /etc/cdi && cat > {path}", input=text)
    try:
        return host.podman("run", "--rm", *extra, "--device", device, SMALL_IMAGE, "sh", "-c", command, check=False)
    finally:
        host.exec("rm", "-f", path)


@pytest.mark.parametrize("version", sorted(CDI_FIXTURES))
def test_cdi_real_nvidia_spec_applies_on_podman5(installed_host, version: str) -> None:
    text = CDI_FIXTURES[version].read_text()
    spec = yaml.safe_load(text)
    assert spec["cdiVersion"] == version
    stage_host_for_spec(installed_host, spec)
    installed_host.exec("rm", "-f", HOOK_LOG)
    edits = spec["containerEdits"]
    lib = next(m["containerPath"] for m in edits["mounts"] if "/libcuda.so." in m["containerPath"])
    started = time.monotonic()
    proc = apply_spec(
        installed_host,
        text,
        "nvidia.com/gpu=0",
        # PID 1 is this shell: CDI's env reaches PID 1 (podman exec sessions would not see it).
        f'echo "NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES"; id -G; stat -c "%n %F %t:%T" /dev/nvidia0 '
        f"/dev/nvidiactl; test -f {lib} && echo mounted {lib}",
    )
    MEASURED[f"cdi {version}: podman run_s"] = round(time.monotonic() - started, 1)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "NVIDIA_VISIBLE_DEVICES=void" in lines
    assert "/dev/nvidia0 character special file c3:0" in lines  # major 195 = 0xc3, as stat prints it
    assert "/dev/nvidiactl character special file c3:ff" in lines
    assert f"mounted {lib}" in lines
    # The createContainer hooks ran (the stand-in recorded them), with the spec's arguments.
    hook_calls = installed_host.exec("cat", HOOK_LOG).stdout.splitlines()
    expected = [
        " ".join(hook["args"][1:])
        for block in [edits] + [d["containerEdits"] for d in spec["devices"] if d["name"] == "0"]
        for hook in block.get("hooks") or []
    ]
    assert sorted(hook_calls) == sorted(expected)
    if version == "0.7.0":
        # additionalGids (the field that made 0.7.0 necessary) reached the process: gid 39 of /dev/dri/card0.
        groups = lines[1].split()
        assert "39" in groups, lines
    MEASURED[f"cdi {version}: container saw"] = lines


def sweep_spec(version: str, kind: str) -> str:
    """A small spec valid at every cdiVersion (no field newer than 0.3.0): one device node, one env var."""
    return yaml.safe_dump(
        {
            "cdiVersion": version,
            "kind": kind,
            "devices": [{"name": "gpu", "containerEdits": {"deviceNodes": [{"path": "/dev/null"}]}}],
            "containerEdits": {"env": [f"VIT_CDI_VERSION={version}"]},
        }
    )


def test_cdi_version_table_agrees_with_podman5(installed_host) -> None:
    """Every cdiVersion the CDI library has released, and one it has not: what podman 5 reads must be exactly
    what the collection's table (_cdi.PODMAN_CDI_SUPPORT) says this podman reads."""
    version_text = installed_host.podman("version", "--format", "{{.Client.Version}}").stdout.strip()
    podman_version = _cdi.semver(version_text)
    assert podman_version and podman_version[0] == 5, version_text
    table_max, evidence = _cdi.podman_max_spec_version(podman_version)
    outcomes = {}
    for version in (*_cdi.KNOWN_SPEC_VERSIONS[2:], "0.9.0"):
        kind = f"vllm-infra-test.example.com/v{version.replace('.', '')}"
        proc = apply_spec(installed_host, sweep_spec(version, kind), f"{kind}=gpu", 'echo "$VIT_CDI_VERSION"')
        if proc.returncode == 0:
            assert proc.stdout.strip() == version
            outcomes[version] = "applied"
        else:
            assert "unresolvable CDI devices" in proc.stderr, proc.stderr
            outcomes[version] = "unresolvable"
    MEASURED[f"cdi sweep on podman {version_text}"] = outcomes
    MEASURED[f"table for podman {version_text}"] = f"max {table_max} ({evidence})"
    predicted = {v: "applied" if _cdi.semver(v) <= _cdi.semver(table_max) else "unresolvable" for v in outcomes}
    assert outcomes == predicted


# --------------------------------------------------------------------------- (b) rootful keep-id on podman 5


@pytest.fixture(scope="module")
def keep_id_run(bare_host_runs):
    """The bare host's second run (prerequisites installed by the role, then the README's minimal vars): one
    role run serves (a) and (b), each vLLM start costing minutes on 2 shared cores."""
    return {
        "vars": bare_host_runs["on_vars"],
        "run": bare_host_runs["on"],
        "inspect": bare_host_runs["on_inspect"],
        "host": bare_host_runs["host"],
    }


def test_rootful_keep_id_profiles_with_the_guide_flags(keep_id_run) -> None:
    host = keep_id_run["host"]
    proc = keep_id_run["run"]
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert ansible.recap(proc.stdout)["p5"]["failed"] == 0
    traces = fetched_worker_traces(Path(keep_id_run["vars"]["vllm_profile_dest"]))
    assert len(traces) == 1, proc.stdout[-4000:]
    assert len(engine_steps(traces[0])) == 10

    inspect = keep_id_run["inspect"]
    image_user = host.podman("image", "inspect", CPU_IMAGE, "--format", "{{.Config.User}}").stdout.strip()
    assert image_user == "1001"
    host_config = inspect["HostConfig"]
    create = inspect["Config"]["CreateCommand"]
    userns = create[create.index("--userns") + 1] if "--userns" in create else None
    MEASURED["inner podman inspect"] = {
        "Config.User": inspect["Config"]["User"],
        "CreateCommand --userns": userns,
        "HostConfig.UsernsMode": host_config["UsernsMode"],
        "HostConfig.IDMappings": host_config.get("IDMappings"),
        "HostConfig.SecurityOpt": host_config["SecurityOpt"],
        "HostConfig.ShmSize": host_config["ShmSize"],
    }
    # `auto` resolved to the guide's keep-id with the image's uid, on rootful podman 5.
    assert userns == f"keep-id:uid={image_user}", create
    # Rootful podman 5 runs keep-id in a user namespace that maps root's own (identity) range: the server runs as
    # the image's uid on the host too (as the guide's `ls` of the traces, owned by uid 2000, shows), and podman
    # reports the namespace as "private" with that mapping.
    assert host_config["UsernsMode"] == "private"
    assert host_config["IDMappings"] == {"UidMap": ["0:0:4294967295"], "GidMap": ["0:0:4294967295"]}
    assert inspect["Config"]["User"] == image_user
    assert "label=disable" in host_config["SecurityOpt"]
    assert host_config["ShmSize"] == 8589934592  # 8g, the guide's
    # The server's processes run as the image's uid in the container (PID 1, podman's init) and, rootful
    # keep-id, on the host (the stand-in's process table) too.
    name = keep_id_run["vars"]["vllm_profile_container_name"]
    pid1 = host.podman("exec", name, "grep", "^Uid:", "/proc/1/status").stdout.split()
    host_ps = host.exec("ps", "-eo", "uid=,args=").stdout.splitlines()
    servers = [line.split(None, 1) for line in host_ps if "vllm.entrypoints.openai.api_server" in line]
    MEASURED["container PID 1 Uid (real, effective, saved, fs)"] = pid1[1:]
    MEASURED["host uid of the server processes"] = sorted({uid for uid, _args in servers})
    assert pid1[1:] == [image_user] * 4
    assert servers and all(uid == image_user for uid, _args in servers), host_ps


# --------------------------------------------------------------------------- (a) a bare host


@pytest.fixture(scope="module")
def bare_host_runs(tmp_path_factory):
    """One bare host (no podman): the role without, then with prerequisites installation."""
    tmp = tmp_path_factory.mktemp("p5bare")
    with podman5_host.host("p5bare") as host:
        assert not host.has_podman()
        without = minimal_vars(tmp)
        off = run_role(tmp, host, without, "bare host, prerequisites off")
        still_bare = not host.has_podman()
        with_install = minimal_vars(tmp, vllm_profile_install_prerequisites=True)
        on = run_role(tmp, host, with_install, "bare host, prerequisites on")
        installed = host.sh("podman --version; command -v catatonit; ls /usr/libexec/podman/catatonit", check=False)
        MEASURED["bare host after install"] = installed.stdout.splitlines()
        inspect = host.inspect(with_install["vllm_profile_container_name"]) if on.returncode == 0 else None
        yield {
            "off": off,
            "still_bare": still_bare,
            "on": on,
            "on_vars": with_install,
            "on_inspect": inspect,
            "installed": installed,
            "host": host,
        }


def test_bare_host_without_prerequisites_fails_with_what_to_install(bare_host_runs) -> None:
    proc = bare_host_runs["off"]
    assert proc.returncode != 0
    assert bare_host_runs["still_bare"], "the role installed podman although installation was off"
    assert ansible.recap(proc.stdout)["p5"]["failed"] == 1
    # The host's line in the report: the preflight's sentences, naming what to install (or the switch that does).
    lines = [json.loads(q) for q in re.findall(r'"msg": ("(?:[^"\\]|\\.)*")', proc.stdout)]
    host_line = next((line for line in lines if line.startswith("p5: failed")), None)
    assert host_line, proc.stdout[-4000:]
    MEASURED["bare host, prerequisites off: host line"] = host_line
    assert host_line.startswith('p5: failed at "Check the host for what the server needs": ')
    assert (
        "podman is not installed (no podman on PATH): install podman, or set vllm_profile_install_prerequisites: true."
        in host_line
    )
    assert "install catatonit, or set vllm_profile_install_prerequisites: true." in host_line


def test_bare_host_installs_prerequisites_and_profiles(bare_host_runs) -> None:
    proc = bare_host_runs["on"]
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert bare_host_runs["installed"].returncode == 0, bare_host_runs["installed"].stdout
    assert bare_host_runs["installed"].stdout.startswith("podman version 5.")
    traces = fetched_worker_traces(Path(bare_host_runs["on_vars"]["vllm_profile_dest"]))
    assert len(traces) == 1, proc.stdout[-4000:]
    assert len(engine_steps(traces[0])) == 10
