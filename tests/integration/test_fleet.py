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

The capture across hosts (site.yml with one host captured, one whose server never starts and one killed
mid-run) is test_awx_runner.py's job, run the way AWX runs it.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from support import ansible, podman, standin_fleet

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
