# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: summarise one Kineto trace file (steps, self times, GPU busy, layers)."""

from __future__ import annotations

import bisect
import os
import re
import typing as t
from array import array

from ansible_collections.vllm_infra.profiling.plugins.module_utils._profiler import classify_trace
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.classify import (
    ATTENTION_OP_RE,
    CPU_CATS,
    DECODER_LAYER_RE,
    GPU_CATS,
    GRAPH_LAUNCH_NAMES,
    MODULE_RE,
    OP_CATS,
    VLLM_STEP_RE,
    kernel_category,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.reader import (
    ABSENT,
    Elided,
    PythonRun,
    TraceError,
    fast_backend,
    read_trace,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.stats import is_sorted, merged_intervals
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.summary import TraceSummary, device_info

# Categories whose events are summarised from their head alone (name, pid, tid, ts, dur): their args (a cpu_op's
# input shapes and types) are not read, so the reader need not decode them. Kernels (device, stream, correlation)
# and CUDA runtime calls (a cudaGraphLaunch's correlation) are decoded whole.
LEAN_CATS = frozenset(("cpu_op", "user_annotation", "gpu_user_annotation", "python_function"))


class _NoEvent:
    """Stands for msgspec's Event type where msgspec is not used: no event is one."""


class _Thread:
    """CPU events of one (pid, tid), as typed columns."""

    __slots__ = ("dur", "nid", "ts")

    def __init__(self) -> None:
        self.ts = array("d")
        self.dur = array("d")
        self.nid = array("l")


class _GpuQueue:
    """GPU activities of one (device, stream)."""

    __slots__ = ("corr", "dur", "ts")

    def __init__(self) -> None:
        self.ts = array("d")
        self.dur = array("d")
        self.corr = array("q")


def summarize_trace(
    path: str, step_regex: str | None = None, label: str | None = None, skip_python: bool = True
) -> TraceSummary:
    """Read one trace file (streaming) and summarise it. Raises ``TraceError``.

    ``skip_python``: read runs of python_function events in bulk (only ``nn.Module`` events are
    needed from them); their times then do not widen the profiled window, which Kineto's own
    "PyTorch Profiler" span covers anyway; and events of ``LEAN_CATS`` are read without their args,
    flow events not at all. False decodes every event (the tests compare both).
    """
    step_re = re.compile(step_regex) if step_regex else VLLM_STEP_RE
    vllm_steps = step_regex is None
    names: dict[str, int] = {}
    name_list: list[str] = []
    name_cat: list[str] = []
    threads: dict[tuple[t.Any, t.Any], _Thread] = {}
    gpu_streams: dict[tuple[t.Any, t.Any], _GpuQueue] = {}
    kernels: dict[str, list[t.Any]] = {}
    modules: dict[str, list[float]] = {}
    cpu_steps: list[tuple[float, float, str]] = []
    gpu_steps: list[tuple[float, float, str]] = []
    attn_ts = array("d")
    graph_corr: set[int] = set()
    graph_launches = 0
    graph_launch_ts = array("d")
    # Collective kernels in time order (ts, dur), matched by order across the ranks of a capture.
    comm_ts = array("d")
    comm_dur = array("d")
    is_comm: dict[str, bool] = {}
    # CPU collective ops (vLLM's CPU backend: _C::shm_allreduce, ...): name -> [(ts, dur)]
    comm_ops: dict[str, list[tuple[float, float]]] = {}
    not_comm: set[str] = set()
    op_kind: dict[str, int] = {}
    process_names: list[str] = []
    lo = float("inf")
    hi = float("-inf")
    count = 0
    step_match = step_re.match
    attn_match = ATTENTION_OP_RE.match

    py_runs = 0
    # msgspec's Event structs (optional backend): the same fields as the dict's, read as attributes; an absent
    # key of an event is None, of its args ABSENT (see reader.fast_backend).
    backend = fast_backend() if skip_python else None
    event_type = backend[1] if backend else _NoEvent
    trace = read_trace(path, skip_python=skip_python, lean=LEAN_CATS, fast=skip_python)
    for ev in trace:
        count += 1
        if isinstance(ev, event_type):
            ph = ev.ph
            if ph != "X":
                if ph == "M" and ev.name == "process_name" and ev.args is not None:
                    pname = ev.args.name
                    if isinstance(pname, str) and pname not in process_names:
                        process_names.append(pname)
                continue
            ts = ev.ts
            dur = ev.dur or 0.0
            if ts is None:
                continue
            get = None
        else:
            if isinstance(ev, Elided):
                continue
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
            get = ev.get
            ph = get("ph")
            if ph != "X":
                if ph == "M" and get("name") == "process_name":
                    pname = (get("args") or {}).get("name")
                    if isinstance(pname, str) and pname not in process_names:
                        process_names.append(pname)
                continue
            ts = get("ts")
            dur = get("dur") or 0.0
            if ts is None:
                continue
        if not isinstance(ts, float):
            try:
                ts = float(ts)
                dur = float(dur)
            except (TypeError, ValueError):
                raise TraceError(f"{path}: event {count} has a non-numeric ts/dur") from None
        end = ts + dur
        # min/max, without their calls (a tenth of this loop's time)
        if ts < lo:  # noqa: PLR1730
            lo = ts
        if end > hi:  # noqa: PLR1730
            hi = end
        if get is None:
            cat = ev.cat
            name = ev.name
        else:
            cat = get("cat")
            name = get("name")
        if cat == "python_function":
            # The same count as for a PythonRun's modules above, written out: a call per event costs here.
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
            key = (ev.pid, ev.tid) if get is None else (get("pid"), get("tid"))
            th = threads.get(key)
            if th is None:
                th = threads[key] = _Thread()
            th.ts.append(ts)
            th.dur.append(dur)
            th.nid.append(nid)
            if cat == "cpu_op":
                # an attention op, a collective or neither: decided once per name
                kind = op_kind.get(name)
                if kind is None:
                    kind = op_kind[name] = 1 if attn_match(name) else 2 if _is_comm_op(name, comm_ops, not_comm) else 0
                if kind == 1:
                    attn_ts.append(ts)
                elif kind == 2:
                    comm_ops[name].append((ts, dur))
            elif cat == "user_annotation":
                if step_match(name):
                    cpu_steps.append((ts, dur, name))
            elif name in GRAPH_LAUNCH_NAMES:
                graph_launches += 1
                graph_launch_ts.append(ts)
                if get is not None:
                    corr = (get("args") or {}).get("correlation")
                else:
                    corr = ev.args.correlation if ev.args is not None else None
                    corr = None if corr is ABSENT else corr
                if corr is not None:
                    graph_corr.add(corr)
        elif cat in GPU_CATS:
            if get is not None:
                args = get("args") or {}
                key = (args.get("device", get("pid")), args.get("stream", get("tid")))
                corr = args.get("correlation")
            else:
                args = ev.args
                if args is None:
                    key, corr = (ev.pid, ev.tid), None
                else:
                    device, stream, corr = args.device, args.stream, args.correlation
                    key = (ev.pid if device is ABSENT else device, ev.tid if stream is ABSENT else stream)
            st = gpu_streams.get(key)
            if st is None:
                st = gpu_streams[key] = _GpuQueue()
            st.ts.append(ts)
            st.dur.append(dur)
            st.corr.append(corr if isinstance(corr, int) and not isinstance(corr, bool) else -1)
            row = kernels.get(name)
            if row is None:
                kernels[name] = [cat, 1, dur]
                is_comm[name] = cat == "kernel" and kernel_category(name) == "communication"
            else:
                row[1] += 1
                row[2] += dur
            if is_comm[name]:
                comm_ts.append(ts)
                comm_dur.append(dur)
        elif cat == "gpu_user_annotation" and step_match(name):
            gpu_steps.append((ts, dur, name))

    if not trace.has_events:
        raise TraceError(f"{path}: JSON but not a trace: it has no 'traceEvents' array")
    if count == 0:
        raise TraceError(f"{path}: empty trace: 'traceEvents' has no events")

    s = TraceSummary()
    s.files = [label or path]
    s.events = count
    meta = trace.meta
    s.bytes = trace.bytes
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
    s.device = device_info(meta.get("deviceProperties"))
    s.with_stack = bool(meta.get("with_stack")) or bool(modules) or bool(py_runs)
    s.cuda_graph_launches = graph_launches
    if comm_ts and not is_sorted(comm_ts):
        order = sorted(range(len(comm_ts)), key=comm_ts.__getitem__)
        comm_dur = array("d", (comm_dur[i] for i in order))
    s.collective_durs = comm_dur
    s.kernels = kernels

    # Kind: vLLM names its API-server trace "<host>_<pid>.async_llm.<ns>.pt.trace.json.gz".
    named = classify_trace(path)
    s.name_rank = named["rank"] if named else None
    basename = os.path.basename(path)
    if (named and named["kind"] == "frontend") or ".async_llm." in basename or "async_llm" in basename.split(".")[0]:
        s.kind = "frontend"
    elif (cpu_steps and vllm_steps) or s.vllm_version or any("VLLM" in n for n in process_names):
        s.kind = "worker"

    _self_times(s, threads, name_list, name_cat, step_re)
    s.cpu_collective_durs = _cpu_collectives(s, comm_ops)
    _steps(s, cpu_steps=cpu_steps, gpu_steps=gpu_steps, base=base, vllm=vllm_steps, label=label or path)
    _gpu(s, gpu_streams, graph_corr, base)
    _graph_steps(s, graph_launch_ts, base)
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
    if is_sorted(ts):
        order: t.Iterable[int] = range(size)
    else:
        # by start, the longer first at the same start: two stable sorts (by duration, longest first, then by
        # start) give the order of sorting by (ts, -dur), without a key tuple per event
        order = sorted(range(size), key=dur.__getitem__, reverse=True)
        order.sort(key=ts.__getitem__)
    # The open events as two stacks, their ends and their indices, with a sentinel at the bottom whose end (NaN)
    # compares false with any start (never closed in the loop); per event, the sum of its direct children's
    # durations, their number and the first of them. An event is closed (its self time added) when one starts at or
    # after its end: the same additions in the same order as a frame object per event, without the objects.
    child = [0.0] * size
    kids = [0] * size
    first = [0] * size
    ends = [float("nan")]
    opened = [-1]
    top = -1
    for i in order:
        start = ts[i]
        while ends[-1] <= start:
            ends.pop()
            j = opened.pop()
            top = opened[-1]
            k = nid[j]
            own = dur[j] - child[j]
            self_t[k] += 0.0 if own < 0.0 else own  # max(own, 0.0)
            # torch's key_averages() folds an op whose only child has the same name (e.g. aten::div_
            # calling aten::div_) into one call: the self time is unchanged, the inner call is not counted.
            if kids[j] == 1 and nid[first[j]] == k:
                count[k] -= 1
                total[k] -= dur[first[j]]
        d = dur[i]
        if top >= 0:
            child[top] += d
            if not kids[top]:
                first[top] = i
            kids[top] += 1
        ends.append(start + d)
        opened.append(i)
        top = i
        k = nid[i]
        count[k] += 1
        total[k] += d
    while len(opened) > 1:
        j = opened.pop()
        k = nid[j]
        own = dur[j] - child[j]
        self_t[k] += 0.0 if own < 0.0 else own
        if kids[j] == 1 and nid[first[j]] == k:
            count[k] -= 1
            total[k] -= dur[first[j]]


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


def _gpu(s: TraceSummary, gpu_streams: dict[tuple[t.Any, t.Any], _GpuQueue], graph_corr: set[int], base: float) -> None:
    if not gpu_streams:
        return
    by_device: dict[t.Any, list[_GpuQueue]] = {}
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
        for a, b in merged_intervals((q.ts, q.dur) for q in streams):
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


def _graph_steps(s: TraceSummary, launch_ts: array, base: float) -> None:
    """Mark the steps whose CPU span holds a ``cudaGraphLaunch``: they ran as CUDA-graph replays."""
    if not launch_ts or not s.steps:
        return
    launches = sorted(launch_ts)
    for rec in s.steps:
        a = rec["start_us"] + base
        n = bisect.bisect_left(launches, a + rec["dur_us"]) - bisect.bisect_left(launches, a)
        rec["graph_launches"] = n


def _is_comm_op(name: str, comm_ops: dict[str, list[tuple[float, float]]], not_comm: set[str]) -> bool:
    if kernel_category(name) == "communication":
        comm_ops[name] = []
        return True
    not_comm.add(name)
    return False


def _cpu_collectives(s: TraceSummary, comm_ops: dict[str, list[tuple[float, float]]]) -> list[float]:
    """Durations, in time order, of the CPU collective ops that do the work themselves (self time at
    least 90% of their total: ``_C::shm_allreduce``, not a wrapper around it), for traces without GPU kernels."""
    events: list[tuple[float, float]] = []
    for name, calls in comm_ops.items():
        row = s.ops.get(name)
        if row and row[2] and row[3] >= 0.9 * row[2]:
            events.extend(calls)
    return [dur for _ts, dur in sorted(events)]
