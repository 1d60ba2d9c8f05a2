# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: read PyTorch-profiler (Kineto) traces and nsys stats CSVs, and summarise them.

Pure Python, standard library only (runs on the Ansible controller). A trace is read as a
stream: the gzip (or plain) file is decoded in 1 MiB chunks and the ``traceEvents`` array
is parsed one event at a time with the C JSON scanner, so memory does not grow with the
size of the JSON. What is kept per event is small and typed (``array`` columns of
timestamps and durations for CPU ops and GPU activities, needed for self times, GPU
busy time and per-step GPU time); Python-function events (the bulk of a with-stack
trace) are only counted.

Entry points:
  ``summarize_trace(path)``     -> ``TraceSummary`` of one trace file
  ``TraceSummary.merge(list)``  -> one summary of several (a host's ranks and captures, a fleet)
  ``summary.to_dict(top)``      -> the JSON-able dict the module returns
  ``parse_nsys_csv(path)``      -> one ``nsys stats`` CSV report, either naming era
  ``find_inputs(path)``         -> trace files and nsys CSVs under a file or directory, grouped by host
"""

from __future__ import annotations

import bisect
import csv
import gzip
import heapq
import json
import os
import re
import typing as t
import zlib
from array import array

CHUNK = 1 << 20

TRACE_SUFFIXES = (".pt.trace.json", ".pt.trace.json.gz", ".trace.json", ".trace.json.gz")
NSYS_REPORT_SUFFIXES = (".nsys-rep", ".qdrep")

# vLLM's per-engine-step annotation (vllm/v1/worker/gpu_worker.py), both layouts:
#   execute_context_1(10)_generation_0(0)
#   execute_12_context_1(sq10sk10sqsq100sqsk100)_generation_2(sq2sk20sqsq2sqsk20)   (detailed_trace_annotation)
VLLM_STEP_RE = re.compile(
    r"^execute_(?:\d+_)?context_(\d+)\((?:sq)?(\d+)[^)]*\)_generation_(\d+)\((?:sq)?(\d+)[^)]*\)$"
)
# One call per attention layer per forward (vLLM's custom ops); used to estimate layers without stack capture.
ATTENTION_OP_RE = re.compile(r"^vllm::unified_(?:mla_)?attention(?:_with_output)?$")
DECODER_LAYER_RE = re.compile(r"^nn\.Module: (\w*?(?:DecoderLayer|Block|Layer))_(\d+)$")
MODULE_RE = re.compile(r"^nn\.Module: (.+?)(?:_\d+)?$")
GRAPH_LAUNCH_NAMES = frozenset(("cudaGraphLaunch", "cudaGraphLaunch_v10000", "cuGraphLaunch", "hipGraphLaunch"))

CPU_CATS = frozenset(("cpu_op", "user_annotation", "cuda_runtime", "cuda_driver"))
OP_CATS = frozenset(("cpu_op", "cuda_runtime", "cuda_driver"))
GPU_CATS = frozenset(("kernel", "gpu_memcpy", "gpu_memset"))

KERNEL_CATEGORIES = ("GEMM", "attention", "norm", "elementwise", "memcpy/memset", "communication", "other")
_CATEGORY_RES = (
    (
        "communication",
        re.compile(
            r"nccl|all_?reduce|all_?gather|reduce_?scatter|all_?to_?all|cross_device_reduce|sendrecv|custom_ar"
            r"|one_?shot|two_?shot|multimem|symm_mem",
            re.I,
        ),
    ),
    ("memcpy/memset", re.compile(r"^(?:memcpy|memset|dma)", re.I)),
    (
        "attention",
        re.compile(
            r"flash|fmha|attention|attn|paged|_mha|mha_|xformers|flashinfer|reshape_and_cache|kv_cache"
            r"|batch_prefill|batch_decode|cutlass_?mla|sdpa",
            re.I,
        ),
    ),
    ("norm", re.compile(r"norm|rms", re.I)),
    (
        "GEMM",
        re.compile(
            r"gemm|gemv|cutlass|cublas|nvjet|xmma|matmul|[sh](?:16816|1688|884)|hmma|imma|wgmma|splitk|triton_mm"
            r"|bmm|marlin|machete|scaled_mm|_mm_",
            re.I,
        ),
    ),
    (
        "elementwise",
        re.compile(
            r"elementwise|vectorized|unrolled|pointwise|triton_poi|act_and_mul|silu|gelu|relu|rotary|rope"
            r"|copy|fill|catarray|index|gather|scatter|where|masked_|cast|convert|arange",
            re.I,
        ),
    ),
)

_WS = re.compile(r"[ \t\n\r]*")
_SCAN = json.JSONDecoder().scan_once
_PY_HEAD = re.compile(r'\{\s*"ph":\s*"X",\s*"cat":\s*"python_function"')
_NOT_PY_CAT = re.compile(r'"cat":\s*"(?!python_function")')
_PY_MODULE = re.compile(
    r'"name":\s*"(nn\.Module: [^"\\]*)",\s*"pid":[^,]*,\s*"tid":[^,]*,'
    r'\s*"ts":\s*(-?[\d.]+(?:[eE][-+]?\d+)?),\s*"dur":\s*(-?[\d.]+(?:[eE][-+]?\d+)?)'
)


class PythonRun(t.NamedTuple):
    """A run of python_function events read in bulk: how many, and the nn.Module ones (name, ts, dur)."""

    events: int
    modules: list[tuple[str, float, float]]


class TraceError(Exception):
    """A trace or CSV that cannot be read; the message names the file."""


def kernel_category(name: str, cat: str = "kernel") -> str:
    """GEMM, attention, norm, elementwise, memcpy/memset, communication or other."""
    if cat in ("gpu_memcpy", "gpu_memset"):
        return "memcpy/memset"
    for category, regex in _CATEGORY_RES:
        if regex.search(name):
            return category
    return "other"


_GENERIC_HINTS = frozenset(
    ("BinaryFunctor", "gpu_kernel_impl", "gpu_kernel_impl_nocast", "ReduceOp", "UnaryFunctor", "AUnaryFunctor")
)
_DTYPE_RE = re.compile(r"\b(BFloat16|Half|Float8_e4m3fn|Float8_e5m2|float|double)\b")
_HINT_RE = re.compile(r"[A-Za-z_]\w*?(?:Functor\w*|Ops|_kernel_cuda|_kernel_impl|Op)\b")


def short_name(name: str, limit: int = 80) -> str:
    """A readable kernel name: ``elementwise_kernel [MulFunctor]`` for a long C++ signature."""
    s = name[5:] if name.startswith("void ") else name
    s = s.replace("(anonymous namespace)::", "")
    if "<" not in s and not name.startswith("void "):
        return s if len(s) <= limit else s[: limit - 1] + "…"
    base, templ, depth = [], [], 0
    for ch in s:
        if ch == "<":
            depth += 1
            if depth == 1:
                continue
        elif ch == ">" and depth:
            depth -= 1
            if depth == 0:
                continue
        elif ch == "(" and depth == 0:
            break
        (templ if depth else base).append(ch)
    head = "".join(base).strip()
    head = head.rsplit("::", 1)[-1] or head
    templ_text = "".join(templ)
    hints = [h for h in _HINT_RE.findall(templ_text) if h not in _GENERIC_HINTS and h != head][:1]
    dtype = _DTYPE_RE.search(templ_text)
    if dtype and hints:
        hints.append(dtype.group(1))
    out = f"{head} [{', '.join(hints)}]" if hints else head
    return out if len(out) <= limit else out[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# Streaming JSON reader
# --------------------------------------------------------------------------------------------


class _Stream:
    """Incremental reader of one top-level JSON object with a large ``traceEvents`` array."""

    def __init__(self, path: str, chunk: int | None = None) -> None:
        self.path = path
        self.chunk = chunk or CHUNK
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.consumed = 0
        self.bytes_in = 0
        try:
            with open(path, "rb") as raw:
                magic = raw.read(2)
        except OSError as exc:
            raise TraceError(f"{path}: cannot open ({exc.strerror or exc})") from None
        if magic == b"\x1f\x8b":
            self._f: t.IO[str] = gzip.open(path, "rt", encoding="utf-8")  # noqa: SIM115 - closed in close()
        else:
            self._f = open(path, encoding="utf-8")  # noqa: SIM115 - closed in close()

    def close(self) -> None:
        self._f.close()

    def more(self, size: int = 0) -> bool:
        if self.eof:
            return False
        try:
            chunk = self._f.read(size or self.chunk)
        except EOFError:
            raise TraceError(f"{self.path}: truncated gzip stream (the file ends before the compressed data)") from None
        except (OSError, zlib.error) as exc:
            raise TraceError(f"{self.path}: corrupt gzip data ({exc})") from None
        except UnicodeDecodeError as exc:
            raise TraceError(f"{self.path}: not UTF-8 text, so not a JSON trace ({exc.reason})") from None
        if not chunk:
            self.eof = True
            return False
        self.bytes_in += len(chunk)
        if self.pos:
            self.consumed += self.pos
            self.buf = self.buf[self.pos :] + chunk
            self.pos = 0
        else:
            self.buf += chunk
        return True

    def peek(self) -> str:
        """Skip whitespace; return the next character ('' at the end)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, char: str, what: str) -> None:
        got = self.peek()
        if got != char:
            self.fail(f"expected {what}, found {got!r}" if got else f"expected {what}, found the end of the file")
        self.pos += 1

    def fail(self, why: str) -> t.NoReturn:
        raise TraceError(f"{self.path}: not valid trace JSON at character {self.consumed + self.pos}: {why}")

    def value(self) -> t.Any:
        self.peek()
        grow = self.chunk
        while True:
            err, err_pos = "incomplete value", len(self.buf)
            try:
                obj, end = _SCAN(self.buf, self.pos)
                # A number cut at the end of the buffer would parse short: make sure more text follows.
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return obj
            except StopIteration as exc:
                err, err_pos = "no JSON value here", exc.value
            except ValueError as exc:
                err, err_pos = getattr(exc, "msg", str(exc)), getattr(exc, "pos", len(self.buf))
            if not self.more(grow):
                if err_pos >= len(self.buf) - 1:
                    self.fail("the file ends in the middle of a value (truncated?)")
                self.pos = err_pos
                self.fail(err)
            grow = min(grow * 2, 64 * max(self.chunk, CHUNK))

    def python_region(self, pos: int) -> int:
        """End of the run of python_function events that starts at ``pos`` (0: none to skip).

        Stack capture writes hundreds of thousands of python_function events in one run. Their
        ``args`` are not needed, only ``nn.Module`` names and times: the run is counted and
        searched with C string operations instead of being decoded event by event. The run ends
        before the next event of another category, or before the last event start in the buffer
        (which may be incomplete). JSON strings cannot hold an unescaped quote, so ``"cat": "``
        in the raw text is always a key.
        """
        buf = self.buf
        if not _PY_HEAD.match(buf, pos):
            return 0
        other = _NOT_PY_CAT.search(buf, pos)
        if other is not None:
            end = buf.rfind("{", pos, other.start())
        else:
            last = buf.rfind('"ph"', pos)
            end = buf.rfind("{", pos, last) if last > 0 else -1
        return end if end > pos else 0

    def array_items(self, skip_python: bool = False) -> t.Iterator[t.Any]:
        """Yield the elements of the array whose '[' was just consumed.

        ``skip_python``: runs of python_function events come as one ``PythonRun`` each
        (see ``python_region``) instead of one dict per event.
        """
        if self.peek() == "]":
            self.pos += 1
            return
        scan, ws = _SCAN, _WS.match
        while True:
            buf, pos = self.buf, self.pos
            if skip_python and buf[pos] == "{":
                end = self.python_region(pos)
                if end:
                    yield PythonRun(
                        buf.count('"ph"', pos, end),
                        [
                            (m.group(1), float(m.group(2)), float(m.group(3)))
                            for m in _PY_MODULE.finditer(buf, pos, end)
                        ],
                    )
                    self.pos = end
                    continue
            try:
                obj, end = scan(buf, pos)
            except (StopIteration, ValueError):
                obj, end = None, -1
            if end < 0 or (end >= len(buf) and not self.eof):
                obj = self.value()  # slow path: refill and retry (or report the error)
            else:
                self.pos = end
            yield obj
            pos = ws(self.buf, self.pos).end()
            if pos >= len(self.buf):
                self.pos = pos
                sep = self.peek()
                pos = self.pos
            else:
                sep = self.buf[pos]
            if sep == ",":
                self.pos = ws(self.buf, pos + 1).end()
                if self.pos >= len(self.buf):
                    self.peek()
                continue
            if sep == "]":
                self.pos = pos + 1
                return
            self.pos = pos
            self.fail("expected ',' or ']' between trace events" if sep else "the file ends inside traceEvents")


def read_trace(
    path: str, meta: dict[str, t.Any], chunk: int | None = None, skip_python: bool = False
) -> t.Iterator[t.Any]:
    """Yield the trace's events one at a time; fill ``meta`` with the other top-level keys.

    ``meta`` is complete once the generator is exhausted (keys may follow ``traceEvents``).
    ``chunk``: characters decoded per read (default 1 MiB). ``skip_python``: runs of
    python_function events come as ``PythonRun`` items. Raises ``TraceError`` naming the file
    for anything that is not a readable trace.
    """
    stream = _Stream(path, chunk)
    try:
        first = stream.peek()
        if first == "":
            raise TraceError(f"{path}: empty file")
        if first == "[":  # Chrome's "JSON array format": a bare list of events
            stream.pos += 1
            meta["_events_key"] = True
            yield from stream.array_items(skip_python)
            meta["_bytes"] = stream.consumed + stream.pos
            return
        if first != "{":
            raise TraceError(f"{path}: not JSON (starts with {stream.buf[stream.pos : stream.pos + 20]!r})")
        stream.pos += 1
        if stream.peek() == "}":
            stream.pos += 1
        else:
            while True:
                key = stream.value()
                if not isinstance(key, str):
                    stream.fail("expected a key")
                stream.expect(":", "':' after a key")
                if key == "traceEvents" and stream.peek() == "[":
                    stream.pos += 1
                    meta["_events_key"] = True
                    yield from stream.array_items(skip_python)
                else:
                    meta[key] = stream.value()
                sep = stream.peek()
                stream.pos += 1
                if sep == "}":
                    break
                if sep != ",":
                    stream.pos -= 1
                    stream.fail("expected ',' or '}' after a top-level value")
        if stream.peek() != "":
            stream.fail("text after the end of the JSON object")
        meta["_bytes"] = stream.consumed + stream.pos
    finally:
        stream.close()


# --------------------------------------------------------------------------------------------
# Statistics helpers
# --------------------------------------------------------------------------------------------


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


def _r(value: float | None, digits: int = 3) -> float | None:
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
        "total_us": _r(sum(vals)),
        "mean_us": _r(sum(vals) / len(vals)),
        "p50_us": _r(percentile(vals, 50)),
        "p90_us": _r(percentile(vals, 90)),
        "min_us": _r(vals[0]),
        "max_us": _r(vals[-1]),
    }


def _is_sorted(values: array) -> bool:
    return all(values[i] <= values[i + 1] for i in range(len(values) - 1))


# --------------------------------------------------------------------------------------------
# One trace
# --------------------------------------------------------------------------------------------


class _Thread:
    """CPU events of one (pid, tid), as typed columns."""

    __slots__ = ("dur", "nid", "ts")

    def __init__(self) -> None:
        self.ts = array("d")
        self.dur = array("d")
        self.nid = array("l")


class _Stream2:
    """GPU activities of one (device, stream)."""

    __slots__ = ("corr", "dur", "ts")

    def __init__(self) -> None:
        self.ts = array("d")
        self.dur = array("d")
        self.corr = array("q")


class TraceSummary:
    """What one trace (or a merge of several) says. ``to_dict()`` gives the module's ``summary``."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.kind = "trace"
        self.rank: int | None = None
        self.world_size: int | None = None
        self.host_name: str | None = None
        self.vllm_version: str | None = None
        self.device: dict[str, t.Any] | None = None
        self.with_stack = False
        self.events = 0
        self.bytes = 0
        self.window_us = 0.0
        self.base_ts = 0.0  # absolute ts (µs) of the window start, for one trace
        # name -> [cat, count, total_us, self_us]
        self.ops: dict[str, list[t.Any]] = {}
        # name -> [cat, count, total_us]
        self.kernels: dict[str, list[t.Any]] = {}
        # class name -> [count, total_us]
        self.modules: dict[str, list[float]] = {}
        # non-step user annotations: name -> [count, total_us]
        self.annotations: dict[str, list[float]] = {}
        # step records: dicts with start_us (from window start), dur_us, ctx/gen reqs and tokens, gpu fields
        self.steps: list[dict[str, t.Any]] = []
        self.step_source: str | None = None
        self.layers: dict[str, t.Any] | None = None
        self.gpu_busy_us: float | None = None
        self.gpu_span_us: float | None = None
        self.gpu_window_us: float | None = None
        self.cuda_graph_launches = 0
        self.graph_kernels = 0
        self.graph_kernel_us = 0.0
        self.process_names: list[str] = []
        self.errors: list[str] = []

    # ---- merging --------------------------------------------------------------------------
    @classmethod
    def merge(cls, parts: t.Sequence[TraceSummary], steps_from: str = "lowest_rank") -> TraceSummary:
        """Combine summaries. ``steps_from``: ``lowest_rank`` (ranks of one engine repeat the same
        steps: keep the lowest rank's) or ``all`` (separate engines, e.g. hosts of a fleet)."""
        out = cls()
        if not parts:
            return out
        out.kind = parts[0].kind if len({p.kind for p in parts}) == 1 else "mixed"
        ranks = [p.rank for p in parts if p.rank is not None]
        out.rank = min(ranks) if ranks else None
        out.world_size = max((p.world_size for p in parts if p.world_size), default=None)
        versions = sorted({p.vllm_version for p in parts if p.vllm_version})
        out.vllm_version = ", ".join(versions) if versions else None
        out.device = next((p.device for p in parts if p.device), None)
        out.host_name = next((p.host_name for p in parts if p.host_name), None)
        out.with_stack = any(p.with_stack for p in parts)
        for p in parts:
            out.files.extend(p.files)
            out.events += p.events
            out.bytes += p.bytes
            out.window_us += p.window_us
            out.cuda_graph_launches += p.cuda_graph_launches
            out.graph_kernels += p.graph_kernels
            out.graph_kernel_us += p.graph_kernel_us
            out.errors.extend(p.errors)
            for name, (cat, count, total, self_us) in p.ops.items():
                row = out.ops.setdefault(name, [cat, 0, 0.0, 0.0])
                row[1] += count
                row[2] += total
                row[3] += self_us
            for name, (cat, count, total) in p.kernels.items():
                row = out.kernels.setdefault(name, [cat, 0, 0.0])
                row[1] += count
                row[2] += total
            for src, dst in ((p.modules, out.modules), (p.annotations, out.annotations)):
                for name, (count, total) in src.items():
                    row = dst.setdefault(name, [0, 0.0])
                    row[0] += count
                    row[1] += total
            for attr in ("gpu_busy_us", "gpu_span_us", "gpu_window_us"):
                value = getattr(p, attr)
                if value is not None:
                    setattr(out, attr, (getattr(out, attr) or 0.0) + value)
        with_steps = [p for p in parts if p.steps]
        if with_steps:
            if steps_from == "lowest_rank":
                low = min((p.rank if p.rank is not None else 1 << 30) for p in with_steps)
                with_steps = [p for p in with_steps if (p.rank if p.rank is not None else 1 << 30) == low]
            # Lay captures end to end on the timeline (each one's times start at its own window).
            offset = 0.0
            for p in with_steps:
                for step in p.steps:
                    rec = dict(step, start_us=step["start_us"] + offset) if offset else step
                    if offset and rec.get("gpu_start_us") is not None:
                        rec["gpu_start_us"] += offset
                    out.steps.append(rec)
                offset += p.window_us
            out.step_source = with_steps[0].step_source
        layers = [p.layers for p in parts if p.layers]
        layers.sort(key=lambda item: item.get("estimated", True))
        out.layers = layers[0] if layers else None
        return out

    # ---- output ---------------------------------------------------------------------------
    def steps_dict(self) -> dict[str, t.Any] | None:
        if not self.steps:
            return None
        vllm = self.step_source == "vllm"
        prefill = [s for s in self.steps if vllm and s["ctx_tokens"] > 0]
        decode = [s for s in self.steps if vllm and s["ctx_tokens"] == 0 and s["gen_tokens"] > 0]
        empty = [s for s in self.steps if vllm and s["ctx_tokens"] == 0 and s["gen_tokens"] == 0]
        working = [s for s in self.steps if not vllm or s["ctx_tokens"] or s["gen_tokens"]]
        out: dict[str, t.Any] = {
            "source": self.step_source,
            "steps": len(working),
            "empty_steps": len(empty),
            "all": duration_stats(s["dur_us"] for s in working),
        }
        if vllm:
            out.update(
                prefill_steps=len(prefill),
                decode_steps=len(decode),
                mixed_steps=sum(1 for s in prefill if s["gen_tokens"] > 0),
                prefill_tokens=sum(s["ctx_tokens"] for s in self.steps),
                decode_tokens=sum(s["gen_tokens"] for s in self.steps),
                prefill=duration_stats(s["dur_us"] for s in prefill),
                decode=duration_stats(s["dur_us"] for s in decode),
            )
            gpu_decode = [s["gpu_dur_us"] for s in decode if s.get("gpu_dur_us") is not None]
            gpu_prefill = [s["gpu_dur_us"] for s in prefill if s.get("gpu_dur_us") is not None]
            if gpu_decode or gpu_prefill:
                out["gpu_prefill"] = duration_stats(gpu_prefill)
                out["gpu_decode"] = duration_stats(gpu_decode)
        return out

    def kernel_categories(self) -> list[dict[str, t.Any]]:
        total = sum(row[2] for row in self.kernels.values())
        cats: dict[str, list[float]] = {c: [0, 0.0] for c in KERNEL_CATEGORIES}
        for name, (cat, count, dur) in self.kernels.items():
            row = cats[kernel_category(name, cat)]
            row[0] += count
            row[1] += dur
        return [
            {
                "category": c,
                "count": int(cats[c][0]),
                "total_us": _r(cats[c][1]),
                "share_pct": _r(100.0 * cats[c][1] / total, 2) if total else 0.0,
            }
            for c in KERNEL_CATEGORIES
        ]

    def timeline(self, limit: int = 4000) -> list[dict[str, t.Any]]:
        rows = sorted(self.steps, key=lambda s: s["start_us"])[:limit]
        keys = ("start_us", "dur_us", "ctx_tokens", "gen_tokens", "gpu_start_us", "gpu_dur_us", "gpu_busy_us")
        out = []
        for s in rows:
            row = {k: (_r(s[k]) if isinstance(s.get(k), float) else s.get(k)) for k in keys}
            row["phase"] = _phase(s, self.step_source)
            row["name"] = s["name"]
            out.append(row)
        return out

    def to_dict(self, top: int = 15) -> dict[str, t.Any]:
        total_kernel = sum(row[2] for row in self.kernels.values())
        ops = sorted(self.ops.items(), key=lambda kv: (-kv[1][3], kv[0]))[:top]
        kernels = sorted(self.kernels.items(), key=lambda kv: (-kv[1][2], kv[0]))[:top]
        busy_pct = (
            _r(100.0 * self.gpu_busy_us / self.gpu_window_us, 2)
            if self.gpu_busy_us is not None and self.gpu_window_us
            else None
        )
        gpu = None
        if self.gpu_busy_us is not None:
            gpu = {
                "busy_us": _r(self.gpu_busy_us),
                "window_us": _r(self.gpu_window_us),
                "busy_pct": busy_pct,
                "active_span_us": _r(self.gpu_span_us),
                "busy_pct_of_active_span": _r(100.0 * self.gpu_busy_us / self.gpu_span_us, 2)
                if self.gpu_span_us
                else None,
                "kernel_time_us": _r(total_kernel),
                "cuda_graph_kernels": self.graph_kernels,
                "cuda_graph_kernel_us": _r(self.graph_kernel_us),
            }
        return {
            "files": list(self.files),
            "kind": self.kind,
            "rank": self.rank,
            "world_size": self.world_size,
            "host_name": self.host_name,
            "vllm_version": self.vllm_version,
            "device": self.device,
            "with_stack": self.with_stack,
            "events": self.events,
            "json_bytes": self.bytes,
            "window_us": _r(self.window_us),
            "steps": self.steps_dict(),
            "layers": self.layers,
            "top_ops": [
                {
                    "name": name,
                    "cat": cat,
                    "count": count,
                    "total_us": _r(total),
                    "self_us": _r(self_us),
                }
                for name, (cat, count, total, self_us) in ops
            ],
            "top_kernels": [
                {
                    "name": name,
                    "short_name": short_name(name),
                    "category": kernel_category(name, cat),
                    "count": count,
                    "total_us": _r(total),
                    "mean_us": _r(total / count) if count else None,
                    "share_pct": _r(100.0 * total / total_kernel, 2) if total_kernel else None,
                }
                for name, (cat, count, total) in kernels
            ],
            "kernel_categories": self.kernel_categories() if self.kernels else [],
            "top_modules": [
                {"name": name, "count": int(count), "total_us": _r(total), "mean_us": _r(total / count)}
                for name, (count, total) in sorted(self.modules.items(), key=lambda kv: (-kv[1][1], kv[0]))[:top]
            ],
            "top_annotations": [
                {"name": name, "count": int(count), "total_us": _r(total)}
                for name, (count, total) in sorted(self.annotations.items(), key=lambda kv: (-kv[1][1], kv[0]))[:top]
            ],
            "gpu": gpu,
            "gpu_busy_pct": busy_pct,
            "cuda_graph_launches": self.cuda_graph_launches,
            "timeline": self.timeline(),
        }


def _phase(step: dict[str, t.Any], source: str | None) -> str:
    if source != "vllm":
        return "step"
    if step["ctx_tokens"] > 0:
        return "prefill"
    return "decode" if step["gen_tokens"] > 0 else "empty"


def _device(props: t.Any) -> dict[str, t.Any] | None:
    if not isinstance(props, list) or not props or not isinstance(props[0], dict):
        return None
    first = props[0]
    out = {
        "name": first.get("name"),
        "count": len(props),
        "total_memory_gib": _r(first["totalGlobalMem"] / 2**30, 1)
        if isinstance(first.get("totalGlobalMem"), (int, float))
        else None,
        "sms": first.get("numSms"),
    }
    if "computeMajor" in first:
        out["compute_capability"] = f"{first.get('computeMajor')}.{first.get('computeMinor')}"
    return out


def summarize_trace(
    path: str, step_regex: str | None = None, label: str | None = None, skip_python: bool = True
) -> TraceSummary:
    """Read one trace file (streaming) and summarise it. Raises ``TraceError``.

    ``skip_python``: read runs of python_function events in bulk (only ``nn.Module`` events are
    needed from them); their times then do not widen the profiled window, which Kineto's own
    "PyTorch Profiler" span covers anyway. False decodes every event (the tests compare both).
    """
    step_re = re.compile(step_regex) if step_regex else VLLM_STEP_RE
    vllm_steps = step_regex is None
    meta: dict[str, t.Any] = {}
    names: dict[str, int] = {}
    name_list: list[str] = []
    name_cat: list[str] = []
    threads: dict[tuple[t.Any, t.Any], _Thread] = {}
    gpu_streams: dict[tuple[t.Any, t.Any], _Stream2] = {}
    kernels: dict[str, list[t.Any]] = {}
    modules: dict[str, list[float]] = {}
    cpu_steps: list[tuple[float, float, str]] = []
    gpu_steps: list[tuple[float, float, str]] = []
    attn_ts = array("d")
    graph_corr: set[int] = set()
    graph_launches = 0
    process_names: list[str] = []
    lo = float("inf")
    hi = float("-inf")
    count = 0
    step_match = step_re.match
    attn_match = ATTENTION_OP_RE.match

    py_runs = 0
    for ev in read_trace(path, meta, skip_python=skip_python):
        count += 1
        if isinstance(ev, PythonRun):
            count += ev.events - 1
            py_runs += 1
            for name, _ts, dur in ev.modules:
                row = modules.get(name)
                if row is None:
                    modules[name] = [1, dur]
                else:
                    row[0] += 1
                    row[1] += dur
            continue
        if not isinstance(ev, dict):
            raise TraceError(f"{path}: traceEvents item {count} is not an object")
        ph = ev.get("ph")
        if ph != "X":
            if ph == "M" and ev.get("name") == "process_name":
                pname = (ev.get("args") or {}).get("name")
                if isinstance(pname, str) and pname not in process_names:
                    process_names.append(pname)
            continue
        ts = ev.get("ts")
        dur = ev.get("dur") or 0.0
        if ts is None:
            continue
        if not isinstance(ts, float):
            try:
                ts = float(ts)
                dur = float(dur)
            except (TypeError, ValueError):
                raise TraceError(f"{path}: event {count} has a non-numeric ts/dur") from None
        end = ts + dur
        lo = min(lo, ts)
        hi = max(hi, end)
        cat = ev.get("cat")
        name = ev.get("name")
        if cat == "python_function":
            if name[:11] == "nn.Module: ":
                row = modules.get(name)
                if row is None:
                    modules[name] = [1, dur]
                else:
                    row[0] += 1
                    row[1] += dur
            continue
        if cat in CPU_CATS:
            nid = names.get(name)
            if nid is None:
                nid = names[name] = len(name_list)
                name_list.append(name)
                name_cat.append(cat)
            key = (ev.get("pid"), ev.get("tid"))
            th = threads.get(key)
            if th is None:
                th = threads[key] = _Thread()
            th.ts.append(ts)
            th.dur.append(dur)
            th.nid.append(nid)
            if cat == "cpu_op":
                if attn_match(name):
                    attn_ts.append(ts)
            elif cat == "user_annotation":
                if step_match(name):
                    cpu_steps.append((ts, dur, name))
            elif name in GRAPH_LAUNCH_NAMES:
                graph_launches += 1
                corr = (ev.get("args") or {}).get("correlation")
                if corr is not None:
                    graph_corr.add(corr)
        elif cat in GPU_CATS:
            args = ev.get("args") or {}
            key = (args.get("device", ev.get("pid")), args.get("stream", ev.get("tid")))
            st = gpu_streams.get(key)
            if st is None:
                st = gpu_streams[key] = _Stream2()
            st.ts.append(ts)
            st.dur.append(dur)
            corr = args.get("correlation")
            st.corr.append(corr if isinstance(corr, int) and not isinstance(corr, bool) else -1)
            row = kernels.get(name)
            if row is None:
                kernels[name] = [cat, 1, dur]
            else:
                row[1] += 1
                row[2] += dur
        elif cat == "gpu_user_annotation" and step_match(name):
            gpu_steps.append((ts, dur, name))

    if not meta.get("_events_key"):
        raise TraceError(f"{path}: JSON but not a trace: it has no 'traceEvents' array")
    if count == 0:
        raise TraceError(f"{path}: empty trace: 'traceEvents' has no events")

    s = TraceSummary()
    s.files = [label or path]
    s.events = count
    s.bytes = int(meta.get("_bytes") or 0)
    s.process_names = process_names
    s.window_us = (hi - lo) if hi > lo else 0.0
    base = lo if lo != float("inf") else 0.0
    s.base_ts = base
    dist = meta.get("distributedInfo") if isinstance(meta.get("distributedInfo"), dict) else {}
    s.rank = dist.get("rank") if isinstance(dist.get("rank"), int) else None
    s.world_size = dist.get("world_size") if isinstance(dist.get("world_size"), int) else None
    s.host_name = meta.get("host_name") if isinstance(meta.get("host_name"), str) else None
    version = meta.get("vllm_version")
    if not version and isinstance(meta.get("vllm_version_tuple"), list):
        version = ".".join(str(v) for v in meta["vllm_version_tuple"])
    s.vllm_version = str(version) if version else None
    s.device = _device(meta.get("deviceProperties"))
    s.with_stack = bool(meta.get("with_stack")) or bool(modules) or bool(py_runs)
    s.cuda_graph_launches = graph_launches
    s.kernels = kernels

    # Kind: vLLM names its API-server trace "<host>_<pid>.async_llm.<ns>.pt.trace.json.gz".
    basename = os.path.basename(path)
    if ".async_llm." in basename or "async_llm" in basename.split(".")[0]:
        s.kind = "frontend"
    elif (cpu_steps and vllm_steps) or s.vllm_version or any("VLLM" in n for n in process_names):
        s.kind = "worker"

    _self_times(s, threads, name_list, name_cat, step_re)
    _steps(s, cpu_steps=cpu_steps, gpu_steps=gpu_steps, base=base, vllm=vllm_steps, label=label or path)
    _gpu(s, gpu_streams, graph_corr, base)
    _layers(s, modules, attn_ts)
    for name, (cnt, total) in modules.items():
        cls_name = MODULE_RE.match(name).group(1)  # type: ignore[union-attr]
        row = s.modules.setdefault(cls_name, [0, 0.0])
        row[0] += cnt
        row[1] += total
    return s


def _self_times(
    s: TraceSummary,
    threads: dict[tuple[t.Any, t.Any], _Thread],
    name_list: list[str],
    name_cat: list[str],
    step_re: re.Pattern[str],
) -> None:
    """Self time = duration minus direct children's durations, per thread (as torch's key_averages)."""
    n = len(name_list)
    count = [0] * n
    total = [0.0] * n
    self_t = [0.0] * n
    for th in threads.values():
        _thread_self_times(th, count, total, self_t)
    for k, name in enumerate(name_list):
        if not count[k]:
            continue
        cat = name_cat[k]
        if cat in OP_CATS:
            s.ops[name] = [cat, count[k], total[k], self_t[k]]
        elif cat == "user_annotation" and not step_re.match(name):
            s.annotations[name] = [count[k], total[k]]


def _thread_self_times(th: _Thread, count: list[int], total: list[float], self_t: list[float]) -> None:
    """Walk one thread's events in time order with a stack of open events."""
    ts, dur, nid = th.ts, th.dur, th.nid
    size = len(ts)
    if _is_sorted(ts):
        order: t.Iterable[int] = range(size)
    else:
        order = sorted(range(size), key=lambda i: (ts[i], -dur[i]))
    # frame: [end, index, sum of direct children's durations, number of children, first child]
    stack: list[list[t.Any]] = []

    def close(frame: list[t.Any]) -> None:
        _end, j, child_sum, n_children, first = frame
        k = nid[j]
        self_t[k] += max(dur[j] - child_sum, 0.0)
        # torch's key_averages() folds an op whose only child has the same name (e.g. aten::div_
        # calling aten::div_) into one call: the self time is unchanged, the inner call is not counted.
        if n_children == 1 and nid[first] == k:
            count[k] -= 1
            total[k] -= dur[first]

    for i in order:
        start = ts[i]
        while stack and stack[-1][0] <= start:
            close(stack.pop())
        if stack:
            parent = stack[-1]
            parent[2] += dur[i]
            parent[3] += 1
            if parent[3] == 1:
                parent[4] = i
        stack.append([start + dur[i], i, 0.0, 0, -1])
        k = nid[i]
        count[k] += 1
        total[k] += dur[i]
    while stack:
        close(stack.pop())


def _steps(
    s: TraceSummary,
    *,
    cpu_steps: list[tuple[float, float, str]],
    gpu_steps: list[tuple[float, float, str]],
    base: float,
    vllm: bool,
    label: str,
) -> None:
    source = cpu_steps or gpu_steps
    if not source:
        return
    source.sort()
    gpu_steps.sort()
    pair_gpu = bool(cpu_steps) and len(gpu_steps) == len(cpu_steps)
    for i, (ts, dur, name) in enumerate(source):
        rec: dict[str, t.Any] = {"name": name, "start_us": ts - base, "dur_us": dur, "file": label}
        m = VLLM_STEP_RE.match(name) if vllm else None
        if m:
            rec.update(
                ctx_reqs=int(m.group(1)),
                ctx_tokens=int(m.group(2)),
                gen_reqs=int(m.group(3)),
                gen_tokens=int(m.group(4)),
            )
        else:
            rec.update(ctx_reqs=None, ctx_tokens=None, gen_reqs=None, gen_tokens=None)
        if pair_gpu and gpu_steps[i][2] == name:
            rec["gpu_start_us"] = gpu_steps[i][0] - base
            rec["gpu_dur_us"] = gpu_steps[i][1]
        elif not cpu_steps:
            rec["gpu_start_us"] = ts - base
            rec["gpu_dur_us"] = dur
        s.steps.append(rec)
    s.step_source = "vllm" if vllm else "step_regex"


def _merged_intervals(streams: list[_Stream2]) -> t.Iterator[tuple[float, float]]:
    """Union of the streams' [ts, ts+dur) intervals, in time order."""
    iters = []
    for st in streams:
        ts, dur = st.ts, st.dur
        idx: t.Iterable[int] = range(len(ts)) if _is_sorted(ts) else sorted(range(len(ts)), key=ts.__getitem__)
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


def _gpu(s: TraceSummary, gpu_streams: dict[tuple[t.Any, t.Any], _Stream2], graph_corr: set[int], base: float) -> None:
    if not gpu_streams:
        return
    by_device: dict[t.Any, list[_Stream2]] = {}
    for (device, _stream), st in gpu_streams.items():
        by_device.setdefault(device, []).append(st)
        if graph_corr:
            for corr, dur in zip(st.corr, st.dur, strict=True):
                if corr in graph_corr:
                    s.graph_kernels += 1
                    s.graph_kernel_us += dur
    windows = [
        (r["gpu_start_us"] + base, r["gpu_start_us"] + base + r["gpu_dur_us"], r) for r in s.steps if "gpu_dur_us" in r
    ]
    windows.sort(key=lambda w: w[0])
    starts = [w[0] for w in windows]
    for rec in (w[2] for w in windows):
        rec["gpu_busy_us"] = 0.0
    busy = span = 0.0
    for streams in by_device.values():
        first = last = None
        for a, b in _merged_intervals(streams):
            busy += b - a
            if first is None:
                first = a
            last = b
            if windows:
                i = max(bisect.bisect_right(starts, a) - 1, 0)
                while i < len(windows) and windows[i][0] < b:
                    lo_, hi_, rec = windows[i]
                    overlap = min(b, hi_) - max(a, lo_)
                    if overlap > 0:
                        rec["gpu_busy_us"] += overlap
                    i += 1
        if first is not None:
            span += last - first  # type: ignore[operator]
    s.gpu_busy_us = busy
    s.gpu_span_us = span
    s.gpu_window_us = s.window_us * len(by_device)


def _layers(s: TraceSummary, modules: dict[str, list[float]], attn_ts: array) -> None:
    indices: dict[str, set[int]] = {}
    for name in modules:
        m = DECODER_LAYER_RE.match(name)
        if m:
            indices.setdefault(m.group(1), set()).add(int(m.group(2)))
    decoder = {k: v for k, v in indices.items() if "Decoder" in k} or indices
    if decoder:
        cls_name, idx = max(decoder.items(), key=lambda kv: len(kv[1]))
        s.layers = {"count": max(idx) + 1, "module": cls_name, "source": "nn.Module events", "estimated": False}
        return
    if not attn_ts or not s.steps:
        return
    # Without stack capture: attention ops per step (one per attention layer per forward).
    attn = sorted(attn_ts)
    per_step: dict[int, int] = {}
    for rec in s.steps:
        # step times are relative to the window start; attention timestamps are absolute
        a = rec["start_us"] + s.base_ts
        b = a + rec["dur_us"]
        n = bisect.bisect_left(attn, b) - bisect.bisect_left(attn, a)
        if n:
            per_step[n] = per_step.get(n, 0) + 1
    if not per_step:
        return
    n = max(per_step.items(), key=lambda kv: (kv[1], -kv[0]))[0]
    s.layers = {
        "count": n,
        "module": None,
        "source": "attention ops per step (vllm::unified_attention*)",
        "estimated": True,
    }


# --------------------------------------------------------------------------------------------
# nsys stats CSVs
# --------------------------------------------------------------------------------------------

# report name (both eras) -> kind
NSYS_REPORTS = {
    "cuda_gpu_kern_sum": "gpu_kernels",
    "gpukernsum": "gpu_kernels",
    "cuda_api_sum": "cuda_api",
    "cudaapisum": "cuda_api",
    "nvtx_sum": "nvtx",
    "nvtxsum": "nvtx",
    "nvtx_pushpop_sum": "nvtx",
    "nvtxppsum": "nvtx",
    "osrt_sum": "osrt",
    "osrtsum": "osrt",
    "cuda_gpu_mem_time_sum": "gpu_mem_time",
    "gpumemtimesum": "gpu_mem_time",
    "cuda_gpu_mem_size_sum": "gpu_mem_size",
    "gpumemsizesum": "gpu_mem_size",
    "cuda_gpu_sum": "gpu_sum",
    "gpusum": "gpu_sum",
}
_NSYS_NAME_RE = re.compile(r"(?:^|_)(" + "|".join(sorted(NSYS_REPORTS, key=len, reverse=True)) + r")$")


def nsys_report_name(filename: str) -> str | None:
    stem = os.path.basename(filename)
    if stem.lower().endswith(".csv"):
        stem = stem[:-4]
    m = _NSYS_NAME_RE.search(stem)
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
            "kind": NSYS_REPORTS.get(report or "", "other"),
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
                "total_us": _r(total * unit) if total is not None else None,
                "count": int(_num(r[i_count]) or 0) if i_count is not None else None,
                "avg_us": _r((_num(r[i_avg]) or 0.0) * unit) if i_avg is not None else None,
            }
        )
    out_rows.sort(key=lambda row: -(row["total_us"] or 0.0))
    return {
        "file": path,
        "report": report,
        "kind": NSYS_REPORTS.get(report or "", "other"),
        "columns": header,
        "rows_total": len(out_rows),
        "rows": out_rows[:top],
    }


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


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


def _trace_row(s: TraceSummary, top: int) -> dict[str, t.Any]:
    d = s.to_dict(top)
    d.pop("timeline", None)
    d["label"] = s.files[0] if s.files else ""
    return d


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
        merged = TraceSummary.merge(workers or frontends)
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
            }
        )
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
    }
