# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: ``nsys stats --format csv`` tables (both report-name eras)."""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.reader import TraceError
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.stats import rnd

_NAME_RE: list[re.Pattern[str]] = []


def _report_kinds() -> dict[str, str]:
    """Report name (both eras) -> kind. The table of eras lives in _nsys (one place for the
    collection); it is imported on first use because _nsys (dataclasses, hashlib, ...) costs
    more start-up than reading a small trace, and most directories hold no nsys CSV."""
    from ansible_collections.vllm_infra.profiling.plugins.module_utils._nsys import REPORT_KINDS  # noqa: PLC0415

    return REPORT_KINDS


def __getattr__(name: str) -> t.Any:
    if name == "NSYS_REPORTS":
        return _report_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _name_re() -> re.Pattern[str]:
    if not _NAME_RE:
        names = sorted(_report_kinds(), key=len, reverse=True)
        _NAME_RE.append(re.compile(r"(?:^|_)(" + "|".join(names) + r")$"))
    return _NAME_RE[0]


def nsys_report_name(filename: str) -> str | None:
    stem = os.path.basename(filename)
    if stem.lower().endswith(".csv"):
        stem = stem[:-4]
    if not stem.endswith("sum"):  # every report name does: no need to load the table for a trace
        return None
    m = _name_re().search(stem)
    return m.group(1) if m else None


def _col(header: list[str], *patterns: str) -> int | None:
    for pat in patterns:
        rx = re.compile(pat, re.I)
        for i, h in enumerate(header):
            if rx.search(h):
                return i
    return None


def _num(text: str) -> float | None:
    text = text.strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def parse_nsys_csv(path: str, top: int = 15) -> dict[str, t.Any]:
    """One ``nsys stats --format csv`` report (2022.x and current names/columns)."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise TraceError(f"{path}: cannot read ({exc.strerror or exc})") from None
    import csv  # noqa: PLC0415 - here: a directory of Kineto traces (most) never reads a CSV

    report = nsys_report_name(path)
    rows = list(csv.reader(lines))
    # Skip banners ("Processing [...] with [...]", "** ... (cuda_gpu_kern_sum):") up to the header row.
    hdr_i = next(
        (i for i, r in enumerate(rows) if any(re.search(r"total\s*time", c, re.I) for c in r) and len(r) >= 3), None
    )
    if hdr_i is None:
        text = " ".join(" ".join(r) for r in rows).strip()
        return {
            "file": path,
            "report": report,
            "kind": _report_kinds().get(report or "", "other"),
            "rows": [],
            "note": text[:300] or "empty CSV (nsys stats writes one for a report it skipped, e.g. no CUDA data)",
        }
    header = [h.strip() for h in rows[hdr_i]]
    i_pct = _col(header, r"^time\s*\(%\)$", r"time.*%")
    i_total = _col(header, r"total\s*time")
    i_count = _col(header, r"^instances$", r"num\s*calls", r"^calls$", r"^count$", r"instances|calls|count")
    i_avg = _col(header, r"^avg", r"average", r"mean")
    i_name = _col(header, r"^name$", r"^range$", r"^operation$", r"name|range|operation")
    unit = 1e-3 if re.search(r"\(ns\)", header[i_total] if i_total is not None else "", re.I) else 1.0
    if i_total is not None and re.search(r"\(us\)", header[i_total], re.I):
        unit = 1.0
    out_rows = []
    for r in rows[hdr_i + 1 :]:
        if not r or all(not c.strip() for c in r) or len(r) < len(header) - 1:
            continue
        total = _num(r[i_total]) if i_total is not None else None
        out_rows.append(
            {
                "name": r[i_name].strip() if i_name is not None and i_name < len(r) else "",
                "time_pct": _num(r[i_pct]) if i_pct is not None else None,
                "total_us": rnd(total * unit) if total is not None else None,
                "count": int(_num(r[i_count]) or 0) if i_count is not None else None,
                "avg_us": rnd((_num(r[i_avg]) or 0.0) * unit) if i_avg is not None else None,
            }
        )
    out_rows.sort(key=lambda row: -(row["total_us"] or 0.0))
    return {
        "file": path,
        "report": report,
        "kind": _report_kinds().get(report or "", "other"),
        "columns": header,
        "rows_total": len(out_rows),
        "rows": out_rows[:top],
    }


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


NSYS_SECTIONS = (
    ("gpu_kernels", "GPU kernels"),
    ("cuda_api", "CUDA API"),
    ("nvtx", "NVTX ranges"),
    ("osrt", "OS runtime"),
    ("gpu_mem_time", "GPU memory operations (time)"),
    ("gpu_mem_size", "GPU memory operations (size)"),
    ("gpu_sum", "GPU activities"),
)


def nsys_summary(tables: t.Sequence[dict[str, t.Any]]) -> dict[str, t.Any]:
    """The summary of an nsys capture (``nsys stats`` tables, no Kineto trace): per table kind its
    total time, row count and top items, and what nsys left empty (a report it skipped)."""
    sections = []
    empty = []
    for kind, title in NSYS_SECTIONS:
        found = [tab for tab in tables if tab["kind"] == kind]
        if not found:
            continue
        rows = [row for tab in found for row in tab["rows"]]
        if not rows:
            empty.append({"kind": kind, "title": title, "note": found[0].get("note") or "no rows"})
            continue
        total = sum(row["total_us"] or 0.0 for row in rows)
        sections.append(
            {
                "kind": kind,
                "title": title,
                "report": found[0]["report"],
                "file": found[0].get("label", found[0]["file"]),
                "rows_total": sum(tab.get("rows_total", len(tab["rows"])) for tab in found),
                "total_us": rnd(total),
                "top": [
                    {
                        "name": row["name"],
                        "total_us": row["total_us"],
                        "count": row["count"],
                        "time_pct": row["time_pct"],
                    }
                    for row in rows[:3]
                ],
            }
        )
    notes = []
    api_rows = [row for tab in tables if tab["kind"] == "cuda_api" for row in tab["rows"]]
    if any("GraphLaunch" in row["name"] for row in api_rows):
        notes.append(
            "CUDA graphs were launched: the kernel table lists graph nodes only if nsys ran with "
            "--cuda-graph-trace=node; otherwise busy/idle figures rest on whole-graph records"
        )
    return {"sections": sections, "empty_reports": empty, "notes": notes}


def nsys_headline(summary: dict[str, t.Any]) -> str:
    """'nsys: GPU kernels 3 of 41 ...; OS runtime: clock_nanosleep 73.1%, sem_wait 25.8% ...' for a headline."""
    parts = []
    for sec in summary["sections"]:
        tops = ", ".join(
            f"{row['name']} {row['time_pct']:.1f}%" if row["time_pct"] is not None else row["name"]
            for row in sec["top"]
        )
        parts.append(f"{sec['title']}: {tops}")
    if summary["empty_reports"]:
        parts.append("empty: " + ", ".join(e["title"] for e in summary["empty_reports"]))
    return "nsys capture - " + "; ".join(parts) if parts else "nsys capture - no stats tables with rows"
