# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: captures and ranks - per-rank figures and the cross-rank view.

A directory may hold several captures (profiling sessions) and, per capture, one worker trace per
rank. Merging them hides what matters on a tensor-parallel server: a rank that waits inside NCCL
all-reduce for a slower peer shows "communication 98%" while the peer shows 5%. So the traces are
grouped into captures (same directory, overlapping time windows, each rank at most once), and
each capture with several ranks gets a per-rank table and a cross-rank view: the spread of compute
time between ranks, the time each rank spends in collectives beyond the collective's minimum
across ranks (waiting for the others), and the straggler - the rank the others wait for.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.stats import rnd
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.summary import TraceSummary

# A capture's ranks start their profilers within a second or so of each other; traces of one
# directory whose windows are further apart than this belong to different captures.
OVERLAP_SLACK_US = 2e6
# Name the straggler when the others wait at least this share of their kernel time for it.
STRAGGLER_WAIT_PCT = 10.0


def rank_of(s: TraceSummary) -> int | None:
    """``distributedInfo.rank`` first (Kineto's own record), else the rank in vLLM's file name."""
    return s.rank if s.rank is not None else s.name_rank


def group_captures(traces: t.Sequence[TraceSummary]) -> list[list[TraceSummary]]:
    """Group worker traces into captures: same directory, overlapping windows, one trace per rank."""
    ordered = sorted(traces, key=lambda s: (os.path.dirname(s.files[0]), s.base_ts, s.files[0]))
    captures: list[list[TraceSummary]] = []
    spans: list[tuple[str, float, float]] = []
    for s in ordered:
        folder = os.path.dirname(s.files[0])
        lo, hi = s.base_ts, s.base_ts + s.window_us
        for i, (f, a, b) in enumerate(spans):
            taken = {rank_of(p) for p in captures[i]}
            if f == folder and lo <= b + OVERLAP_SLACK_US and hi >= a - OVERLAP_SLACK_US and rank_of(s) not in taken:
                captures[i].append(s)
                spans[i] = (f, min(a, lo), max(b, hi))
                break
        else:
            captures.append([s])
            spans.append((folder, lo, hi))
    for cap in captures:
        cap.sort(key=lambda p: (rank_of(p) if rank_of(p) is not None else 1 << 30, p.files[0]))
    return captures


def kernel_time_us(s: TraceSummary) -> float:
    """Sum of the durations of the trace's ``kernel`` events (memcpy/memset not included)."""
    return sum(row[2] for row in s.kernels.values() if row[0] == "kernel")


def collectives(s: TraceSummary, basis: str) -> t.Sequence[float]:
    return s.collective_durs if basis == "gpu_kernels" else s.cpu_collective_durs


def rank_row(s: TraceSummary, basis: str = "gpu_kernels") -> dict[str, t.Any]:
    """The per-rank figures: steps, kernel time, categories, communication share, GPU busy.

    ``basis``: ``gpu_kernels``, or ``cpu_ops`` for ranks without GPU kernels (vLLM's CPU backend), where
    the busy time is the engine steps' time and the collectives are CPU ops (``_C::shm_allreduce``).
    """
    d = s.to_dict(top=5)
    kernel_us = kernel_time_us(s)
    if basis == "cpu_ops":
        kernel_us = sum(rec["dur_us"] for rec in s.steps)
    comm_us = sum(collectives(s, basis))
    cats = {c["category"]: c["share_pct"] for c in d["kernel_categories"]}
    steps = d["steps"] or {}
    return {
        "rank": rank_of(s),
        "file": s.files[0],
        "steps": steps.get("steps"),
        "step_p50_us": (steps.get("all") or {}).get("p50_us"),
        "step_p90_us": (steps.get("all") or {}).get("p90_us"),
        "kernel_us": rnd(kernel_us),
        "kernels": sum(row[1] for row in s.kernels.values() if row[0] == "kernel"),
        "collective_us": rnd(comm_us),
        "collectives": len(collectives(s, basis)),
        "compute_us": rnd(kernel_us - comm_us),
        "communication_pct": rnd(100.0 * comm_us / kernel_us, 2) if kernel_us else None,
        "gpu_busy_pct": d["gpu_busy_pct"],
        "categories": cats,
        "top_kernel": d["top_kernels"][0]["short_name"] if d["top_kernels"] else None,
        "cuda_graph_launches": s.cuda_graph_launches,
    }


def cross_rank(parts: t.Sequence[TraceSummary]) -> dict[str, t.Any]:
    """Per-rank table and the cross-rank view of one capture's worker traces (two or more ranks)."""
    basis = "gpu_kernels" if any(kernel_time_us(p) for p in parts) else "cpu_ops"
    rows = [rank_row(p, basis) for p in parts]
    matched = min((len(collectives(p, basis)) for p in parts), default=0)
    # The i-th collective of every rank is the same all-reduce (ranks issue them in one order);
    # the shortest of them is the collective's own cost, the rest is waiting for the last rank to arrive.
    waits = [0.0] * len(parts)
    for i in range(matched):
        durs = [collectives(p, basis)[i] for p in parts]
        low = min(durs)
        for r, dur in enumerate(durs):
            waits[r] += dur - low
    for row, wait in zip(rows, waits, strict=True):
        row["collective_wait_us"] = rnd(wait)
        row["collective_wait_pct"] = rnd(100.0 * wait / row["kernel_us"], 2) if row["kernel_us"] else None
    view: dict[str, t.Any] = {
        "basis": basis,
        "ranks": len(rows),
        "collectives_matched": matched,
        "collectives_per_rank": [row["collectives"] for row in rows],
        "rows": rows,
        "straggler": None,
        "straggler_line": None,
    }
    computes = [row["compute_us"] or 0.0 for row in rows]
    kernels = [row["kernel_us"] or 0.0 for row in rows]
    if rows:
        view["compute_spread_us"] = rnd(max(computes) - min(computes))
        view["compute_spread_pct"] = (
            rnd(100.0 * (max(computes) - min(computes)) / max(computes), 2) if max(computes) else None
        )
        view["kernel_spread_us"] = rnd(max(kernels) - min(kernels))
    if matched and len(rows) > 1:
        # The straggler arrives last at each collective, so it waits least; the others wait for it.
        slow = min(range(len(rows)), key=lambda r: (waits[r], -computes[r]))
        others = [r for r in range(len(rows)) if r != slow]
        worst = max(others, key=lambda r: rows[r]["collective_wait_pct"] or 0.0)
        if (rows[worst]["collective_wait_pct"] or 0.0) >= STRAGGLER_WAIT_PCT:
            s_row, w_row = rows[slow], rows[worst]
            busy = "kernel time" if basis == "gpu_kernels" else "step time (CPU collectives)"
            unit = "kernel" if basis == "gpu_kernels" else "step"
            view["straggler"] = s_row["rank"]
            view["straggler_line"] = (
                f"straggler: rank {s_row['rank']} - rank {w_row['rank']} waits "
                f"{w_row['collective_wait_us'] / 1000:.2f} ms "
                f"in collectives for it ({w_row['collective_wait_pct']:.1f}% of its {busy}); compute "
                f"(non-collective {unit} time) rank {s_row['rank']} {s_row['compute_us'] / 1000:.2f} ms vs rank "
                f"{w_row['rank']} {w_row['compute_us'] / 1000:.2f} ms; communication share "
                + ", ".join(f"rank {row['rank']} {row['communication_pct']:.1f}%" for row in rows)
            )
    return view
