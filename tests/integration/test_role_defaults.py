# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's minimal vars, with the role's defaults, on the kinds of host the guide runs on (issue 13).

Only the image, the model (with the tiny model's server arguments and HF offline, since no hub is reachable
here) and the devices are swapped for the CPU harness; container name and port are unique per test so
that tests can share the machine. Everything else is the role's default: the user namespace, the host
directories, label=disable, shm 8g, the controller destination, restore=serve.

What each stand-in stands for, and what still differs from the guide's RHEL 9 host:
- root on this machine (podman 4.3.1) stands for a playbook run as root through become. Root's podman 4.3
  cannot run keep-id (podman 4.5+ can: RHEL 9.4 ships 4.9), so the default `auto` runs without a user
  namespace here and says so; the guide's rootful keep-id runs on the podman 5 stand-in
  (test_podman5_host.py). No SELinux here: label=disable is checked in the container definition only.
- an ordinary user with rootless podman 4.3.1 (tests/support/rootless.py says what is arranged for this
  sandbox) stands for the guide's rootless user: keep-id:uid=<image uid> for real.
- localhost/vllm-cpu-tiny (uid 1001, gid 0) and localhost/vllm-cpu-tiny-uid2000 (uid 2000, gid 0, as vLLM's
  own images and the guide's RHAIIS image) stand for the guide's image; vLLM 0.32 (CPU) for its 0.10.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import requests
import yaml
from support import ansible, podman, rootless
from support.traces import engine_steps

pytestmark = [pytest.mark.podman, pytest.mark.vllm]

PLAYBOOK = "playbooks/profile_torch.yml"
HF_TOKEN = "hf_vllmInfraDefaultsToken0123456789abcd"
API_KEY = "sk-vllm-infra-defaults-0123456789"
ROOTLESS_USER = "vllm-rootless"
NO_SUBID_USER = "vllm-nosubid"


def readme_vars() -> dict:
    """The YAML block under "A minimal `my-vars.yml`" in README.md, as a user copies it."""
    text = (ansible.REPO / "README.md").read_text()
    block = text.split("A minimal `my-vars.yml`", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def cpu_swap(image: str) -> dict:
    """The CPU harness instead of the guide's image, model and GPU."""
    demo = yaml.safe_load((ansible.REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
    return {
        "vllm_profile_image": image,
        "vllm_profile_pull": False,  # no registry here: the image is local
        "vllm_profile_model": demo["vllm_profile_model"],
        "vllm_profile_extra_args": demo["vllm_profile_extra_args"],
        "vllm_profile_hf_hub_offline": True,
        "vllm_profile_devices": [],
    }


def run_vars(image: str, **more) -> dict:
    variables = {
        **readme_vars(),
        **cpu_swap(image),
        "vault_hf_token": HF_TOKEN,
        "vllm_profile_api_key": API_KEY,
        "vllm_profile_container_name": podman.unique_name("defaults"),
        "vllm_profile_port": podman.free_port(),
    }
    variables.update(more)
    return variables


def host_line(output: str, host: str) -> str:
    """The report's one line for ``host`` (the debug message, unwrapped)."""
    match = re.search(rf"msg: ['\"]?{re.escape(host)}: (.+?)['\"]?\n(?:\S|TASK|PLAY)", output, re.S)
    assert match, output[-4000:]
    return " ".join(match.group(1).split()).rstrip("'\"").replace("''", "'")


def create_option(inspect: dict, flag: str) -> str | None:
    """The value given to ``flag`` in the container's create command (podman 4.3 shows a keep-id namespace
    as "private" in HostConfig.UsernsMode; the command keeps the mode)."""
    command = inspect["Config"].get("CreateCommand") or []
    for index, arg in enumerate(command):
        if arg == flag:
            return command[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def inspect_summary(inspect: dict) -> dict:
    host = inspect["HostConfig"]
    return {
        "SecurityOpt": host.get("SecurityOpt"),
        "ShmSize": host.get("ShmSize"),
        "User": inspect["Config"].get("User"),
        "UsernsMode": host.get("UsernsMode"),
        "userns (create command)": create_option(inspect, "--userns"),
        "Init": host.get("Init"),
    }


def check_server_has_its_secrets(port: int, exec_prefix: list[str], name: str, inspect: dict) -> None:
    """The restored server requires the key (401 without it) and its user can read the token."""
    url = f"http://127.0.0.1:{port}"
    assert requests.get(f"{url}/v1/models", timeout=10).status_code == 401
    assert requests.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).ok
    env = dict(item.split("=", 1) for item in inspect["Config"]["Env"])
    token = subprocess.run(
        [*exec_prefix, "exec", name, "cat", env["HF_TOKEN_PATH"]],
        check=False,
        capture_output=True,
        text=True,
        env=podman.env(),
    )
    assert token.stdout == HF_TOKEN, token.stderr
    for secret in (HF_TOKEN, API_KEY):
        assert secret not in json.dumps(inspect)


# --- (a) as root ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root_run(tmp_path_factory):
    """README vars + CPU swap, as root, default restore (serve), with the image of vLLM's user 2000:0.

    The uid-1001 image runs the same defaults with an HF token and an API key in
    test_vllm_profile_role.py (401 without the key, token file read by the server's user)."""
    image = podman.ensure_image("vllm-cpu-tiny-uid2000")
    cwd = tmp_path_factory.mktemp("root-defaults")
    variables = run_vars(image)
    name = variables["vllm_profile_container_name"]
    try:
        run = ansible.run_playbook(PLAYBOOK, variables, "-vvv", cwd=cwd)
        inspect = podman.inspect(name) if podman.run("container", "exists", name, check=False).returncode == 0 else {}
        yield {"run": run, "vars": variables, "cwd": cwd, "inspect": inspect, "image": image}
    finally:
        podman.remove_role_server(name)


def test_root_captures_with_the_defaults(root_run) -> None:
    run = root_run["run"]
    assert run.returncode == 0, run.stdout[-6000:]
    assert ansible.recap(run.stdout)["localhost"]["failed"] == 0
    # The default controller destination: captures/ where ansible-playbook ran, never the collection.
    line = host_line(run.stdout, "localhost")
    assert line.startswith(f"captured -> {root_run['cwd']}/captures/"), line
    host_dir = Path(line.split("-> ", 1)[1].split(" ", 1)[0])
    (worker,) = [p for p in host_dir.glob("*.pt.trace.json.gz") if "async_llm" not in p.name]
    assert len(engine_steps(worker)) == 10
    print(f"\n{Path(root_run['image']).name}: {line[:160]}")


def test_root_container_follows_the_guide(root_run) -> None:
    inspect = root_run["inspect"]
    assert inspect, "the restored server (restore=serve) is not running"
    summary = inspect_summary(inspect)
    print(f"\npodman inspect ({root_run['image']}): {summary}")
    assert "label=disable" in summary["SecurityOpt"]
    assert summary["ShmSize"] == 8 << 30
    assert summary["User"] == "2000"  # the image's own user, not an assumed one
    assert summary["Init"] is True
    # Root's podman 4.3 cannot run keep-id: no user namespace, and the play said why.
    assert summary["UsernsMode"] in ("", "host")
    assert "podman 4.3.1 runs keep-id only for rootless containers" in root_run["run"].stdout
    # The default host directories belong to the image's user and its group 0, group-writable.
    # So does this run's own directory, which the server wrote into through the link traces/current.
    run_id = Path(host_line(root_run["run"].stdout, "localhost").split("-> ", 1)[1].split(" ", 1)[0]).parent.name
    traces = Path("/var/lib/vllm-profile/traces")
    for directory in (Path("/var/lib/vllm-profile/cache"), traces, traces / run_id):
        st = directory.stat()
        assert (st.st_uid, st.st_gid) == (2000, 0), directory
        assert stat.S_IMODE(st.st_mode) == 0o770
    assert os.readlink(traces / "current") == run_id
    assert any((traces / run_id).glob("*.pt.trace.json.gz")), sorted(p.name for p in (traces / run_id).iterdir())


def test_root_server_reads_its_secrets_and_logs_none(root_run) -> None:
    check_server_has_its_secrets(
        root_run["vars"]["vllm_profile_port"],
        ["podman"],
        root_run["vars"]["vllm_profile_container_name"],
        root_run["inspect"],
    )
    output = root_run["run"].stdout + root_run["run"].stderr
    assert "ESTABLISH LOCAL CONNECTION" in output, "the run was not -vvv"
    assert HF_TOKEN not in output
    assert API_KEY not in output


# --- (b) rootless --------------------------------------------------------------------------------


def rootless_inventory(tmp: Path, hosts: dict[str, dict]) -> Path:
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"vllm_hosts": {"hosts": hosts}}}}))
    return path


def as_user_host(user: str, **more) -> dict:
    """An inventory host that is this machine reached as ``user`` (Ansible's become through su)."""
    return {
        "ansible_connection": "local",
        "ansible_become": True,
        "ansible_become_method": "su",
        "ansible_become_user": user,
        # Debian's own Python: the controller's (pyenv, under /root) is not readable by other users.
        "ansible_python_interpreter": "/usr/bin/python3",
        **more,
    }


@pytest.fixture(scope="module")
def rootless_run(tmp_path_factory):
    entry = rootless.ensure_user(ROOTLESS_USER, "300000-365535")
    image = podman.ensure_image("vllm-cpu-tiny-uid2000")
    rootless.load_image(ROOTLESS_USER, image)
    cwd = tmp_path_factory.mktemp("rootless-defaults")
    variables = run_vars(image)
    inventory = rootless_inventory(cwd, {"rootless": as_user_host(ROOTLESS_USER)})
    name = variables["vllm_profile_container_name"]
    try:
        run = ansible.run_playbook(PLAYBOOK, variables, "-vvv", inventory=inventory, cwd=cwd)
        raw = rootless.as_user(ROOTLESS_USER, f"podman container inspect {name}", check=False)
        inspect = json.loads(raw.stdout)[0] if raw.returncode == 0 else {}
        yield {"run": run, "vars": variables, "cwd": cwd, "inspect": inspect, "entry": entry}
    finally:
        rootless.remove_containers(ROOTLESS_USER, name)
        rootless.as_user(ROOTLESS_USER, f"podman secret rm {name}-hf-token {name}-api-key", check=False)


def test_rootless_captures_with_the_guides_keep_id(rootless_run) -> None:
    run = rootless_run["run"]
    assert run.returncode == 0, run.stdout[-6000:]
    line = host_line(run.stdout, "rootless")
    assert line.startswith(f"captured -> {rootless_run['cwd']}/captures/"), line
    host_dir = Path(line.split("-> ", 1)[1].split(" ", 1)[0])
    (worker,) = [p for p in host_dir.glob("*.pt.trace.json.gz") if "async_llm" not in p.name]
    assert len(engine_steps(worker)) == 10
    summary = inspect_summary(rootless_run["inspect"])
    print(f"\nrootless: {line[:160]}\npodman inspect (rootless): {summary}")
    assert summary["userns (create command)"] == "keep-id:uid=2000"
    assert "label=disable" in summary["SecurityOpt"]
    assert summary["ShmSize"] == 8 << 30
    assert summary["User"] == "2000"
    # Rootless defaults: the user's XDG data dir, owned by the user (keep-id shows them as 2000:0 inside).
    home = Path(rootless_run["entry"].pw_dir)
    traces = home / ".local" / "share" / "vllm-profile" / "traces"
    assert traces.is_dir()
    assert traces.stat().st_uid == rootless_run["entry"].pw_uid
    run_id = Path(host_line(rootless_run["run"].stdout, "rootless").split("-> ", 1)[1].split(" ", 1)[0]).parent.name
    run_dir = traces / run_id  # this run's own directory
    assert run_dir.stat().st_uid == rootless_run["entry"].pw_uid
    assert os.readlink(traces / "current") == run_dir.name
    assert any(run_dir.glob("*.pt.trace.json.gz"))


def test_rootless_server_reads_its_secrets(rootless_run) -> None:
    uid = rootless_run["entry"].pw_uid
    # su hands the words after the command to the shell: the first is $0.
    prefix = ["su", ROOTLESS_USER, "-s", "/bin/sh", "-c", f'XDG_RUNTIME_DIR=/run/user/{uid} podman "$@"', "sh"]
    check_server_has_its_secrets(
        rootless_run["vars"]["vllm_profile_port"],
        prefix,
        rootless_run["vars"]["vllm_profile_container_name"],
        rootless_run["inspect"],
    )


# --- host lines that say why -------------------------------------------------------------------


@pytest.fixture(scope="module")
def failing_fleet(tmp_path_factory):
    """One run, five hosts (this machine under five names), each failing for a different reason."""
    rootless.ensure_user(NO_SUBID_USER, None)
    image = podman.ensure_image("vllm-cpu-tiny")
    cwd = tmp_path_factory.mktemp("failing")
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}

    def own(**more):
        return {
            **local,
            "vllm_profile_container_name": podman.unique_name("fail"),
            "vllm_profile_port": podman.free_port(),
            "vllm_profile_devices": [],
            **more,
        }

    hosts = {
        "port-taken": own(),
        "unknown-cdi": own(vllm_profile_devices=["nvidia.com/gpu=7"]),
        "keep-id-root-podman43": own(vllm_profile_userns="keep-id:uid=1001"),
        "podman-refuses": own(vllm_profile_podman_options={"dns": ["not-an-ip"]}),
        "rootless-no-subuid": own(**as_user_host(NO_SUBID_USER)),
    }
    variables = run_vars(image)
    for key in ("vllm_profile_container_name", "vllm_profile_port", "vllm_profile_devices"):
        variables.pop(key)  # per host, from the inventory
    inventory = rootless_inventory(cwd, hosts)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", hosts["port-taken"]["vllm_profile_port"]))
        busy.listen()
        try:
            run = ansible.run_playbook(PLAYBOOK, variables, inventory=inventory, cwd=cwd)
        finally:
            for host in hosts.values():
                podman.remove_role_server(host["vllm_profile_container_name"])
    return run


@pytest.mark.parametrize(
    ("host", "cause"),
    [
        ("port-taken", r"127\.0\.0\.1:\d+ cannot be used for the server \(address already in use\): stop what listens"),
        # "known:" lists what /etc/cdi and /var/run/cdi hold at the time ("no CDI specs in ..." on a bare
        # machine; test_cdi_devices_podman, in the other test process, may have one there for a moment).
        ("unknown-cdi", r"CDI device\(s\) nvidia\.com/gpu=7 unknown to podman \(known: "),
        ("keep-id-root-podman43", r"keep-id:uid=1001 cannot run here: podman 4\.3\.1 runs keep-id only for rootless"),
        ("podman-refuses", r"Container \S+ exited with code 125 when runed: not-an-ip is not an ip address"),
        ("rootless-no-subuid", r"user vllm-nosubid has no subordinate uid range in /etc/subuid.*usermod --add-subuids"),
    ],
)
def test_each_failed_host_line_names_the_cause(failing_fleet, host, cause) -> None:
    line = host_line(failing_fleet.stdout, host)
    print(f"\n{host}: {line}")
    assert line.startswith("failed"), line
    assert re.search(cause, line), line


def test_no_init_binary_says_what_to_install(tmp_path) -> None:
    """podman's own containers.conf init_path pointing at a missing catatonit, as on a host without it
    (the preflight reads the same settings podman does; podman itself then says "container-init binary
    not found on the host")."""
    conf = tmp_path / "containers.conf"
    conf.write_text(rootless.CONTAINERS_CONF.replace("[engine]\n", '[engine]\ninit_path = "/nonexistent/catatonit"\n'))
    variables = run_vars(podman.ensure_image("vllm-cpu-tiny"))
    run = ansible.run_playbook(PLAYBOOK, variables, cwd=tmp_path, CONTAINERS_CONF=str(conf))
    podman.remove_role_server(variables["vllm_profile_container_name"])
    line = host_line(run.stdout, "localhost")
    print(f"\nlocalhost: {line}")
    assert run.returncode != 0
    assert "podman's init binary (/nonexistent/catatonit, set by init_path in containers.conf) is missing" in line
    assert "install catatonit, or set vllm_profile_install_prerequisites: true" in line
