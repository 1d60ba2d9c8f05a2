# SPDX-License-Identifier: GPL-3.0-or-later
"""Registries for real: logins, pulls, the nsys image built once for a fleet and pushed/pulled, air-gapped hosts.

The registry is Debian's ``docker-registry`` (the CNCF distribution registry 2.8) on this machine's loopback,
with htpasswd auth and TLS from a test CA that podman trusts through ``/etc/containers/certs.d``
(tests/support/registry.py). It stands for registry.redhat.io or a site mirror.

* ``test_login_then_pull`` / ``test_wrong_password_fails_before_any_container``: role vllm_profile on this
  machine (``localhost``), at ``-vvv``: good credentials log in and pull; a wrong password fails the host at the
  login with a sentence that names the registry, before any container exists; neither output holds the
  password (nor its base64 form), the auth file (0600) is the only file that does.
* ``test_fleet_builds_once_pushes_once_pulls_twice``: a fleet of STAND-IN hosts (privileged containers of the
  harness's Debian 12 host image with podman inside, reached through the containers.podman.podman connection,
  on the host's network so that they reach the registry on loopback). They stand for GPU hosts; what differs:
  no GPU, nested podman with vfs storage, and the "serving image" is the harness's Debian 12 base (a vLLM image
  is 2.5 GB: loading it into each nested store would take minutes) with Debian's real nsight-systems 2022.4
  built into the nsys image. One host builds and pushes, two pull; the second run builds, pushes and pulls
  nothing. A fourth host has NO network at all (--network none): it gets both images from archives the
  controller carries, and a second archive run loads nothing.
* ``test_airgapped_host_loads_the_archive_then_profiles``: the air-gapped path with the real vLLM CPU image: the
  image named in the registry, the registry NOT running (unreachable), the archive loaded into an empty podman
  store of its own (CONTAINERS_STORAGE_CONF: a separate graphroot on this machine), then the role profiles it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import textwrap
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from support import ansible, podman, registry

pytestmark = [pytest.mark.podman]

REPO = ansible.REPO
BASE = "localhost/vllm-infra-debian12:latest"
GPUHOST = "vllm-infra-debian12-gpuhost"
OUTPUT = REPO / "tests" / "output"
# Debian 12's nsight-systems (non-free), as in test_nsys_e2e.py.
DEBIAN_NSYS = {
    "method": "packages",
    "pre_commands": ["sed -i 's/ main$/ main contrib non-free/' /etc/apt/sources.list"],
    "packages": ["nsight-systems", "nsight-systems-target"],
    "commands": ["ln -sfn ../../nsight-systems/host-linux-x64 /usr/lib/x86_64-linux-gnu/nsight-systems/host-linux-x64"],
}
ENV = {"ANSIBLE_PIPELINING": "1", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}


def record(**timings: t.Any) -> None:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / "registry.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(timings)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(timings))


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def secret_forms(password: str, username: str) -> list[str]:
    return [password, base64.b64encode(f"{username}:{password}".encode()).decode()]


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


@pytest.fixture(scope="module")
def reg(tmp_path_factory) -> t.Iterator[tuple[registry.Registry, str]]:
    """The registry, holding the 'serving image' (the harness's Debian 12 base) as vit/serving:1."""
    podman.ensure_image("vllm-infra-debian12")
    tmp = tmp_path_factory.mktemp("registry")
    started = time.monotonic()
    with registry.running() as r:
        serving = push_as(r, BASE, "vit/serving:1", tmp / "operator-auth.json")
        record(registry_start_and_push_base_s=round(time.monotonic() - started, 1))
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
    assert re.search(r'^ +pulled: true', out, re.M) and pulled_id, out[-3000:]
    # The password is nowhere in -vvv output, neither plain nor as the auth file stores it.
    for form in secret_forms(r.password, r.username):
        assert form not in out, "the password leaked into -vvv output"
    # Only the auth file holds it (base64), mode 0600.
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert secret_forms(r.password, r.username)[1] in auth_file.read_text()
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
    for form in secret_forms(wrong, r.username):
        assert form not in out, "the password leaked into -vvv output"
    assert not (tmp_path / "auth.json").exists() or r.host not in (tmp_path / "auth.json").read_text()


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
    hosts = {
        host: {
            "ansible_connection": "containers.podman.podman",
            "ansible_host": container,
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        for host, container in names.items()
    }
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


def test_fleet_builds_once_pushes_once_pulls_twice(reg, tmp_path: Path, apt_cache: Path) -> None:
    r, serving = reg
    podman.ensure_image(GPUHOST)
    fleet = ["build-1", "pull-1", "pull-2"]
    names = {host: podman.unique_name(f"reg-{host}") for host in [*fleet, "airgap-1"]}
    networks = {host: "host" for host in fleet} | {"airgap-1": "none"}
    nsys_ref = r.ref("vit/vllm-nsys:1")
    group_vars = {
        "vllm_profile_image": serving,
        "vllm_profile_registry_logins": [{"registry": r.host, "username": r.username, "password": r.password}],
        "vllm_profile_nsys_image": nsys_ref,  # named in the registry: distribution auto -> registry
        "vllm_profile_nsys_install": DEBIAN_NSYS,
        "vllm_profile_nsys_build_volumes": [f"{apt_cache}:/var/cache/apt/archives"],
        "vllm_profile_nsys_trace": ["osrt", "nvtx"],
        "vllm_profile_capture_dir_container": "/vllm-profiles",
        "result_dir": str(tmp_path),
    }
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
        for label in ("first", "second"):
            begun = time.monotonic()
            proc = ansible.run_playbook(playbook, None, inventory=inventory, timeout=1500, **ENV)
            timings[f"fleet_{label}_run_s"] = round(time.monotonic() - begun, 1)
            results = {h: json.loads((tmp_path / f"{h}.json").read_text()) for h in fleet if proc.returncode == 0}
            runs.append((proc, results))
            assert proc.returncode == 0, proc.stdout[-8000:]

        # The air-gapped host: no network at all. The controller carries both images as archives: the serving
        # image (an operator's `podman save`) and the nsys image (saved by the build host, fetched).
        archive = tmp_path / "serving.tar"
        podman.run("tag", BASE, serving)
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
    record(**timings)

    (first, res1), (second, res2) = runs
    for label, (proc, res) in (("run 1", runs[0]), ("run 2", runs[1])):
        print(f"{label} recap: {ansible.recap(proc.stdout)}")
        print(f"{label} built/pushed/pulled: {counts(res)}")
        for task in ("Build the Nsight Systems image from", "Pull the fleet's nsys image unless"):
            print(f"{label} {task}: {task_lines(proc.stdout, task)}")
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
    for task in ("Load ", "Copy "):
        print(f"air run 1 {task}: {task_lines(air1.stdout, task)}")
    assert reach.returncode != 0, "the air-gapped host reached a registry"
    assert nsys_on_airgap.startswith("NVIDIA Nsight Systems version 2022.4"), nsys_on_airgap
    assert ansible.recap(air1.stdout)["airgap-1"]["changed"] >= 2
    for host, c in ansible.recap(air2.stdout).items():
        assert c["changed"] == 0 and c["failed"] == 0, (host, air2.stdout[-6000:])
