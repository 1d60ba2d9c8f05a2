# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: read PyTorch-profiler (Kineto) traces and nsys stats, and summarise them.

Pure Python, standard library only (runs on the Ansible controller); the reader uses msgspec and isal where they
are installed (optional: the same results, faster). One module per job:

  ``reader``     streaming JSON reader: ``read_trace(path)`` -> events, then ``.meta``
  ``classify``   names in a trace: vLLM step annotations, kernel categories, short kernel names
  ``stats``      percentiles, duration statistics, interval unions
  ``summary``    ``TraceSummary``, the model of one trace (or a merge), and its JSON form
  ``summarize``  ``summarize_trace(path)`` -> ``TraceSummary`` of one trace file
  ``nsys``       ``nsys stats`` CSV tables (both report-name eras) and the summary of an nsys capture
  ``inputs``     ``find_inputs(path)``: inputs by host; captures and ranks within a host
  ``ranks``      per-rank figures and the cross-rank view (spread, collective wait, straggler)
  ``compare``    baseline against candidate: deltas and a regression gate
  ``analyze``    ``analyze(path)``: everything the trace_summary module returns before rendering

File-name conventions of vLLM (``rankN``, ``<id>-rank-N``, ``dp0_pp0_tp0_..._rankN``, the frontend's
``*.async_llm.*``) are read by ``_profiler.classify_trace`` (one place for both the capture module and here).
"""

from __future__ import annotations

import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import nsys
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.analyze import analyze
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.classify import (
    KERNEL_CATEGORIES,
    VLLM_STEP_RE,
    kernel_category,
    short_name,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.inputs import find_inputs, is_trace_file
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.nsys import (
    nsys_report_name,
    parse_nsys_csv,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.reader import (
    PythonRun,
    TraceError,
    TraceRead,
    read_trace,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.stats import duration_stats, percentile
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.summarize import summarize_trace
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.summary import TraceSummary


def __getattr__(name: str) -> t.Any:
    # NSYS_REPORTS on first use: its table lives in _nsys, which is not needed to read a trace.
    if name == "NSYS_REPORTS":
        return nsys.NSYS_REPORTS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KERNEL_CATEGORIES",
    "VLLM_STEP_RE",
    "PythonRun",
    "TraceError",
    "TraceRead",
    "TraceSummary",
    "analyze",
    "duration_stats",
    "find_inputs",
    "is_trace_file",
    "kernel_category",
    "nsys_report_name",
    "parse_nsys_csv",
    "percentile",
    "read_trace",
    "short_name",
    "summarize_trace",
]
