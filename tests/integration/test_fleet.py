# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet playbooks, run as a user runs them: ansible-playbook against several hosts at once.

* ``test_prepare_hosts_fleet``: playbooks/prepare_hosts.yml on a fleet of STAND-IN GPU hosts: two RHEL 9
  stand-ins (tools/images/rhel9-standin), each a privileged container reached through the
  containers.podman.podman connection, installing STAND-IN NVIDIA packages from signed stand-in repositories
  (tools/standin-repos) served inside each container, exactly as the molecule scenarios do (their prepare
  playbooks and molecule/resources/vars/standin.yml are reused; the Debian 12 host is molecule's). One RHEL host
  is broken on purpose (its CUDA repository mirror is down) and one inventory host does not exist
  (unreachable). The good host converges, and the second run (site.yml, whose preparation is the same playbook)
  changes nothing on it and, told to stop when any host fails (vllm_fleet_max_fail_percentage: 0), stops before
  profiling; both broken hosts are reported.
* ``test_capture_two_hosts_one_killed_mid_run``: playbooks/site.yml across two inventory hosts that are two
  vLLM servers on ONE machine (this one): both hosts are ``ansible_connection: local`` with their own container
  name, port, capture and cache directories -- not two machines. The real vLLM CPU image serves both; host B's
  container is killed during its workload. Host A's trace is fetched and summarised, the fleet report is
  written, and the report has one line per host (captured / failed and why).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from support import ansible, podman, standin_fleet
from support.vllm import shared_cache_dir

REPO = ansible.REPO

pytestmark = [pytest.mark.podman]


# One result per line (callback_result_format json), and the time each task took.
PLAYBOOK_ENV = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}
MSG = re.compile(r'"msg": ("(?:[^"\\]|\\.)*")')
REPORT_LINE = re.compile(r"^([\w.-]+): ((?:captured|failed|not |prepared|unreachable|skipped).*)$", re.S)


def report_lines(output: str) -> dict[str, str]:
    """The report's `<host>: <line>` debug messages, by host (the last one of each host)."""
    lines = {}
    for quoted in MSG.findall(output):
        match = REPORT_LINE.match(json.loads(quoted))
        if match:
            lines[match.group(1)] = match.group(2)
    return lines


# --------------------------------------------------------------------------- (a) prepare_hosts.yml

# One good host, the broken one and the ghost below: what a fleet adds is that the good host converges and is
# reported while the others fail. Each good host costs ~35 CPU-s of converge and rerun (measured), and the
# molecule scenarios converge and rerun both platforms already (molecule/host_prep_*), so one good host, of the
# guide's platform.
KINDS = {"rhel-1": "rhel9", "rhel-2": "rhel9"}


GOOD = ("rhel-1",)


@pytest.fixture(scope="module")
def prepared_fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    with standin_fleet.hosts(KINDS) as names:
        host_vars = {
            # Broken on purpose: this host's CUDA repository mirror is down (nothing listens on port 9).
            "rhel-2": {"nvidia_driver_cuda_repo_base_url": "http://127.0.0.1:9/compute/cuda/repos"},
            # And a host that does not exist at all.
            "ghost": {"ansible_connection": "containers.podman.podman", "ansible_host": podman.unique_name("ghost")},
        }
        inventory = standin_fleet.write_inventory(tmp / "inventory.yml", standin_fleet.inventory(names, host_vars))
        started = time.monotonic()
        standin_fleet.prepare(inventory, KINDS)
        setup_s = time.monotonic() - started
        runs = []
        # First prepare_hosts.yml; then site.yml, whose preparation is the same playbook, with the fleet told to
        # stop when any host fails it (as an AWX survey's integer answer): it must stop before profiling.
        for playbook, extra_vars in (
            ("playbooks/prepare_hosts.yml", None),
            ("playbooks/site.yml", {"vllm_fleet_max_fail_percentage": 0}),
        ):
            started = time.monotonic()
            proc = ansible.run_playbook(playbook, extra_vars, inventory=inventory, **PLAYBOOK_ENV, **standin_fleet.ENV)
            runs.append((proc, time.monotonic() - started))
        yield {"runs": runs, "names": names, "setup_s": setup_s}


def test_prepare_hosts_fleet_converges_and_reports_the_broken_hosts(prepared_fleet) -> None:
    (first, first_s), (second, second_s) = prepared_fleet["runs"]
    recap1, recap2 = ansible.recap(first.stdout), ansible.recap(second.stdout)
    print(f"\nstand-in setup {prepared_fleet['setup_s']:.0f}s; run 1 {first_s:.0f}s; run 2 {second_s:.0f}s")
    for label, recap in (("run 1", recap1), ("run 2", recap2)):
        for host, counts in sorted(recap.items()):
            print(f"{label} recap {host}: {counts}")
    print("\n".join(re.findall(r"^.*-{3,} \d+\.\d+s$", first.stdout, re.M)[:8]))
    # The broken host fails and the ghost is unreachable: the run fails, but only on them.
    assert first.returncode != 0 and second.returncode != 0
    for recap in (recap1, recap2):
        assert recap["rhel-2"]["failed"] == 1, recap
        assert recap["ghost"]["unreachable"] == 1, recap
        for host in GOOD:
            assert recap[host]["failed"] == 0 and recap[host]["unreachable"] == 0, (host, recap)
    # The second run (site.yml) stopped after the preparation: one host failed it, and 0 % may.
    assert "PLAY [Prepare the GPU hosts (NVIDIA driver, Container Toolkit, CDI)]" in second.stdout
    assert "PLAY [Profile vLLM on every prepared host]" not in second.stdout, second.stdout[-4000:]
    # The good hosts converged (changed on the first run), then nothing changed.
    for host in GOOD:
        assert recap1[host]["changed"] > 0, (host, recap1)
        assert recap2[host]["changed"] == 0, (host, first.stdout[-4000:], second.stdout[-8000:])
    # One line per host on the controller, saying why the broken ones failed.
    for run in (first, second):
        lines = report_lines(run.stdout)
        print("\n".join(f"report {h}: {line}" for h, line in sorted(lines.items())))
        for host in GOOD:
            assert lines[host].startswith("prepared (driver "), lines
        assert lines["rhel-2"].startswith("failed at "), lines
        assert "127.0.0.1:9" in lines["rhel-2"] or "refused" in lines["rhel-2"].lower(), lines
        assert lines["ghost"].startswith("unreachable"), lines
    # The good hosts have the stand-in driver and toolkit, and the CDI spec the toolkit role wrote.
    for host in GOOD:
        name = prepared_fleet["names"][host]
        assert podman.run("exec", name, "test", "-s", "/etc/cdi/nvidia.yaml", check=False).returncode == 0, host
        assert podman.run("exec", name, "nvidia-ctk", "--version", check=False).returncode == 0, host
    assert podman.run(
        "exec", prepared_fleet["names"]["rhel-2"], "test", "-e", "/etc/cdi/nvidia.yaml", check=False
    ).returncode


# --------------------------------------------------------------------------- (b) capture across hosts


def kill_when_profiling(name: str, stop: threading.Event, killed: list[str], timeout: float = 600) -> None:
    """Kill the container once its server has started profiling (the workload is running)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        logs = podman.run("logs", name, check=False)
        # the access log line, not the route list vLLM prints at start-up
        if "POST /start_profile HTTP" in logs.stdout + logs.stderr:
            time.sleep(1)
            podman.run("kill", name, check=False)
            killed.append(name)
            return
        time.sleep(0.5)


@pytest.mark.vllm
def test_capture_two_hosts_one_killed_mid_run(tmp_path: Path) -> None:
    """Two inventory hosts that are two vLLM servers on this one machine (ansible_connection: local)."""
    podman.ensure_image("vllm-cpu-tiny")
    demo = yaml.safe_load((REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
    hosts = {}
    for host in ("fleet-a", "fleet-b"):
        hosts[host] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "vllm_profile_container_name": podman.unique_name(host),
            "vllm_profile_port": podman.free_port(),
            "vllm_profile_capture_dir_host": str(tmp_path / host / "traces"),
            "vllm_profile_cache_dir": shared_cache_dir(demo["vllm_profile_image"]),
        }
    # B's workload is long enough to be killed in the middle of it.
    hosts["fleet-b"].update({"vllm_profile_num_requests": 400, "vllm_profile_max_tokens": 16})
    inventory = standin_fleet.write_inventory(
        tmp_path / "inventory.yml", {"all": {"children": {"vllm_hosts": {"hosts": hosts, "vars": demo}}}}
    )
    dest = tmp_path / "captures"
    stop, killed = threading.Event(), []
    killer = threading.Thread(
        target=kill_when_profiling, args=(hosts["fleet-b"]["vllm_profile_container_name"], stop, killed), daemon=True
    )
    killer.start()
    started = time.monotonic()
    try:
        # As a survey would pass them: strings.
        run = ansible.run_playbook(
            "playbooks/site.yml",
            {"vllm_profile_dest": str(dest), "vllm_fleet_prepare": "false"},
            inventory=inventory,
            **PLAYBOOK_ENV,
        )
    finally:
        stop.set()
        killer.join(timeout=10)
        for host in hosts.values():
            podman.remove(host["vllm_profile_container_name"])
    wall = time.monotonic() - started
    recap = ansible.recap(run.stdout)
    lines = report_lines(run.stdout)
    print(f"\nsite.yml across 2 hosts: {wall:.0f}s, rc {run.returncode}")
    print("\n".join(f"recap {h}: {c}" for h, c in sorted(recap.items())))
    print("\n".join(f"report {h}: {line}" for h, line in sorted(lines.items())))
    print("\n".join(re.findall(r"^.*-{3,} \d+\.\d+s$", run.stdout, re.M)[:12]))

    assert killed, f"fleet-b was never seen profiling:\n{run.stdout[-6000:]}"
    assert run.returncode != 0
    assert recap["fleet-a"]["failed"] == 0 and recap["fleet-b"]["failed"] == 1, run.stdout[-6000:]
    # One run id for the fleet: one run directory, holding fleet-a's capture (fleet-b fetched nothing).
    (run_dir,) = [p for p in dest.iterdir() if p.is_dir()]
    a_dir = run_dir / "fleet-a"
    workers = sorted(a_dir.glob("*rank0*.pt.trace.json.gz"))
    assert len(workers) == 1, sorted(p.name for p in a_dir.iterdir())
    assert not (run_dir / "fleet-b").exists() or not list((run_dir / "fleet-b").glob("*.pt.trace.json*"))
    assert (a_dir / "report" / "summary.json").is_file()
    # The fleet report compares the captured hosts (here: one).
    fleet = json.loads((run_dir / "fleet-report" / "summary.json").read_text())
    assert [h["host"] for h in fleet["hosts"]] == ["fleet-a"], fleet.keys()
    assert fleet["hosts"][0]["summary"]["steps"]["decode_steps"] >= 1
    # The lines: A captured (with where and what), B failed during the capture, with the reason.
    assert lines["fleet-a"].startswith(f"captured -> {a_dir} ("), lines
    assert lines["fleet-b"].startswith('failed at "Capture a PyTorch-profiler trace'), lines
    # Both containers were cleaned up by the role (restore: remove), the killed one included.
    for host in hosts.values():
        assert podman.run("container", "exists", host["vllm_profile_container_name"], check=False).returncode == 1
