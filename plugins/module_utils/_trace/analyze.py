# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: the whole analysis of a path (what trace_summary returns before rendering)."""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.inputs import find_inputs, profiler_table_head
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.nsys import nsys_summary, parse_nsys_csv
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.ranks import (
    cross_rank,
    group_captures,
    rank_of,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.reader import TraceError
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.summarize import summarize_trace
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.summary import TraceSummary


def _trace_row(s: TraceSummary, top: int) -> dict[str, t.Any]:
    d = s.to_dict(top)
    d.pop("timeline", None)
    d["label"] = s.files[0] if s.files else ""
    return d


def _capture_row(cap: list[TraceSummary], latest: bool, top: int) -> dict[str, t.Any]:
    merged = TraceSummary.merge(cap)
    d = merged.to_dict(top)
    return {
        "files": merged.files,
        "ranks": [rank_of(p) for p in cap],
        "latest": latest,
        "steps": d["steps"],
        "gpu_busy_pct": d["gpu_busy_pct"],
        "cross_rank": cross_rank(cap) if len(cap) > 1 else None,
    }


def analyze(
    path: str,
    *,
    top: int = 15,
    step_regex: str | None = None,
    on_error: str = "fail",
    exclude: str | None = None,
    fleet: str = "auto",
) -> dict[str, t.Any]:
    """Summarise every trace and nsys CSV under ``path``; one entry per host, plus the overall summary.

    ``on_error``: ``fail`` raises the first ``TraceError``; ``skip`` records it in ``errors`` and goes on.
    """
    if step_regex is not None:
        try:
            re.compile(step_regex)
        except re.error as exc:
            raise TraceError(f"step_regex {step_regex!r} is not a valid regular expression: {exc}") from None
    path = os.path.abspath(path)
    root = path if os.path.isdir(path) else os.path.dirname(path)
    groups = find_inputs(path, exclude, fleet)
    errors: list[str] = []
    hosts: list[dict[str, t.Any]] = []
    host_objs: list[TraceSummary] = []
    nsys_reports: list[str] = []
    for host, inputs in groups.items():
        workers: list[TraceSummary] = []
        frontends: list[TraceSummary] = []
        for trace in inputs["traces"]:
            label = os.path.relpath(trace, root)
            try:
                s = summarize_trace(trace, step_regex, label)
            except TraceError as exc:
                if on_error != "skip":
                    raise
                errors.append(str(exc))
                continue
            (frontends if s.kind == "frontend" else workers).append(s)
        workers.sort(key=lambda s: (s.rank if s.rank is not None else 1 << 30, s.files[0]))
        captures = group_captures(workers)
        # Never merge two captures: the host's summary is its latest capture (its ranks merged);
        # every capture is listed with its own summary and, with several ranks, the cross-rank view.
        latest = max(captures, key=lambda cap: max(p.base_ts for p in cap)) if captures else []
        merged = TraceSummary.merge(latest or frontends)
        tables = []
        for csv_path in inputs["nsys_csv"]:
            try:
                tab = parse_nsys_csv(csv_path, top)
            except TraceError as exc:
                if on_error != "skip":
                    raise
                errors.append(str(exc))
                continue
            tab["label"] = os.path.relpath(csv_path, root)
            tab["file"] = tab["label"]
            tables.append(tab)
        nsys_reports += [os.path.relpath(p, root) for p in inputs["nsys_reports"]]
        hosts.append(
            {
                "host": host,
                "summary": merged.to_dict(top),
                "traces": [_trace_row(s, top) for s in workers],
                "frontends": [_trace_row(s, top) for s in frontends],
                "nsys": tables,
                "nsys_reports": [os.path.relpath(p, root) for p in inputs["nsys_reports"]],
                "captures": [_capture_row(cap, cap is latest, top) for cap in captures],
                "cross_rank": cross_rank(latest) if len(latest) > 1 else None,
                "profiler_tables": [
                    {"file": os.path.relpath(p, root), "head": profiler_table_head(p)}
                    for p in inputs.get("profiler_tables", [])
                ],
            }
        )
        if not (workers or frontends) and tables:
            hosts[-1]["nsys_summary"] = nsys_summary(tables)
        host_objs.append(merged if (workers or frontends) else TraceSummary())
    fleet = len(hosts) > 1
    overall = TraceSummary.merge([h for h in host_objs if h.files], steps_from="all") if fleet else host_objs[0]
    return {
        "input": path,
        "fleet": fleet,
        "summary": overall.to_dict(top),
        "hosts": hosts,
        "errors": errors,
        "nsys_reports": nsys_reports,
        "cross_rank": None if fleet else hosts[0]["cross_rank"],
        "nsys_summary": None if fleet else hosts[0].get("nsys_summary"),
    }
