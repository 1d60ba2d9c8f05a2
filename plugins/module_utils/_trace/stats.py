# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: statistics helpers shared by the trace summaries."""

from __future__ import annotations

import heapq
import operator
import typing as t
from array import array
from itertools import islice


def percentile(sorted_values: t.Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    k = (len(sorted_values) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo))


def rnd(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def duration_stats(values: t.Iterable[float]) -> dict[str, t.Any]:
    vals = sorted(values)
    if not vals:
        return {
            "count": 0,
            "total_us": 0.0,
            "mean_us": None,
            "p50_us": None,
            "p90_us": None,
            "min_us": None,
            "max_us": None,
        }
    return {
        "count": len(vals),
        "total_us": rnd(sum(vals)),
        "mean_us": rnd(sum(vals) / len(vals)),
        "p50_us": rnd(percentile(vals, 50)),
        "p90_us": rnd(percentile(vals, 90)),
        "min_us": rnd(vals[0]),
        "max_us": rnd(vals[-1]),
    }


def is_sorted(values: array) -> bool:
    # map/islice: the comparisons in C, not a generator expression's Python frame per element
    return all(map(operator.le, values, islice(values, 1, None)))


# --------------------------------------------------------------------------------------------
# One trace
# --------------------------------------------------------------------------------------------


def merged_intervals(columns: t.Iterable[tuple[array, array]]) -> t.Iterator[tuple[float, float]]:
    """Union of the [ts, ts+dur) intervals of several (ts, dur) column pairs, in time order."""
    iters = []
    for ts, dur in columns:
        idx: t.Iterable[int] = range(len(ts)) if is_sorted(ts) else sorted(range(len(ts)), key=ts.__getitem__)
        iters.append((ts[i], ts[i] + dur[i]) for i in idx)
    cur_a = cur_b = None
    for a, b in heapq.merge(*iters):
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                yield cur_a, cur_b  # type: ignore[misc]
            cur_a, cur_b = a, b
        elif b > cur_b:
            cur_b = b
    if cur_b is not None:
        yield cur_a, cur_b  # type: ignore[misc]
