# SPDX-License-Identifier: GPL-3.0-or-later
"""Captures, ranks, CUDA graphs and the nsys summary, on real traces: a 2-rank NCCL capture made on two
H200s (tests/fixtures/traces/gpu-tp2, see PROVENANCE.md) and real nsys 2022.4.2 output."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _report as R
from ansible_collections.vllm_infra.profiling.plugins.module_utils import _trace as T
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import ranks

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "traces"
TP2 = FIX / "gpu-tp2"


def plain_kernel_sum(path: Path) -> float:
    """The independent check: json.load, then a plain sum of every kernel event's duration."""
    with gzip.open(path, "rt") as fh:
        events = json.load(fh)["traceEvents"]
    return sum(e["dur"] for e in events if e.get("ph") == "X" and e.get("cat") == "kernel")


@pytest.mark.parametrize("capture", ["eager", "graph", "candidate"])
def test_kernel_totals_per_rank_equal_a_plain_sum_over_the_kernel_events(capture: str) -> None:
    result = T.analyze(str(TP2 / capture))
    rows = {row["file"]: row for row in result["cross_rank"]["rows"]}
    assert len(rows) == 2
    for path in sorted((TP2 / capture).glob("*.pt.trace.json.gz")):
        row = rows[f"{path.name}"]
        assert row["kernel_us"] == round(plain_kernel_sum(path), 3)  # to the microsecond (and below)


def test_two_ranks_of_one_capture_and_the_straggler() -> None:
    result = T.analyze(str(TP2 / "eager"))
    host = result["hosts"][0]
    assert len(host["captures"]) == 1 and host["captures"][0]["ranks"] == [0, 1]
    cross = result["cross_rank"]
    by_rank = {row["rank"]: row for row in cross["rows"]}
    # Rank 1 does an extra GEMM per layer (tools/gpu/capture_multirank.py): rank 0 waits for it in all-reduce.
    assert cross["straggler"] == 1
    assert by_rank[0]["communication_pct"] > 90 and by_rank[1]["communication_pct"] < 10
    assert by_rank[1]["compute_us"] > 3 * by_rank[0]["compute_us"]
    assert by_rank[1]["collective_wait_us"] == 0.0 and by_rank[0]["collective_wait_pct"] > 50
    # 4 layers x (1 prefill + 9 decode) all-reduces on each rank, matched one to one
    assert cross["collectives_matched"] == 40 and cross["collectives_per_rank"] == [40, 40]
    assert cross["straggler_line"].startswith("straggler: rank 1 - rank 0 waits ")
    line = R.headline(result)
    assert "2 ranks; straggler: rank 1" in line
    md = R.render_markdown(result)
    assert "### Ranks" in md and "| rank | steps | step p50 | kernel time |" in md
    html = R.render_html(result)
    assert "Kernel time per rank" in html


def test_rank_from_the_file_name_when_the_trace_has_no_distributed_info(tmp_path: Path) -> None:
    # vLLM 0.13-0.15 names files <id>-rank-N; the candidate capture uses that convention.
    result = T.analyze(str(TP2 / "candidate"))
    assert [row["rank"] for row in result["cross_rank"]["rows"]] == [0, 1]
    for src in (TP2 / "candidate").glob("*.gz"):
        with gzip.open(src, "rt") as fh:
            doc = json.load(fh)
        doc.pop("distributedInfo")
        with gzip.open(tmp_path / src.name, "wt") as fh:
            json.dump(doc, fh)
    parts = [T.summarize_trace(str(p)) for p in sorted(tmp_path.glob("*.gz"))]
    assert [p.rank for p in parts] == [None, None]
    assert [ranks.rank_of(p) for p in parts] == [0, 1]
    # vLLM 0.32 with data/pipeline/tensor parallel names: dp0_pp0_tp0_dcp0_ep0_rankN
    for p in sorted(tmp_path.glob("*.gz")):
        p.rename(p.with_name(p.name.replace("cand-rank-", "dp0_pp0_tp0_dcp0_ep0_rank")))
    result = T.analyze(str(tmp_path))
    assert [row["rank"] for row in result["cross_rank"]["rows"]] == [0, 1] and result["cross_rank"]["straggler"] == 1


def test_two_captures_in_one_directory_are_never_merged(tmp_path: Path) -> None:
    for capture in ("eager", "candidate"):
        for src in (TP2 / capture).glob("*.gz"):
            shutil.copy(src, tmp_path / src.name)
    result = T.analyze(str(tmp_path))
    caps = result["hosts"][0]["captures"]
    assert len(caps) == 2 and all(c["ranks"] == [0, 1] for c in caps)
    assert [c["latest"] for c in caps] == [False, True]  # the candidate ran after the eager capture
    assert sorted(result["summary"]["files"]) == sorted(p.name for p in (TP2 / "candidate").glob("*.gz"))
    assert "latest of 2 captures" in R.headline(result)


def test_cuda_graph_replays_are_attributed_to_their_launches() -> None:
    result = T.analyze(str(TP2 / "graph"))
    gpu = result["summary"]["gpu"]
    # lowest rank's steps: the prefill runs eagerly, the 9 decode steps are graph replays
    assert result["summary"]["steps"]["graph_replay_steps"] == 9
    assert result["summary"]["cuda_graph_launches"] == 18  # 9 per rank
    assert gpu["cuda_graph_kernels_per_launch"] == 38.0  # 4 layers x (GEMMs, norm, silu, extra, all-reduce, add)
    assert gpu["cuda_graph_us_per_launch"] == round(gpu["cuda_graph_kernel_us"] / 18, 3)
    phases = [(row["phase"], row.get("graph_replay", False)) for row in result["summary"]["timeline"]]
    assert phases[0] == ("prefill", False) and set(phases[1:]) == {("decode", True)}


def test_an_nsys_capture_gets_its_own_summary() -> None:
    result = T.analyze(str(FIX / "nsys" / "cpu-2022.4.2"))
    nsys = result["nsys_summary"]
    assert [s["title"] for s in nsys["sections"]] == ["OS runtime"]
    assert [e["title"] for e in nsys["empty_reports"]] == ["GPU kernels", "CUDA API", "NVTX ranges"]
    line = R.headline(result)
    assert line.startswith("nsys capture - OS runtime: clock_nanosleep 73.1%, sem_wait 25.8%, open64 0.5%")
    assert "profiled window" not in line and "no vLLM engine steps" not in line
    md = R.render_markdown(result)
    assert "### nsys capture" in md and "events 0" not in md and "profiled window" not in md
    assert "| trace | kind |" not in md  # no empty trace table above the nsys tables


def test_key_averages_table_beside_the_trace_is_shown() -> None:
    result = T.analyze(str(FIX / "cpu" / "nostack"))
    tables = result["hosts"][0]["profiler_tables"]
    assert [t_["file"] for t_ in tables] == ["rank0.profiler_out.txt"]
    assert any("execute_context_1(10)_generation_0(0)" in line for line in tables[0]["head"])
    assert "torch key_averages table `rank0.profiler_out.txt`" in R.render_markdown(result)


def test_the_0_13_to_0_15_names_rank_dash_n_and_profiler_out_n(tmp_path: Path) -> None:
    """vLLM 0.13-0.15 write ``<id>-rank-N.<ts>.pt.trace.json.gz`` and ``profiler_out_N.txt``; 0.32 writes
    ``rankN.<ts>...`` and ``rankN.profiler_out.txt``. The same capture under the older names reads the same."""
    src = FIX / "cpu" / "nostack"
    worker = next(src.glob("rank0.*.pt.trace.json.gz"))
    stamp = worker.name.split(".")[1]
    shutil.copy(worker, tmp_path / f"0a1b2c3d-rank-0.{stamp}.pt.trace.json.gz")
    shutil.copy(next(src.glob("*.async_llm.*")), tmp_path)
    shutil.copy(src / "rank0.profiler_out.txt", tmp_path / "profiler_out_0.txt")
    old, new = T.analyze(str(tmp_path)), T.analyze(str(src))
    assert old["summary"]["steps"] == new["summary"]["steps"]
    host = old["hosts"][0]
    assert [tr["kind"] for tr in host["traces"]] == ["worker"] and [f["kind"] for f in host["frontends"]] == [
        "frontend"
    ]
    assert host["captures"][0]["ranks"] == [0]
    assert [t_["file"] for t_ in host["profiler_tables"]] == ["profiler_out_0.txt"]
    assert host["profiler_tables"][0]["head"] == new["hosts"][0]["profiler_tables"][0]["head"]


def plain_cpu_collectives(path: Path) -> list[float]:
    with gzip.open(path, "rt") as fh:
        events = json.load(fh)["traceEvents"]
    calls = [e for e in events if e.get("cat") == "cpu_op" and e["name"] in ("_C::shm_allreduce", "_C::shm_all_gather")]
    return [e["dur"] for e in sorted(calls, key=lambda e: e["ts"])]


def test_a_real_vllm_tensor_parallel_cpu_capture() -> None:
    """vLLM 0.32 itself, --tensor-parallel-size 2 on the CPU (tests/fixtures/traces/cpu-tp2): no GPU kernels, so
    the collectives are vLLM's CPU shared-memory ops; ranks from distributedInfo and vLLM's own file names."""
    capture = FIX / "cpu-tp2"
    result = T.analyze(str(capture))
    host = result["hosts"][0]
    assert [tr["rank"] for tr in host["traces"]] == [0, 1] and len(host["frontends"]) == 1
    cross = result["cross_rank"]
    assert cross["basis"] == "cpu_ops" and cross["collectives_per_rank"] == [24, 24]
    for row in cross["rows"]:
        path = capture / row["file"]
        assert row["collective_us"] == round(sum(plain_cpu_collectives(path)), 3)
        assert row["steps"] == 4  # 1 prefill + 3 decode (+1 empty step, counted apart)
    assert cross["straggler"] is not None and "of its step time (CPU collectives)" in cross["straggler_line"]
    assert "| rank | steps | step p50 | step time |" in R.render_markdown(result)
    assert sorted(t_["file"] for t_ in host["profiler_tables"]) == ["rank0.profiler_out.txt", "rank1.profiler_out.txt"]
