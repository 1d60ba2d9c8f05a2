# SPDX-License-Identifier: GPL-3.0-or-later
"""trace_compare's logic on two real 2-rank H200 captures: eager bf16 (baseline) and the same workload with
the weights left in float32 (the deliberate change; tests/fixtures/traces/gpu-tp2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _trace as T
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import compare as C

TP2 = Path(__file__).resolve().parents[3] / "fixtures" / "traces" / "gpu-tp2"


def test_the_deliberate_change_fails_the_gate_with_its_figures() -> None:
    res = C.compare_paths(str(TP2 / "eager"), str(TP2 / "candidate"), C.DEFAULT_THRESHOLDS)
    assert res["failures"] == ["compute time 10.956 ms -> 116.056 ms (+959.3%, limit +10%)"]
    new = {k["short_name"] for k in res["kernels"]["new"]}
    gone = {k["short_name"] for k in res["kernels"]["gone"]}
    assert "ncclDevKernel_AllReduce_Sum_f32_RING_LL" in new and "ncclDevKernel_AllReduce_Sum_bf16_RING_LL" in gone
    by_rank = {r["rank"]: r for r in res["ranks"]}
    assert by_rank[1]["compute_us"]["candidate"] > 10 * by_rank[1]["compute_us"]["baseline"]


def test_a_capture_against_itself_passes_every_threshold() -> None:
    every = dict.fromkeys(C.THRESHOLDS, 0.0)
    res = C.compare_paths(str(TP2 / "eager"), str(TP2 / "eager"), every)
    assert res["failures"] == []
    assert all(f["delta"] in (0, 0.0, None) for f in res["figures"].values())


def test_a_summary_json_is_as_good_as_the_capture(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(T.analyze(str(TP2 / "eager"), top=50)))
    a = C.compare_paths(str(summary), str(TP2 / "candidate"), C.DEFAULT_THRESHOLDS)
    b = C.compare_paths(str(TP2 / "eager"), str(TP2 / "candidate"), C.DEFAULT_THRESHOLDS)
    assert a["figures"] == b["figures"] and a["failures"] == b["failures"]


def test_points_thresholds_and_unknown_names() -> None:
    res = C.compare_paths(str(TP2 / "candidate"), str(TP2 / "eager"), {"communication_share_pts": 5})
    assert res["failures"] == ["communication 48.58% -> 94.92% (+46.34 points, limit +5)"]
    with pytest.raises(T.TraceError, match="unknown threshold 'nope'"):
        C.gate(res, {"nope": 1})


def test_each_host_against_a_baseline_host(tmp_path: Path) -> None:
    shutil.copytree(TP2 / "eager", tmp_path / "gpu-a")
    shutil.copytree(TP2 / "candidate", tmp_path / "gpu-b")
    shutil.copytree(TP2 / "eager", tmp_path / "gpu-c")
    res = C.compare_fleet(str(tmp_path), "gpu-a", C.DEFAULT_THRESHOLDS)
    assert [h["host"] for h in res["hosts"]] == ["gpu-b", "gpu-c"]
    assert res["failures"] == ["gpu-b: compute time 10.956 ms -> 116.056 ms (+959.3%, limit +10%)"]
    assert "## gpu-b against gpu-a" in C.render_markdown(res)
    with pytest.raises(T.TraceError, match="no host directory 'gpu-z'"):
        C.compare_fleet(str(tmp_path), "gpu-z", C.DEFAULT_THRESHOLDS)
