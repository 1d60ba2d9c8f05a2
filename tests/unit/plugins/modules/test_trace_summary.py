# SPDX-License-Identifier: GPL-3.0-or-later
"""The trace_summary module, run for real: as Ansible runs a module (a process reading its
arguments from a file) and once through ansible-playbook with the FQCN and delegate_to."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
FIX = REPO / "tests" / "fixtures" / "traces"
MODULE = "ansible_collections.vllm_infra.profiling.plugins.modules.trace_summary"


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = str(REPO / ".build" / "collections")
    out["ANSIBLE_COLLECTIONS_PATH"] = str(REPO / ".build" / "collections")
    out["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    return out


def run_module(tmp_path: Path, check_mode: bool = False, **args: object) -> dict:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}))
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, str(args_file)],
        check=False,
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_writes_the_report_then_changes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "report"
    first = run_module(tmp_path, path=str(FIX / "cpu" / "nostack"), dest=str(dest), top=5)
    assert first["changed"] is True and not first.get("failed")
    assert sorted(p.name for p in dest.iterdir()) == ["report.html", "summary.json", "summary.md"]
    assert first["report"]["html"] == str(dest / "report.html")
    assert first["written"] == [str(dest / n) for n in ("summary.json", "summary.md", "report.html")]
    summary = first["summary"]
    assert summary["steps"]["prefill_steps"] == 1 and summary["steps"]["decode_steps"] == 9
    assert summary["kind"] == "worker" and summary["vllm_version"] == "0.32.0"
    assert len(summary["top_ops"]) == 5
    assert first["headline"].startswith("10 steps") and first["headline"].endswith(str(dest / "report.html"))
    on_disk = json.loads((dest / "summary.json").read_text())
    assert on_disk["summary"] == summary and on_disk["headline"] == first["headline"]
    before = {p: p.stat().st_mtime_ns for p in dest.iterdir()}
    second = run_module(tmp_path, path=str(FIX / "cpu" / "nostack"), dest=str(dest), top=5)
    assert second["changed"] is False and second["written"] == []
    assert {p: p.stat().st_mtime_ns for p in dest.iterdir()} == before
    third = run_module(tmp_path, path=str(FIX / "cpu" / "nostack"), dest=str(dest), top=6)
    assert third["changed"] is True  # a different report


def test_check_mode_computes_but_writes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "report"
    predicted = run_module(tmp_path, check_mode=True, path=str(FIX / "cpu" / "stack"), dest=str(dest))
    assert predicted["changed"] is True and len(predicted["written"]) == 3
    assert not dest.exists()
    assert predicted["summary"]["layers"]["count"] == 2
    real = run_module(tmp_path, path=str(FIX / "cpu" / "stack"), dest=str(dest))
    assert real["changed"] is True and real["summary"] == predicted["summary"]
    again = run_module(tmp_path, check_mode=True, path=str(FIX / "cpu" / "stack"), dest=str(dest))
    assert again["changed"] is False


def test_default_dest_is_inside_the_capture_and_never_read_back(tmp_path: Path) -> None:
    cap = tmp_path / "cap"
    shutil.copytree(FIX / "cpu" / "nostack", cap)
    first = run_module(tmp_path, path=str(cap))
    assert first["report"]["dir"] == str(cap / "trace_summary")
    second = run_module(tmp_path, path=str(cap))
    assert second["changed"] is False and second["summary"] == first["summary"]


def test_fleet_of_hosts(tmp_path: Path) -> None:
    root = tmp_path / "captures"
    shutil.copytree(FIX / "cpu" / "nostack", root / "gpu-node-1")
    shutil.copytree(FIX / "cpu" / "detailed", root / "gpu-node-2")
    res = run_module(tmp_path, path=str(root), dest=str(tmp_path / "fleet"))
    assert res["fleet"] is True
    assert [h["host"] for h in res["hosts"]] == ["gpu-node-1", "gpu-node-2"]
    assert res["headline"].startswith("2 hosts: ")
    page = (tmp_path / "fleet" / "report.html").read_text()
    assert "<h2>Fleet</h2>" in page and "gpu-node-2" in page


def test_gpu_trace_with_step_regex(tmp_path: Path) -> None:
    res = run_module(
        tmp_path,
        path=str(FIX / "gpu" / "gpu_graph.pt.trace.json.gz"),
        dest=str(tmp_path / "r"),
        step_regex=r"^token_step_\d+$",
    )
    s = res["summary"]
    assert s["cuda_graph_launches"] == 10 and s["gpu_busy_pct"] > 0 and s["device"]["name"] == "NVIDIA H200"
    assert s["steps"]["steps"] == 10 and s["top_kernels"][0]["category"] == "GEMM"


def test_nsys_csvs_are_folded_in(tmp_path: Path) -> None:
    res = run_module(tmp_path, path=str(FIX / "nsys" / "cpu-2022.4.2"), dest=str(tmp_path / "r"))
    tables = {t["report"]: t for t in res["hosts"][0]["nsys"]}
    assert sorted(tables) == ["cudaapisum", "gpukernsum", "nvtxsum", "osrtsum"]
    assert tables["osrtsum"]["rows"][0]["name"] == "clock_nanosleep"
    assert res["nsys_reports"] == ["run1.nsys-rep"]
    assert "osrtsum" in (tmp_path / "r" / "summary.md").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "truncated gzip"),
        (b"not json at all", "not JSON"),
        (json.dumps({"model": "qwen"}).encode(), "not a trace"),
        (json.dumps({"traceEvents": []}).encode(), "empty trace"),
    ],
    ids=["truncated", "not-json", "json-not-trace", "empty-trace"],
)
def test_bad_input_fails_cleanly_naming_the_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    bad = tmp_path / "rank0.1.pt.trace.json.gz"
    if content is None:
        data = next((FIX / "cpu" / "nostack").glob("rank0.*.gz")).read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    else:
        bad.write_bytes(gzip.compress(content))
    res = run_module(tmp_path, path=str(bad), dest=str(tmp_path / "r"))
    assert res["failed"] is True
    assert res["msg"].startswith(str(bad)) and message in res["msg"]
    assert not (tmp_path / "r").exists()


def test_on_error_skip_lists_the_bad_file(tmp_path: Path) -> None:
    cap = tmp_path / "cap"
    shutil.copytree(FIX / "cpu" / "nostack", cap)
    (cap / "rank1.2.pt.trace.json.gz").write_bytes(gzip.compress(b"{"))
    failed = run_module(tmp_path, path=str(cap), dest=str(tmp_path / "r"))
    assert failed["failed"] is True and "rank1.2.pt.trace.json.gz" in failed["msg"]
    res = run_module(tmp_path, path=str(cap), dest=str(tmp_path / "r"), on_error="skip")
    assert not res.get("failed") and len(res["errors"]) == 1 and "rank1.2" in res["errors"][0]
    assert "Skipped inputs" in (tmp_path / "r" / "summary.md").read_text()


def test_fleet_against_a_baseline_host(tmp_path: Path) -> None:
    """Real 2-rank H200 captures as three hosts: gpu-b is the float32 run (compute time x10), gpu-c the CUDA-graph
    run; each is compared with gpu-a in the result, the headline, summary.md and report.html, never failing."""
    root = tmp_path / "run"
    for host, capture in (("gpu-a", "eager"), ("gpu-b", "candidate"), ("gpu-c", "graph")):
        shutil.copytree(FIX / "gpu-tp2" / capture, root / host)
    res = run_module(tmp_path, path=str(root), dest=str(tmp_path / "fleet"), fleet="always", baseline_host="gpu-a")
    assert not res.get("failed") and res["changed"] is True
    base = res["baseline"]
    assert base["error"] is None and [h["host"] for h in base["hosts"]] == ["gpu-b", "gpu-c"]
    assert base["failures"] == ["gpu-b: compute time 10.956 ms -> 116.056 ms (+959.3%, limit +10%)"]
    assert base["brief"]["lines"]["gpu-c"].endswith("; within the limits")
    assert "compute 10.956 ms -> 116.056 ms (+959.3%)" in base["brief"]["lines"]["gpu-b"]
    assert res["headline"].split("; report: ")[0].endswith("2 hosts against baseline gpu-a: 1 over the limits (gpu-b)")
    md = (tmp_path / "fleet" / "summary.md").read_text()
    assert "## Against the baseline host gpu-a" in md
    assert "| gpu-b | 1.246 ms -> 0.727 ms (-41.7%) |" in md and "| 1 over |" in md
    assert "<h2>Against the baseline host gpu-a</h2>" in (tmp_path / "fleet" / "report.html").read_text()
    # the user's limits replace the defaults: a null limit is not checked, a tighter one catches gpu-c
    res = run_module(
        tmp_path,
        path=str(root),
        dest=str(tmp_path / "fleet2"),
        fleet="always",
        baseline_host="gpu-a",
        thresholds={"compute_time_pct": None, "gpu_busy_drop_pts": 20},
    )
    assert res["baseline"]["failures"] == ["gpu-c: gpu busy 91.73% -> 69.45% (-22.28 points, limit -20)"]
    # a baseline host without a capture: said, not failed (the report play's gate fails on it)
    res = run_module(tmp_path, path=str(root), dest=str(tmp_path / "fleet3"), fleet="always", baseline_host="gpu-z")
    assert not res.get("failed") and res["baseline"]["hosts"] == []
    assert "no host directory 'gpu-z' to compare against (hosts: gpu-a, gpu-b, gpu-c)" in res["baseline"]["error"]
    assert "no comparison with baseline gpu-z" in res["headline"]
    res = run_module(tmp_path, path=str(root), dest=str(tmp_path / "r"), baseline_host="gpu-a", thresholds={"x": 1})
    assert res["failed"] is True and res["msg"].startswith("unknown thresholds x; known: ")


def test_bad_options(tmp_path: Path) -> None:
    res = run_module(tmp_path, path=str(FIX / "cpu" / "nostack"), dest=str(tmp_path / "r"), step_regex="(")
    assert res["failed"] is True and "step_regex" in res["msg"]
    res = run_module(tmp_path, path=str(tmp_path / "missing"), dest=str(tmp_path / "r"))
    assert res["failed"] is True and "no such file or directory" in res["msg"]
    res = run_module(tmp_path, path=str(FIX / "cpu" / "nostack"), top=0)
    assert res["failed"] is True and "top" in res["msg"]


def test_through_ansible_playbook(tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        textwrap.dedent(
            f"""\
            - name: Summarise a capture on the controller
              hosts: localhost
              gather_facts: false
              tasks:
                - name: Summarise
                  vllm_infra.profiling.trace_summary:
                    path: {FIX / "cpu" / "nostack"}
                    dest: {tmp_path / "report"}
                    top: 3
                  delegate_to: localhost
                  register: __trace
                - name: Headline
                  ansible.builtin.assert:
                    that:
                      - __trace is changed
                      - __trace.summary.steps.decode_steps == 9
                      - __trace.summary.top_ops | length == 3
                      - __trace.headline is search('10 steps')
            """
        )
    )
    proc = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(playbook),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "report" / "report.html").is_file()
