# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: find the inputs under a path and group them by host."""

from __future__ import annotations

import os

from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.classify import (
    NSYS_REPORT_SUFFIXES,
    TRACE_SUFFIXES,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.nsys import nsys_report_name
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.reader import TraceError


def is_trace_file(name: str) -> bool:
    return name.endswith(TRACE_SUFFIXES)


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
            return {host: {"traces": [], "nsys_csv": [path], "nsys_reports": []}}
        return {host: {"traces": [path], "nsys_csv": [], "nsys_reports": []}}
    if not os.path.isdir(path):
        raise TraceError(f"{path}: no such file or directory")
    exclude = os.path.abspath(exclude) if exclude else None

    def collect(root: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {"traces": [], "nsys_csv": [], "nsys_reports": []}
        csvs: list[str] = []
        rep_dirs: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if os.path.join(dirpath, d) != exclude)
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                if is_trace_file(fn):
                    found["traces"].append(full)
                elif fn.endswith(NSYS_REPORT_SUFFIXES):
                    found["nsys_reports"].append(full)
                    rep_dirs.add(dirpath)
                elif fn.lower().endswith(".csv"):
                    csvs.append(full)
        found["nsys_csv"] = [c for c in csvs if os.path.dirname(c) in rep_dirs or nsys_report_name(c)]
        return found

    def has_inputs(found: dict[str, list[str]]) -> bool:
        return any(found.values())

    direct = [
        e
        for e in sorted(os.listdir(path))
        if os.path.isfile(os.path.join(path, e))
        and (is_trace_file(e) or e.endswith(NSYS_REPORT_SUFFIXES) or nsys_report_name(e))
    ]
    subdirs = [
        os.path.join(path, d)
        for d in sorted(os.listdir(path))
        if os.path.isdir(os.path.join(path, d)) and os.path.join(path, d) != exclude
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
