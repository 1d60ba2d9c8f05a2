# SPDX-License-Identifier: GPL-3.0-or-later
"""The vllm_infra.profiling.run_id_problem filter in-process, and the vllm_profile role refusing a bad run id through
real Ansible before anything starts on the host."""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.module_utils import _internal as ansible_internal
from support import ansible

from ansible_collections.vllm_infra.profiling.plugins.module_utils._profiler import NAME_RULE


@pytest.fixture
def run_id_problem(monkeypatch: pytest.MonkeyPatch) -> t.Callable[[t.Any], str]:
    """Imported inside the test (see test_profiler_switch.py: a controller import flags the process)."""
    monkeypatch.setattr(ansible_internal, "is_controller", ansible_internal.is_controller)
    from ansible_collections.vllm_infra.profiling.plugins.filter.run_id_problem import FilterModule  # noqa: PLC0415

    return FilterModule().filters()["run_id_problem"]


@pytest.mark.parametrize("run_id", ["20261130T170000Z", "awx-job-42", "e2e-c47a70", "run1", "a.b_c-d", "9" * 128])
def test_usable_run_ids(run_id_problem, run_id: str) -> None:
    assert run_id_problem(run_id) == ""


@pytest.mark.parametrize(
    "run_id",
    ["", "..", ".hidden", "-x", "../runs", "a/b", "run 1", "ré", "9" * 129, None, 42],
)
def test_refused_run_ids_say_why(run_id_problem, run_id: t.Any) -> None:
    assert run_id_problem(run_id) == f"{run_id!r} cannot name the run's directories and trace files: use {NAME_RULE}"


def test_the_role_refuses_a_bad_run_id_before_anything_starts(tmp_path: Path) -> None:
    """Through profile_torch.yml on an inventory host of its own (``localhost`` runs the report), as a fleet runs."""
    variables = yaml.safe_load((ansible.REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
    variables.update({"vllm_profile_run_id": "../runs", "vllm_profile_container_name": "vit-never-started"})
    inventory = tmp_path / "inventory.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    inventory.write_text(yaml.safe_dump({"all": {"children": {"vllm_hosts": {"hosts": {"bad-run-id": host}}}}}))
    proc = ansible.run_playbook("playbooks/profile_torch.yml", variables, inventory=inventory, timeout=300)
    out = " ".join(proc.stdout.split()).replace("''", "'")
    assert proc.returncode != 0
    refused = "vllm_profile_run_id '../runs' cannot name the run's directories and trace files: use 1-128 ASCII"
    assert "TASK [vllm_infra.profiling.vllm_profile : Check the run id]" in out
    # Refused in the settings check: the preflight, the image, the server and the restore are skipped.
    for task in ("Check the host before anything starts", "Restore the host (remove)"):
        assert re.search(rf"{re.escape(task)}\] \*+ skipping: \[bad-run-id\]", out), (task, proc.stdout[-3000:])
    # The report's line for the host says why (the role recorded it), not only that the host did not run.
    assert f'bad-run-id: failed at "Check the run id": {refused}' in out, proc.stdout[-3000:]
