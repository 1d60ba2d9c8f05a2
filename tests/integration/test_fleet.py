# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet playbooks, run as a user runs them: ansible-playbook against several hosts at once.

* ``test_prepare_hosts_fleet``: the preparation of playbooks/site.yml (playbooks/prepare_hosts.yml) on a fleet of
  STAND-IN GPU hosts: two RHEL 9 stand-ins (tools/images/rhel9-standin), each a privileged container reached
  through the containers.podman.podman connection, installing STAND-IN NVIDIA packages from signed stand-in
  repositories (tools/standin-repos) served inside each container, exactly as the molecule scenarios do (their
  prepare playbooks and molecule/resources/vars/standin.yml are reused; the Debian 12 host is molecule's). One
  RHEL host is broken on purpose (its CUDA repository mirror is down) and one inventory host does not exist
  (unreachable). Told to stop when any host fails (vllm_fleet_max_fail_percentage: 0), the run converges the good
  host all the same, reports both broken hosts, and stops before profiling.

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
# reported while the others fail. Each good host costs ~35 CPU-s of converge (measured), and the molecule
# scenarios converge and rerun both platforms already (molecule/host_prep_*), so one good host, of the guide's
# platform, and one run.
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
        # site.yml, whose preparation is prepare_hosts.yml, with the fleet told to stop when any host fails it (as
        # an AWX survey's integer answer): the good host converges all the same, and the run stops before profiling.
        # (A second run that changes nothing is molecule's idempotence step, on the same stand-in and roles.)
        started = time.monotonic()
        run = ansible.run_playbook(
            "playbooks/site.yml",
            {"vllm_fleet_max_fail_percentage": 0},
            inventory=inventory,
            **PLAYBOOK_ENV,
            **standin_fleet.ENV,
        )
        yield {"run": run, "run_s": time.monotonic() - started, "names": names, "setup_s": setup_s}


def test_prepare_hosts_fleet_converges_and_reports_the_broken_hosts(prepared_fleet) -> None:
    run = prepared_fleet["run"]
    recap = ansible.recap(run.stdout)
    print(f"\nstand-in setup {prepared_fleet['setup_s']:.0f}s; site.yml {prepared_fleet['run_s']:.0f}s")
    for host, counts in sorted(recap.items()):
        print(f"recap {host}: {counts}")
    print("\n".join(re.findall(r"^.*-{3,} \d+\.\d+s$", run.stdout, re.M)[:8]))
    # The broken host fails and the ghost is unreachable: the run fails, but only on them.
    assert run.returncode != 0
    assert recap["rhel-2"]["failed"] == 1, recap
    assert recap["ghost"]["unreachable"] == 1, recap
    # The good hosts converged (changed), although another host failed first (every host's failure is its own).
    for host in GOOD:
        assert recap[host]["failed"] == 0 and recap[host]["unreachable"] == 0, (host, recap)
        assert recap[host]["changed"] > 0, (host, recap)
    # site.yml stopped after the preparation: one host failed it, and 0 % may.
    assert "PLAY [Prepare the GPU hosts (NVIDIA driver, Container Toolkit, CDI)]" in run.stdout
    assert "PLAY [Profile vLLM on every prepared host]" not in run.stdout, run.stdout[-4000:]
    # One line per host on the controller, saying why the broken ones failed.
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
