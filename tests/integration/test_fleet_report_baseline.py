# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report (playbooks/report.yml) comparing each host with a chosen baseline host, run as AWX runs it.

No new capture: the run's directory is laid out as the role leaves it (``<dest>/<run_id>/<host>/``) from the real
2-rank H200 captures in tests/fixtures/traces/gpu-tp2 (torch.profiler with NCCL, see their PROVENANCE): gpu-a holds
``eager/`` (the baseline), gpu-b ``candidate/`` (the same run in float32: compute time x10, the deliberate change)
and gpu-c ``graph/`` (CUDA-graph replay). Each inventory host carries the ``vllm_profile_result`` the role would have
set after fetching its capture (status captured, dest, run_id) - a stand-in for the capture plays, which
tests/integration/test_awx_runner.py runs for real with vLLM. report.yml itself runs unchanged
through ansible-runner (AWX's runner): its play output, the job's status and the set_stats artifact are read back.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import ansible_runner
import yaml
from support import ansible

REPO = ansible.REPO
TP2 = REPO / "tests" / "fixtures" / "traces" / "gpu-tp2"
CAPTURES = {"gpu-a": "eager", "gpu-b": "candidate", "gpu-c": "graph"}


def run_report(tmp_path: Path, name: str, extra_vars: dict) -> tuple[object, str, dict, Path]:
    """report.yml through ansible-runner: (runner, the play's stdout, the set_stats artifact, the run's dir)."""
    run_dir = tmp_path / name / "captures" / "run-1"
    hosts = {}
    for host, capture in CAPTURES.items():
        shutil.copytree(TP2 / capture, run_dir / host)
        hosts[host] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "vllm_profile_result": {
                "status": "captured",
                "dest": str(run_dir / host),
                "run_id": "run-1",
                "files": sorted(p.name for p in (run_dir / host).iterdir()),
            },
        }
    private = tmp_path / name / "private"
    (private / "inventory").mkdir(parents=True)
    (private / "inventory" / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"vllm_hosts": {"hosts": hosts}}}})
    )
    (private / "env").mkdir()
    (private / "env" / "extravars").write_text(json.dumps(extra_vars))
    # One result per line (json): the report's lines are read from the play's output as a person reads them.
    envvars = {k: v for k, v in ansible.env().items() if k.startswith("ANSIBLE_")}
    (private / "env" / "envvars").write_text(json.dumps({**envvars, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}))
    runner = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(REPO),
        playbook="playbooks/report.yml",
        ident=name,
        quiet=True,
        timeout=600,
    )
    stdout = runner.stdout.read()
    stats = next(e for e in runner.events if e["event"] == "playbook_on_stats")["event_data"]
    return runner, stdout, (stats.get("artifact_data") or {}).get("vllm_profile", {}), run_dir


def test_each_host_against_the_baseline_host_and_the_gate(tmp_path: Path) -> None:
    # The survey's answers arrive as strings: the gate's "true" too.
    runner, out, artifact, run_dir = run_report(
        tmp_path, "gate", {"vllm_profile_baseline_host": "gpu-a", "vllm_profile_baseline_gate": "true"}
    )
    lines = [line.strip() for line in out.splitlines() if '"msg": "gpu-' in line and "against gpu-a" in line]
    print("\n".join(lines))
    print(json.dumps(artifact.get("baseline"), indent=1))
    # Default limits (trace_compare's): the float32 host is over (compute time x10), the graph host within.
    assert runner.status == "failed" and runner.rc != 0
    assert "Against baseline host gpu-a: gpu-b: compute time 10.956 ms -> 116.056 ms (+959.3%, limit +10%)" in out
    assert any(line.startswith('"msg": "gpu-b against gpu-a: step p50 1.246 ms -> 0.727 ms (-41.7%)') for line in lines)
    assert any(line.endswith('; within the limits"') and "gpu-c" in line for line in lines), lines
    # The job's artifacts (AWX) keep the lines and the verdict; the gate ran after they were left.
    base = artifact["baseline"]
    assert base["host"] == "gpu-a" and base["error"] is None
    assert base["failures"] == ["gpu-b: compute time 10.956 ms -> 116.056 ms (+959.3%, limit +10%)"]
    assert sorted(base["lines"]) == ["gpu-b", "gpu-c"]
    assert artifact["captured"] == ["gpu-a", "gpu-b", "gpu-c"]
    # The fleet report itself (md and html) has the table against the baseline host.
    md = (run_dir / "fleet-report" / "summary.md").read_text()
    section = md[md.index("## Against the baseline host gpu-a") : md.index("## Host gpu-a")]
    print(section)
    assert "2 hosts against baseline gpu-a: 1 over the limits (gpu-b)" in section
    assert "| gpu-c | 1.246 ms -> 0.046 ms (-96.3%) |" in section
    assert "<h2>Against the baseline host gpu-a</h2>" in (run_dir / "fleet-report" / "report.html").read_text()


def test_thresholds_from_the_inventory_and_report_only(tmp_path: Path) -> None:
    # compute time not checked, communication share checked: the gate passes on gpu-b (its share fell)...
    limits = {"compute_time_pct": None, "communication_share_pts": 5}
    runner, out, artifact, _run_dir = run_report(
        tmp_path,
        "limits",
        {
            "vllm_profile_baseline_host": "gpu-a",
            "vllm_profile_baseline_thresholds": limits,
            "vllm_profile_baseline_gate": True,
        },
    )
    assert runner.status == "successful", out[-3000:]
    assert artifact["baseline"]["failures"] == [] and sorted(artifact["baseline"]["lines"]) == ["gpu-b", "gpu-c"]
    # ... and without the gate a host over the default limits is reported, not failed.
    runner, out, artifact, _run_dir = run_report(tmp_path, "report-only", {"vllm_profile_baseline_host": "gpu-a"})
    assert runner.status == "successful", out[-3000:]
    assert artifact["baseline"]["failures"] == ["gpu-b: compute time 10.956 ms -> 116.056 ms (+959.3%, limit +10%)"]


def test_a_baseline_host_without_a_capture_fails_the_gate_saying_why(tmp_path: Path) -> None:
    runner, out, artifact, _run_dir = run_report(
        tmp_path, "missing", {"vllm_profile_baseline_host": "gpu-z", "vllm_profile_baseline_gate": True}
    )
    assert runner.status == "failed"
    assert "no host directory 'gpu-z' to compare against (hosts: gpu-a, gpu-b, gpu-c)" in out
    assert "no host directory 'gpu-z'" in artifact["baseline"]["error"]
