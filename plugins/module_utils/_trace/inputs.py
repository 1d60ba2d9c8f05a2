# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: find the inputs under a path and group them by host."""

from __future__ import annotations

import os

from ansible_collections.vllm_infra.profiling.plugins.module_utils._profiler import (
    TABLE_SUFFIX as PROFILER_TABLE_SUFFIX,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.classify import (
    NSYS_REPORT_SUFFIXES,
    TRACE_SUFFIXES,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.nsys import nsys_report_name
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.reader import TraceError


def _hidden(name: str) -> bool:
    return name.startswith(".")


def is_trace_file(name: str) -> bool:
    return name.endswith(TRACE_SUFFIXES)


def is_profiler_table(name: str) -> bool:
    """torch's ``key_averages()`` table that vLLM writes beside a worker trace: ``profiler_out_<rank>.txt``
    (0.13-0.15) or ``<worker>.profiler_out.txt`` (0.32)."""
    return name.endswith(PROFILER_TABLE_SUFFIX) or (name.startswith("profiler_out_") and name.endswith(".txt"))


def profiler_table_head(path: str, lines: int = 14) -> list[str]:
    """The first ``lines`` lines of a key-averages table (its header and top rows, by self CPU time)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return [line.rstrip() for _i, line in zip(range(lines), fh, strict=False)]
    except OSError as exc:
        raise TraceError(f"{path}: cannot read ({exc.strerror or exc})") from None


def find_inputs(path: str, exclude: str | None = None, fleet: str = "auto") -> dict[str, dict[str, list[str]]]:
    """Group inputs by host: ``{host: {"traces": [...], "nsys_csv": [...], "nsys_reports": [...]}}``.

    A file is one host named after the file. A directory whose immediate sub-directories hold
    inputs (and holds none directly itself) is a capture root: one host per sub-directory (the
    fleet view); otherwise the directory is one host. ``fleet``: ``auto`` (as said), ``always``
    (every sub-directory with inputs is a host) or ``never`` (one host). ``exclude`` (e.g. the
    report directory) is skipped.
    """
    path = os.path.abspath(path)
    if os.path.isfile(path):
        host = os.path.basename(path)
        if path.endswith(".csv"):
            return {host: {"traces": [], "nsys_csv": [path], "nsys_reports": [], "profiler_tables": []}}
        return {host: {"traces": [path], "nsys_csv": [], "nsys_reports": [], "profiler_tables": []}}
    if not os.path.isdir(path):
        raise TraceError(f"{path}: no such file or directory")
    exclude = os.path.abspath(exclude) if exclude else None

    def collect(root: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {"traces": [], "nsys_csv": [], "nsys_reports": [], "profiler_tables": []}
        csvs: list[str] = []
        rep_dirs: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not _hidden(d) and os.path.join(dirpath, d) != exclude)
            for fn in sorted(filenames):
                if _hidden(fn):
                    continue
                full = os.path.join(dirpath, fn)
                if is_trace_file(fn):
                    found["traces"].append(full)
                elif fn.endswith(NSYS_REPORT_SUFFIXES):
                    found["nsys_reports"].append(full)
                    rep_dirs.add(dirpath)
                elif is_profiler_table(fn):
                    found["profiler_tables"].append(full)
                elif fn.lower().endswith(".csv"):
                    csvs.append(full)
        found["nsys_csv"] = [c for c in csvs if os.path.dirname(c) in rep_dirs or nsys_report_name(c)]
        return found

    def has_inputs(found: dict[str, list[str]]) -> bool:
        # A key-averages table alone is not a capture: it only accompanies a trace.
        return any(found[key] for key in ("traces", "nsys_csv", "nsys_reports"))

    direct = [
        e
        for e in sorted(os.listdir(path))
        if not _hidden(e)
        and os.path.isfile(os.path.join(path, e))
        and (is_trace_file(e) or e.endswith(NSYS_REPORT_SUFFIXES) or nsys_report_name(e))
    ]
    subdirs = [
        os.path.join(path, d)
        for d in sorted(os.listdir(path))
        if not _hidden(d) and os.path.isdir(os.path.join(path, d)) and os.path.join(path, d) != exclude
    ]
    per_sub = {os.path.basename(d): collect(d) for d in subdirs}
    per_sub = {k: v for k, v in per_sub.items() if has_inputs(v)}
    if fleet != "never" and per_sub and ((not direct and len(per_sub) >= 2) or fleet == "always"):
        return per_sub
    everything = collect(path)
    if not has_inputs(everything):
        raise TraceError(
            f"{path}: no profiler traces (*.pt.trace.json[.gz]) or nsys stats CSVs found in this directory"
        )
    return {os.path.basename(path.rstrip(os.sep)) or path: everything}


# --------------------------------------------------------------------------------------------
# The whole analysis of a path (what the module returns, before the report is rendered)
# --------------------------------------------------------------------------------------------
