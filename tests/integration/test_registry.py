# SPDX-License-Identifier: GPL-3.0-or-later
"""Registries for real: logins, pulls, the nsys image built once for a fleet and pushed/pulled, air-gapped hosts.

The registry is Debian's ``docker-registry`` (the CNCF distribution registry 2.8) on this machine's loopback,
with htpasswd auth and TLS from a test CA that podman trusts through ``/etc/containers/certs.d``
(tests/support/registry.py). It stands for registry.redhat.io or a site mirror.

* ``test_login_then_pull`` / ``test_wrong_password_fails_before_any_container``: role vllm_profile on this
  machine (``localhost``), at ``-vvv``: good credentials log in and pull; a wrong password fails the host at the
  login with a sentence that names the registry, before any container exists; neither output holds the
  password (nor its base64 form), the auth file (0600) is the only file that does.
* ``test_fleet_builds_once_pushes_once_pulls_twice``: the private-mirror example (playbooks/vars/examples/) as
  written, its registry host swapped for the test registry's, on a fleet of STAND-IN hosts (privileged containers
  of the harness's Debian 12 host image with podman inside, reached through the containers.podman.podman
  connection, on the host's network so that they reach the registry on loopback). They stand for GPU hosts;
  what differs: no GPU, nested podman with vfs storage, and the "serving image" is a 2 MB busybox image (the
  harness's Debian 12 base in the opt-in tier; a vLLM image is 2.5 GB per nested store). Check mode first says
  one build, one push, two pulls and does none; run 1 does exactly that; run 2 builds, pushes and pulls nothing
  (changed=0). A fourth host has NO network (--network none): it gets the serving image and the nsys image from
  archives the controller carries (the build host saves the nsys image, the controller fetches it), and a
  second archive run loads nothing. Default tier: a STAND-IN nsys (a two-line script, as in the module's unit
  tests); opt-in tier: Debian's real nsight-systems 2022.4 (``VLLM_INFRA_REGISTRY_FULL=1``).
* ``test_airgapped_host_loads_the_archive_then_profiles`` (opt-in tier): the real vLLM CPU image, named in a
  registry that is not running, loaded from its archive into an empty podman store of its own
  (CONTAINERS_STORAGE_CONF: a separate graphroot on this machine), then profiled by the role.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import textwrap
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from support import ansible, output, podman, registry

pytestmark = [pytest.mark.podman]

REPO = ansible.REPO
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static (tools/setup.sh)
DEBIAN_BASE = "localhost/vllm-infra-debian12:latest"
GPUHOST = "vllm-infra-debian12-gpuhost"
# Debian 12's nsight-systems (non-free), as in test_nsys_e2e.py.
DEBIAN_NSYS = {
    "method": "packages",
    "pre_commands": ["sed -i 's/ main$/ main contrib non-free/' /etc/apt/sources.list"],
    "packages": ["nsight-systems", "nsight-systems-target"],
    "commands": ["ln -sfn ../../nsight-systems/host-linux-x64 /usr/lib/x86_64-linux-gnu/nsight-systems/host-linux-x64"],
}
# A STAND-IN nsys for the default tier, as tests/unit/plugins/modules/test_nsys_image_build.py uses it: a two-line
# shell script that prints its arguments. The distribution logic (build once, push, pull, hash label, archives)
# is the same; the image is ~180 MB instead of ~1.2 GB (real nsys unpacks ~1 GB into nested vfs storage).
STANDIN_NSYS = {
    "method": "commands",
    "commands": [
        "mkdir -p /usr/local/bin && "
        'printf \'#!/bin/sh\\necho stand-in-nsys\\nfor a in "$@"; do echo "$a"; done\\n\' > /usr/local/bin/nsys'
        " && chmod 0755 /usr/local/bin/nsys"
    ],
}
# The opt-in tier: the fleet with Debian's real nsight-systems (~10 min on a loaded 2-core machine), and the
# air-gapped host profiled with the real vLLM image (a 2.5 GB archive). Run it with VLLM_INFRA_REGISTRY_FULL=1.
FULL = os.environ.get("VLLM_INFRA_REGISTRY_FULL") == "1"
full_tier = pytest.mark.skipif(not FULL, reason="opt-in tier: set VLLM_INFRA_REGISTRY_FULL=1 to run it")
ENV = {"ANSIBLE_PIPELINING": "1", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def push_as(reg: registry.Registry, source: str, repository: str, auth_file: Path) -> str:
    """Put ``source`` into the registry as ``repository`` (the operator's upload), with its own auth file."""
    ref = reg.ref(repository)
    login = subprocess.run(
        ["podman", "login", "--authfile", str(auth_file), "--username", reg.username, "--password-stdin", reg.host],
        input=reg.password, text=True, capture_output=True, env=podman.env(), check=False,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    podman.run("tag", source, ref)
    try:
        podman.run("push", "--authfile", str(auth_file), ref, timeout=900)
    finally:
        podman.run("rmi", ref, check=False)  # the tag only; the source image stays
    return ref


def make_busybox_image(tmp: Path, ref: str) -> str:
    """A ~2 MB image: a static busybox and its applets, imported with podman (no registry needed)."""
    root = tmp / "busybox-root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    for directory in ("tmp", "usr/local/bin", "etc", "root"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    # `USER root` in a build needs the user to be known.
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
    podman.run("import", "--change", 'CMD ["/bin/sh"]', "-", ref, input=tar.decode("latin-1"), encoding="latin-1")
    return podman.run("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> t.Iterator[str]:
    """The 'serving image' of the default tier: busybox (the vLLM image is 2.5 GB per nested store)."""
    ref = f"localhost/{podman.unique_name('busybox')}:1"
    make_busybox_image(tmp_path_factory.mktemp("busybox"), ref)
    try:
        yield ref
    finally:
        podman.run("rmi", "--force", ref, check=False)


@pytest.fixture(scope="module")
def reg(tmp_path_factory, base: str) -> t.Iterator[tuple[registry.Registry, str]]:
    """The registry, holding the 'serving image' (busybox, standing for the vLLM image) under the name the
    private-mirror example gives it."""
    tmp = tmp_path_factory.mktemp("registry")
    started = time.monotonic()
    with registry.running() as r:
        # The path of the private-mirror example's serving image (playbooks/vars/examples/).
        serving = push_as(r, base, "rhaiis/vllm-cuda-rhel9:3.2.1", tmp / "operator-auth.json")
        output.record("registry", registry_start_and_push_base_s=round(time.monotonic() - started, 1))
        yield r, serving


# --------------------------------------------------------------------------- login and pull, -vvv

IMAGES_PLAYBOOK = """
- name: Log in and bring the serving image onto the host (role vllm_profile, images.yml)
  hosts: localhost
  gather_facts: true
  gather_subset: [user]
  tasks:
    - name: Images
      ansible.builtin.include_role:
        name: vllm_infra.profiling.vllm_profile
        tasks_from: images.yml
"""

MAIN_PLAYBOOK = """
- name: The whole role
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Profile
      ansible.builtin.include_role:
        name: vllm_infra.profiling.vllm_profile
"""


def test_login_then_pull(reg, tmp_path: Path) -> None:
    r, serving = reg
    auth_file = tmp_path / "auth" / "auth.json"
    podman.run("rmi", serving, check=False)
    logins = [{"registry": r.host, "username": r.username, "password": r.password}]
    variables = {
        "vllm_profile_image": serving,
        "vllm_profile_registry_logins": logins,
        "vllm_profile_registry_auth_file": str(auth_file),
    }
    try:
        first = ansible.run_playbook(write(tmp_path, "images.yml", IMAGES_PLAYBOOK), variables, "-vvv")
        second = ansible.run_playbook(write(tmp_path, "images.yml", IMAGES_PLAYBOOK), variables)
        pulled_id = podman.run("image", "inspect", "--format", "{{.Id}}", serving, check=False).stdout.strip()
    finally:
        podman.run("rmi", serving, check=False)
    assert first.returncode == 0, first.stdout[-5000:]
    out = first.stdout + first.stderr
    print(re.findall(rf"^(?:changed|ok): \[localhost\].*{re.escape(r.host)}.*$", out, re.M)[:4])
    assert f"changed: [localhost] => (item={r.host})" in out
    assert re.search(r"^ +pulled: true", out, re.M) and pulled_id, out[-3000:]
    # The password is nowhere in -vvv output, neither plain nor as the auth file stores it.
    for form in registry.secret_forms(r.password, r.username):
        assert form not in out, "the password leaked into -vvv output"
    # Only the auth file holds it (base64), mode 0600.
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert registry.secret_forms(r.password, r.username)[1] in auth_file.read_text()
    # The second run: the same login changes nothing, the image is there: changed=0.
    assert second.returncode == 0 and ansible.recap(second.stdout)["localhost"]["changed"] == 0, second.stdout[-3000:]


def test_wrong_password_fails_before_any_container(reg, tmp_path: Path) -> None:
    r, serving = reg
    wrong = "wrong-" + os.urandom(6).hex()
    variables = yaml.safe_load((REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
    name = podman.unique_name("reg-wrong")
    variables.update(
        {
            "vllm_profile_image": serving,
            "vllm_profile_container_name": name,
            "vllm_profile_port": podman.free_port(),
            "vllm_profile_capture_dir_host": str(tmp_path / "traces"),
            "vllm_profile_cache_dir": str(tmp_path / "cache"),
            "vllm_profile_dest": str(tmp_path / "captures"),
            "vllm_profile_registry_logins": [{"registry": r.host, "username": r.username, "password": wrong}],
            "vllm_profile_registry_auth_file": str(tmp_path / "auth.json"),
        }
    )
    try:
        proc = ansible.run_playbook(write(tmp_path, "main.yml", MAIN_PLAYBOOK), variables, "-vvv")
        exists = podman.run("container", "exists", name, check=False).returncode == 0
    finally:
        podman.remove(name)
    out = proc.stdout + proc.stderr
    msg = [line for line in out.splitlines() if "The login failed" in line]
    print(msg[:1])
    assert proc.returncode != 0 and ansible.recap(proc.stdout)["localhost"]["failed"] == 1
    assert msg and r.host in msg[0] and "vllm_profile_registry_logins" in msg[0], out[-4000:]
    assert "invalid username/password" in msg[0]  # podman's own line
    assert not exists, "a container was started after the failed login"
    assert "TASK [vllm_infra.profiling.vllm_profile : Launch" not in out
    for form in registry.secret_forms(wrong, r.username):
        assert form not in out, "the password leaked into -vvv output"
    assert not (tmp_path / "auth.json").exists() or r.host not in (tmp_path / "auth.json").read_text()


def test_registries_conf_mirror_serves_the_guides_image_name(reg, base: str, tmp_path: Path) -> None:
    """The other way to use a mirror: keep the guide's image name and let podman's registries.conf send the pull
    to the mirror (a [[registry.mirror]] for registry.redhat.io/rhaiis); the role logs in to the mirror's host.
    registries.conf is the test's own (CONTAINERS_REGISTRIES_CONF), not this machine's."""
    r, _serving = reg
    guide = "registry.redhat.io/rhaiis/vllm-cuda-rhel9:3.2.1"
    assert podman.run("image", "exists", guide, check=False).returncode == 1, f"{guide} is already here"
    conf = tmp_path / "registries.conf"
    conf.write_text(
        '[[registry]]\nprefix = "registry.redhat.io/rhaiis"\nlocation = "registry.redhat.io/rhaiis"\n'
        f'[[registry.mirror]]\nlocation = "{r.host}/rhaiis"\n'
    )
    variables = {
        "vllm_profile_image": guide,
        "vllm_profile_registry_logins": [{"registry": r.host, "username": r.username, "password": r.password}],
        "vllm_profile_registry_auth_file": str(tmp_path / "auth.json"),
    }
    served = "GET /v2/rhaiis/vllm-cuda-rhel9/manifests/3.2.1"
    before = r.log_text().count(served)
    try:
        proc = ansible.run_playbook(
            write(tmp_path, "images.yml", IMAGES_PLAYBOOK), variables, CONTAINERS_REGISTRIES_CONF=str(conf)
        )
        pulled = podman.run("image", "inspect", "--format", "{{.Id}}", guide, check=False).stdout.strip()
    finally:
        podman.run("rmi", guide, check=False)  # the tag; the image stays under its harness name
    assert proc.returncode == 0, proc.stdout[-4000:]
    base_id = podman.run("image", "inspect", "--format", "{{.Id}}", base).stdout.strip()
    assert pulled == base_id  # what the mirror holds under rhaiis/vllm-cuda-rhel9:3.2.1
    assert r.log_text().count(served) > before  # and the mirror served it


# --------------------------------------------------------------------------- the fleet

FLEET_PLAYBOOK = """
- name: The nsys image for the fleet (role vllm_profile, images.yml and nsys_image.yml)
  hosts: fleet
  gather_facts: true
  gather_subset: [user]
  tasks:
    - name: Images
      ansible.builtin.include_role:
        name: vllm_infra.profiling.vllm_profile
        tasks_from: images.yml
    - name: The nsys image
      ansible.builtin.include_role:
        name: vllm_infra.profiling.vllm_profile
        tasks_from: nsys_image.yml
      vars:
        __vllm_profile_run_id: fleet
        __vllm_profile_state_dir: /var/lib/vllm-profile/state
    - name: Keep what happened on each host
      ansible.builtin.copy:
        content: >-
          {{ {'built': __vllm_profile_nsys_built, 'wanted': __vllm_profile_nsys_wanted,
              'pulled': __vllm_profile_nsys_pulled, 'build': __vllm_profile_nsys_build} | to_json }}
        dest: "{{ result_dir }}/{{ inventory_hostname }}.json"
        mode: "0644"
      delegate_to: localhost
      check_mode: false
      changed_when: false  # the test's own record, not a change on the host
"""


def start_hosts(names: dict[str, str], networks: dict[str, str], apt_cache: Path) -> None:
    def one(host: str) -> None:
        podman.run(
            "run", "-d", "--init", "--privileged", "--name", names[host], "--network", networks[host],
            "-v", f"{apt_cache}:{apt_cache}", f"localhost/{GPUHOST}:latest",
            "sleep", "infinity",
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, names))


def trust_ca(reg: registry.Registry, container: str) -> None:
    path = f"/etc/containers/certs.d/{reg.host}"
    podman.run("exec", container, "mkdir", "-p", path)
    podman.run("cp", str(reg.ca), f"{container}:{path}/ca.crt")


def fleet_inventory(tmp: Path, names: dict[str, str], group_vars: dict[str, t.Any]) -> Path:
    hosts = {host: podman.standin_host_vars(container) for host, container in names.items()}
    path = tmp / f"inventory-{len(list(tmp.glob('inventory-*')))}.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts, "vars": group_vars}}}}))
    return path


def task_lines(out: str, task: str) -> list[str]:
    """The per-host result lines of one task (changed/ok/skipping/failed: [host])."""
    block = out.split(f"TASK [vllm_infra.profiling.vllm_profile : {task}", 1)
    if len(block) < 2:
        return []
    body = block[1].split("\nTASK [", 1)[0]
    return [line for line in body.splitlines() if re.match(r"^(changed|ok|skipping|failed|fatal): \[", line)]


def counts(results: dict[str, dict[str, t.Any]]) -> dict[str, int]:
    def flag(res: dict[str, t.Any], key: str) -> bool:
        return bool(res and not res.get("skipped") and res.get(key) and res.get("changed"))

    return {
        "built": sum(flag(r["built"], "built") for r in results.values()),
        "pushed": sum(flag(r["built"], "pushed") for r in results.values()),
        "pulled": sum(flag(r["pulled"], "pulled") for r in results.values()),
    }


@pytest.fixture(scope="module")
def apt_cache() -> Path:
    path = Path(podman.images.cache_dir()) / "apt-nsys"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize(
    "nsys",
    [pytest.param("standin", id="standin-nsys"), pytest.param("debian", id="debian-nsys-2022.4", marks=full_tier)],
)
def test_fleet_builds_once_pushes_once_pulls_twice(reg, base: str, tmp_path: Path, apt_cache: Path, nsys: str) -> None:
    r, serving = reg
    podman.ensure_image(GPUHOST)
    fleet = ["build-1", "pull-1", "pull-2"]
    names = {host: podman.unique_name(f"reg-{host}") for host in [*fleet, "airgap-1"]}
    networks = {host: "host" for host in fleet} | {"airgap-1": "none"}
    # The private-mirror example as written, its registry host being the test registry's; the vault's variables
    # as an inventory would hold them; the CPU swap for the nsys install (Debian's packages, not NVIDIA's repo).
    example = (REPO / "playbooks" / "vars" / "examples" / "private_registry_mirror.yml").read_text()
    group_vars = yaml.safe_load(example.replace("registry.example.internal", r.host))
    nsys_ref = group_vars["vllm_profile_nsys_image"]
    assert group_vars["vllm_profile_image"] == serving and nsys_ref == r.ref("vllm-profile/vllm-nsys:3.2.1")
    if nsys == "debian":  # Debian's nsight-systems needs a Debian base: the harness's, under a tag of its own
        podman.ensure_image("vllm-infra-debian12")
        serving = push_as(r, DEBIAN_BASE, "rhaiis/vllm-cuda-rhel9:3.2.1-debian", tmp_path / "operator-auth.json")
        group_vars["vllm_profile_image"] = serving
    group_vars.update(
        {
            "vault_mirror_user": r.username,
            "vault_mirror_token": r.password,
            "vllm_profile_nsys_install": DEBIAN_NSYS if nsys == "debian" else STANDIN_NSYS,
            "vllm_profile_nsys_build_volumes": [f"{apt_cache}:/var/cache/apt/archives"] if nsys == "debian" else [],
            "vllm_profile_nsys_trace": ["osrt", "nvtx"],
            "result_dir": str(tmp_path),
        }
    )
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        start_hosts(names, networks, apt_cache)
        for host in fleet:
            trust_ca(r, names[host])
        timings["hosts_start_s"] = round(time.monotonic() - started, 1)
        inventory = fleet_inventory(tmp_path, {h: names[h] for h in fleet}, group_vars)
        playbook = write(tmp_path, "fleet.yml", FLEET_PLAYBOOK)
        runs = []
        for label in ("check", "first", "second"):
            begun = time.monotonic()
            args = ["--check"] if label == "check" else []
            proc = ansible.run_playbook(playbook, None, *args, inventory=inventory, timeout=1500, **ENV)
            timings[f"fleet_{label}_run_s"] = round(time.monotonic() - begun, 1)
            results = {h: json.loads((tmp_path / f"{h}.json").read_text()) for h in fleet if proc.returncode == 0}
            runs.append((proc, results))
            assert proc.returncode == 0, proc.stdout[-8000:]
            if label == "check":  # check mode pulled, built and pushed nothing
                for host in fleet:
                    images = podman.run("exec", names[host], "podman", "images", "--noheading").stdout
                    assert r.host not in images, (host, images)

        # The password is in no file on the hosts but the auth file (which holds it base64-encoded), mode 0600.
        leaks = {}
        for host in fleet:
            found = podman.run(
                "exec", names[host], "grep", "-rlF",
                "-e", r.password, "-e", registry.secret_forms(r.password, r.username)[1],
                "/", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev", check=False, timeout=900,
            ).stdout.split()  # fmt: skip
            mode = podman.run("exec", names[host], "stat", "-c", "%a", "/root/.config/containers/auth.json").stdout
            leaks[host] = (found, mode.strip())
        # The air-gapped host: no network at all. The controller carries both images as archives: the serving
        # image (an operator's `podman save`) and the nsys image (saved by the build host, fetched).
        archive = tmp_path / "serving.tar"
        podman.run("tag", DEBIAN_BASE if nsys == "debian" else base, serving)
        podman.run("save", "-o", str(archive), serving)
        podman.run("rmi", serving, check=False)
        air_vars = {
            **group_vars,
            "vllm_profile_registry_logins": [],
            "vllm_profile_pull": False,
            "vllm_profile_image_archive": str(archive),
            "vllm_profile_nsys_distribution": "archive",
            "vllm_profile_nsys_build_host": "build-1",
            "vllm_profile_nsys_archive_dir": str(tmp_path / "images"),
        }
        air_inventory = fleet_inventory(tmp_path, {h: names[h] for h in ("build-1", "airgap-1")}, air_vars)
        air_runs = []
        for label in ("air_first", "air_second"):
            begun = time.monotonic()
            proc = ansible.run_playbook(playbook, None, inventory=air_inventory, timeout=1500, **ENV)
            timings[f"fleet_{label}_run_s"] = round(time.monotonic() - begun, 1)
            air_runs.append(proc)
            assert proc.returncode == 0, proc.stdout[-8000:]
        nsys_on_airgap = podman.run(
            "exec", names["airgap-1"], "podman", "run", "--rm", "--entrypoint", "nsys", nsys_ref, "--version"
        ).stdout
        reach = podman.run("exec", names["airgap-1"], "podman", "pull", serving + "-nope", check=False)
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(podman.remove, names.values()))
    timings["fleet_total_s"] = round(time.monotonic() - started, 1)
    output.record("registry", **{f"{nsys}_{k}": v for k, v in timings.items()})

    (check, res0), (_first, res1), (second, res2) = runs
    for label, (proc, res) in (("check run", runs[0]), ("run 1", runs[1]), ("run 2", runs[2])):
        print(f"{label} recap: {ansible.recap(proc.stdout)}")
        print(f"{label} built/pushed/pulled: {counts(res)}")
        for task in ("Build the Nsight Systems image from", "Pull the fleet's nsys image unless"):
            print(f"{label} {task}: {task_lines(proc.stdout, task)}")
    print(f"files holding the password: {leaks}")
    for host, (found, mode) in leaks.items():
        assert found == ["/root/.config/containers/auth.json"] and mode == "600", (host, found, mode)
    # Check mode on the fresh fleet says what run 1 will do, and does none of it.
    assert counts(res0) == {"built": 1, "pushed": 1, "pulled": 2}, res0
    assert all(c["failed"] == 0 for c in ansible.recap(check.stdout).values())
    # Run 1: build-1 built and pushed, pull-1 and pull-2 pulled; all three have the same image, by id and label.
    assert counts(res1) == {"built": 1, "pushed": 1, "pulled": 2}, res1
    assert res1["build-1"]["built"]["built"] is True and res1["build-1"]["built"]["pushed"] is True
    wanted = res1["build-1"]["built"]["hash"]
    for host in ("pull-1", "pull-2"):
        assert res1[host]["built"].get("skipped") and res1[host]["wanted"]["hash"] == wanted
        assert res1[host]["pulled"]["image_id"] == res1["build-1"]["built"]["image_id"]
    # Run 2: nothing built, pushed or pulled; the recap says changed=0 on every host.
    assert counts(res2) == {"built": 0, "pushed": 0, "pulled": 0}, res2
    assert res2["build-1"]["built"]["reason"] == "up to date"
    for host in ("pull-1", "pull-2"):
        assert res2[host]["pulled"]["reason"] == "up to date" and res2[host]["pulled"]["changed"] is False
    for host, c in ansible.recap(second.stdout).items():
        assert c["changed"] == 0 and c["failed"] == 0, (host, second.stdout[-6000:])

    # The air-gapped host: it cannot reach the registry, it loaded both archives; the second run loads nothing.
    air1, air2 = air_runs
    print(f"air run 1 recap: {ansible.recap(air1.stdout)}; run 2 recap: {ansible.recap(air2.stdout)}")
    for task in ("Load the archive", "Copy the archive"):
        print(f"air run 1 {task}: {task_lines(air1.stdout, task)}")
    assert reach.returncode != 0, "the air-gapped host reached a registry"
    expected = "NVIDIA Nsight Systems version 2022.4" if nsys == "debian" else "stand-in-nsys\n--version"
    assert nsys_on_airgap.startswith(expected), nsys_on_airgap
    assert ansible.recap(air1.stdout)["airgap-1"]["changed"] >= 2
    for host, c in ansible.recap(air2.stdout).items():
        assert c["changed"] == 0 and c["failed"] == 0, (host, air2.stdout[-6000:])


# --------------------------------------------------------------------------- air-gapped, then profiled

RESULT_PLAYBOOK = """
- name: The whole role, on a host without a registry
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Profile
      ansible.builtin.include_role:
        name: vllm_infra.profiling.vllm_profile
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ vllm_profile_result | to_json }}"
        dest: "{{ result_dir }}/result.json"
        mode: "0644"
"""


@pytest.mark.vllm
@full_tier
def test_airgapped_host_loads_the_archive_then_profiles(tmp_path: Path) -> None:
    """The real vLLM CPU image, named in a registry that does not run (nothing listens on its port), carried as a
    `podman save` archive and loaded into an EMPTY podman store of its own (a separate graphroot on this machine,
    through CONTAINERS_STORAGE_CONF: what stands for the air-gapped host's storage); then the role profiles it.
    The second run loads nothing (the store has the image id)."""
    podman.ensure_image("vllm-cpu-tiny")
    ref = f"127.0.0.1:{podman.free_port()}/rhaiis/vllm-cpu-tiny:0.32.0"  # nothing listens there
    archive = tmp_path / "vllm-cpu-tiny.tar"
    started = time.monotonic()
    podman.run("tag", "localhost/vllm-cpu-tiny:0.32.0", ref)
    try:
        podman.run("save", "-o", str(archive), ref, timeout=900)
    finally:
        podman.run("rmi", ref, check=False)
    save_s = round(time.monotonic() - started, 1)
    store = tmp_path / "store"
    storage_conf = tmp_path / "storage.conf"
    storage_conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{store / "graph"}"\nrunroot = "{store / "run"}"\n'
    )
    env = {"CONTAINERS_STORAGE_CONF": str(storage_conf)}
    variables = yaml.safe_load((REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
    name = podman.unique_name("airgap")
    for sub in ("traces", "cache"):
        (tmp_path / sub).mkdir(mode=0o777)
        (tmp_path / sub).chmod(0o777)
    variables.update(
        {
            "vllm_profile_image": ref,
            "vllm_profile_pull": False,
            "vllm_profile_image_archive": str(archive),
            "vllm_profile_image_archive_remote_dir": str(tmp_path / "remote"),
            "vllm_profile_container_name": name,
            "vllm_profile_port": podman.free_port(),
            "vllm_profile_capture_dir_host": str(tmp_path / "traces"),
            "vllm_profile_cache_dir": str(tmp_path / "cache"),
            "vllm_profile_dest": str(tmp_path / "captures"),
            "vllm_profile_run_id": "airgap",
            "vllm_profile_restore": "remove",
            "result_dir": str(tmp_path),
        }
    )
    (tmp_path / "remote").mkdir()
    playbook = write(tmp_path, "airgap.yml", RESULT_PLAYBOOK)

    def in_store(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], env={**podman.env(), **env}, text=True, capture_output=True, check=check, timeout=600
        )

    assert in_store("image", "exists", ref).returncode == 1  # the store starts empty
    try:
        begun = time.monotonic()
        first = ansible.run_playbook(playbook, variables, inventory=REPO / "playbooks" / "inventory" / "localhost.yml",
                                     timeout=1500, **env, **ENV)  # fmt: skip
        first_s = round(time.monotonic() - begun, 1)
        result = json.loads((tmp_path / "result.json").read_text()) if (tmp_path / "result.json").is_file() else {}
        variables["vllm_profile_run_id"] = "airgap-2"
        variables["vllm_profile_smoke_test"] = False
        begun = time.monotonic()
        second = ansible.run_playbook(playbook, variables, timeout=1500, **env, **ENV)
        second_s = round(time.monotonic() - begun, 1)
    finally:
        in_store("rm", "--force", "--time", "5", name)
        in_store("rmi", "--force", ref)
        subprocess.run(["umount", "-R", str(store / "graph" / "overlay")], capture_output=True, check=False)
    output.record("registry", airgap_save_s=save_s, airgap_first_run_s=first_s, airgap_second_run_s=second_s)
    print(f"air-gapped: save {save_s}s, run 1 {first_s}s (load + profile), run 2 {second_s}s")
    print(f"run 1 load: {task_lines(first.stdout, 'Load the archive')}")
    print(f"run 2 load: {task_lines(second.stdout, 'Load the archive')}")
    print(f"result: status {result.get('status')}, files {result.get('files')}")
    assert first.returncode == 0, first.stdout[-6000:]
    assert any(line.startswith("changed:") for line in task_lines(first.stdout, "Load the archive")), first.stdout[
        -6000:
    ]
    assert all(line.startswith("skipping") for line in task_lines(first.stdout, "Pull the image"))
    assert result["status"] == "captured" and any("rank0" in f for f in result["files"]), result
    assert second.returncode == 0, second.stdout[-6000:]
    # The host has the archive's image id: the archive is neither copied nor loaded again.
    assert all(line.startswith("skipping") for line in task_lines(second.stdout, "Load the archive")), second.stdout[
        -6000:
    ]
    assert not list((tmp_path / "remote").iterdir())  # the copied archive was removed after loading
