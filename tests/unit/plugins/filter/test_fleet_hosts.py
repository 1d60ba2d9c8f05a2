# SPDX-License-Identifier: GPL-3.0-or-later
"""The vllm_infra.profiling.fleet_hosts filter (playbooks/report.yml): every state a host can end a run in,
in-process, and once through real Ansible by its FQCN."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from ansible.module_utils import _internal as ansible_internal
from support import ansible


@pytest.fixture
def fleet_hosts(monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., dict[str, t.Any]]:
    """Imported inside the test (see test_profiler_switch.py: a controller import flags the process)."""
    monkeypatch.setattr(ansible_internal, "is_controller", ansible_internal.is_controller)
    from ansible_collections.vllm_infra.profiling.plugins.filter.fleet_hosts import FilterModule  # noqa: PLC0415

    return FilterModule().filters()["fleet_hosts"]


CAPTURED = {
    "status": "captured",
    "dest": "/c/run1/a",
    "files": ["rank0.pt.trace.json.gz", "async_llm.pt.trace.json.gz"],
    "headline": "10 decode steps, 3.1 ms each",
    "report": "/c/run1/a/report/report.html",
    "vllm_version": "0.32.0",
    "run_id": "run1",
}
FAILED = {"status": "failed", "failed_task": "Capture a PyTorch-profiler trace", "error": "workload failed: boom"}


@pytest.mark.parametrize(
    ("result", "prepare", "status", "line"),
    [
        (CAPTURED, {}, "captured", "captured -> /c/run1/a (2 files) 10 decode steps, 3.1 ms each"),
        ({**CAPTURED, "headline": ""}, {}, "captured", "captured -> /c/run1/a (2 files) "),
        (FAILED, {"status": "ok"}, "failed", 'failed at "Capture a PyTorch-profiler trace": workload failed: boom'),
        ({"status": "failed", "error": "x"}, {}, "failed", "failed: x"),
        (
            {},
            {"status": "failed", "failed_task": "Install the driver", "error": "no repo"},
            "not profiled",
            'not profiled: preparation failed at "Install the driver": no repo',
        ),
        ({}, {"status": "unreachable"}, "not profiled", "not profiled: unreachable during its preparation"),
        (
            {"status": "running"},
            {},
            "unreachable",
            "unreachable: the host left the play during the capture (no result after it started)",
        ),
        ({"status": "skipped", "error": "check mode"}, {}, "skipped", "skipped: check mode"),
        ({}, {}, "not run", "not run: no result recorded (unreachable, or it left the play before the capture)"),
    ],
)
def test_every_end_state(fleet_hosts, result, prepare, status, line) -> None:
    record = fleet_hosts({"h": result}, {"h": prepare})["h"]
    assert record["status"] == status
    assert record["line"] == line


def test_the_artifact_record(fleet_hosts) -> None:
    records = fleet_hosts(
        {"a": CAPTURED, "b": FAILED, "c": {}},
        {"a": {"status": "ok"}, "c": {"status": "failed", "failed_task": "t", "error": "e"}},
    )
    assert list(records) == ["a", "b", "c"]
    assert {k: v for k, v in records["a"].items() if k != "line"} == {
        "status": "captured",
        "error": "",
        "failed_task": "",
        "dest": "/c/run1/a",
        "files": 2,
        "report": "/c/run1/a/report/report.html",
        "headline": "10 decode steps, 3.1 ms each",
        "vllm_version": "0.32.0",
        "prepare": "ok",
    }
    assert (records["b"]["files"], records["b"]["error"], records["b"]["prepare"]) == (0, "workload failed: boom", "")
    # The preparation's error stands in when the host never reached the role.
    assert (records["c"]["error"], records["c"]["failed_task"], records["c"]["prepare"]) == ("e", "t", "failed")


REPORT_PLAYBOOK = """
- name: The fleet records, by the filter's FQCN
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write them
      ansible.builtin.copy:
        content: "{{ records | vllm_infra.profiling.fleet_hosts(prepare) | to_json }}"
        dest: "{{ out }}"
        mode: "0644"
"""


def test_through_ansible_by_its_fqcn(tmp_path: Path) -> None:
    playbook, out = tmp_path / "records.yml", tmp_path / "records.json"
    playbook.write_text(REPORT_PLAYBOOK)
    records = {"a": {"status": "running"}, "b": {}, "c": CAPTURED}
    variables = {"records": records, "prepare": {"b": {"status": "unreachable"}}, "out": str(out)}
    proc = ansible.run_playbook(str(playbook), variables)
    assert proc.returncode == 0, proc.stdout[-3000:]
    written = json.loads(out.read_text())
    assert [written[h]["status"] for h in "abc"] == ["unreachable", "not profiled", "captured"]
    assert written["c"]["line"] == "captured -> /c/run1/a (2 files) 10 decode steps, 3.1 ms each"
