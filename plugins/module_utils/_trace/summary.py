# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: the summary model of one trace (or a merge of several) and its JSON form."""

from __future__ import annotations

import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.classify import (
    KERNEL_CATEGORIES,
    kernel_category,
    short_name,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.stats import duration_stats, rnd


class TraceSummary:
    """What one trace (or a merge of several) says. ``to_dict()`` gives the module's ``summary``."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.kind = "trace"
        self.rank: int | None = None
        self.name_rank: int | None = None  # the rank in the file name (vLLM's conventions), when it has one
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
        self.collective_durs: t.Sequence[float] = ()  # collective kernels' durations in time order
        self.cpu_collective_durs: t.Sequence[float] = ()  # CPU collective ops (no GPU), in time order
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
        graph = [s for s in working if s.get("graph_launches")]
        if graph:
            out["graph_replay_steps"] = len(graph)
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
                "total_us": rnd(cats[c][1]),
                "share_pct": rnd(100.0 * cats[c][1] / total, 2) if total else 0.0,
            }
            for c in KERNEL_CATEGORIES
        ]

    def timeline(self, limit: int = 4000) -> list[dict[str, t.Any]]:
        rows = sorted(self.steps, key=lambda s: s["start_us"])[:limit]
        keys = ("start_us", "dur_us", "ctx_tokens", "gen_tokens", "gpu_start_us", "gpu_dur_us", "gpu_busy_us")
        out = []
        for s in rows:
            row = {k: (rnd(s[k]) if isinstance(s.get(k), float) else s.get(k)) for k in keys}
            row["phase"] = _phase(s, self.step_source)
            row["name"] = s["name"]
            if s.get("graph_launches"):
                row["graph_replay"] = True
            out.append(row)
        return out

    def to_dict(self, top: int = 15) -> dict[str, t.Any]:
        total_kernel = sum(row[2] for row in self.kernels.values())
        ops = sorted(self.ops.items(), key=lambda kv: (-kv[1][3], kv[0]))[:top]
        kernels = sorted(self.kernels.items(), key=lambda kv: (-kv[1][2], kv[0]))[:top]
        busy_pct = (
            rnd(100.0 * self.gpu_busy_us / self.gpu_window_us, 2)
            if self.gpu_busy_us is not None and self.gpu_window_us
            else None
        )
        gpu = None
        if self.gpu_busy_us is not None:
            gpu = {
                "busy_us": rnd(self.gpu_busy_us),
                "window_us": rnd(self.gpu_window_us),
                "busy_pct": busy_pct,
                "active_span_us": rnd(self.gpu_span_us),
                "busy_pct_of_active_span": rnd(100.0 * self.gpu_busy_us / self.gpu_span_us, 2)
                if self.gpu_span_us
                else None,
                "kernel_time_us": rnd(total_kernel),
                "cuda_graph_kernels": self.graph_kernels,
                "cuda_graph_kernel_us": rnd(self.graph_kernel_us),
                "cuda_graph_kernels_per_launch": rnd(self.graph_kernels / self.cuda_graph_launches, 1)
                if self.cuda_graph_launches
                else None,
                "cuda_graph_us_per_launch": rnd(self.graph_kernel_us / self.cuda_graph_launches)
                if self.cuda_graph_launches
                else None,
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
            "window_us": rnd(self.window_us),
            "steps": self.steps_dict(),
            "layers": self.layers,
            "top_ops": [
                {
                    "name": name,
                    "cat": cat,
                    "count": count,
                    "total_us": rnd(total),
                    "self_us": rnd(self_us),
                }
                for name, (cat, count, total, self_us) in ops
            ],
            "top_kernels": [
                {
                    "name": name,
                    "short_name": short_name(name),
                    "category": kernel_category(name, cat),
                    "count": count,
                    "total_us": rnd(total),
                    "mean_us": rnd(total / count) if count else None,
                    "share_pct": rnd(100.0 * total / total_kernel, 2) if total_kernel else None,
                }
                for name, (cat, count, total) in kernels
            ],
            "kernel_categories": self.kernel_categories() if self.kernels else [],
            "top_modules": [
                {"name": name, "count": int(count), "total_us": rnd(total), "mean_us": rnd(total / count)}
                for name, (count, total) in sorted(self.modules.items(), key=lambda kv: (-kv[1][1], kv[0]))[:top]
            ],
            "top_annotations": [
                {"name": name, "count": int(count), "total_us": rnd(total)}
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


def device_info(props: t.Any) -> dict[str, t.Any] | None:
    if not isinstance(props, list) or not props or not isinstance(props[0], dict):
        return None
    first = props[0]
    out = {
        "name": first.get("name"),
        "count": len(props),
        "total_memory_gib": rnd(first["totalGlobalMem"] / 2**30, 1)
        if isinstance(first.get("totalGlobalMem"), (int, float))
        else None,
        "sms": first.get("numSms"),
    }
    if "computeMajor" in first:
        out["compute_capability"] = f"{first.get('computeMajor')}.{first.get('computeMinor')}"
    return out
