# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: compare a candidate capture with a baseline, and a regression gate.

Either side is a trace file, a capture directory, or a ``summary.json`` that trace_summary wrote.
The comparison covers step times (all steps p50/p90, prefill and decode p50), kernel time, the
kernel categories' shares, the communication share, GPU busy, and the top kernels (new, gone,
changed). The gate fails on the thresholds given; every failure names the figure, both values
and the limit.
"""

from __future__ import annotations

import json
import os
import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.analyze import analyze
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.reader import TraceError
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.stats import rnd

# threshold name -> (figure key, kind): "pct" = relative increase in percent, "pts" = increase in percentage points
THRESHOLDS: dict[str, tuple[str, str]] = {
    "step_p50_pct": ("step_p50_us", "pct"),
    "step_p90_pct": ("step_p90_us", "pct"),
    "prefill_p50_pct": ("prefill_p50_us", "pct"),
    "decode_p50_pct": ("decode_p50_us", "pct"),
    "decode_p90_pct": ("decode_p90_us", "pct"),
    "kernel_time_pct": ("kernel_time_us", "pct"),
    "compute_time_pct": ("compute_time_us", "pct"),
    "communication_share_pts": ("communication_pct", "pts"),
    "gpu_busy_drop_pts": ("gpu_busy_pct", "drop"),
}
# Compute time (kernel time outside collectives) is the gate's steadiest figure on several ranks: a rank
# that waits in all-reduce for a slower peer has kernel time that measures the peer, not itself.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "step_p50_pct": 10.0,
    "step_p90_pct": 20.0,
    "kernel_time_pct": 10.0,
    "compute_time_pct": 10.0,
}


def load_result(path: str, top: int = 15) -> dict[str, t.Any]:
    """A trace_summary result from a summary.json, or by analysing a trace file or directory."""
    if os.path.isfile(path) and path.endswith(".json") and not path.endswith(".trace.json"):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise TraceError(f"{path}: not a readable summary.json ({exc})") from None
        if not isinstance(data, dict) or "summary" not in data:
            raise TraceError(f"{path}: JSON without a 'summary' key, so not a trace_summary summary.json")
        return data
    return analyze(path, top=max(top, 50), exclude=None)


def figures(summary: dict[str, t.Any]) -> dict[str, t.Any]:
    """The figures compared, from one ``summary`` dict (trace_summary's)."""
    steps = summary.get("steps") or {}
    cats = {c["category"]: c for c in summary.get("kernel_categories") or []}
    gpu = summary.get("gpu") or {}
    kernel_us = sum(c["total_us"] or 0.0 for c in cats.values()) if cats else None
    comm = cats.get("communication")
    kernel_time = gpu.get("kernel_time_us", kernel_us)
    comm_us = comm["total_us"] if comm else 0.0
    return {
        "steps": steps.get("steps"),
        "step_p50_us": (steps.get("all") or {}).get("p50_us"),
        "step_p90_us": (steps.get("all") or {}).get("p90_us"),
        "prefill_p50_us": (steps.get("prefill") or {}).get("p50_us"),
        "decode_p50_us": (steps.get("decode") or {}).get("p50_us"),
        "decode_p90_us": (steps.get("decode") or {}).get("p90_us"),
        "kernel_time_us": kernel_time,
        "compute_time_us": rnd(kernel_time - comm_us) if kernel_time is not None else None,
        "communication_pct": comm["share_pct"] if comm else None,
        "gpu_busy_pct": summary.get("gpu_busy_pct"),
        "categories": {name: c["share_pct"] for name, c in cats.items()},
        "kernels": {k["name"]: k for k in summary.get("top_kernels") or []},
    }


def _delta(base: float | None, cand: float | None) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {"baseline": base, "candidate": cand, "delta": None, "delta_pct": None}
    if base is not None and cand is not None:
        out["delta"] = rnd(cand - base)
        out["delta_pct"] = rnd(100.0 * (cand - base) / base, 2) if base else None
    return out


def compare(baseline: dict[str, t.Any], candidate: dict[str, t.Any], top: int = 10) -> dict[str, t.Any]:
    """Deltas between two trace_summary ``summary`` dicts."""
    b, c = figures(baseline), figures(candidate)
    keys = (
        "steps",
        "step_p50_us",
        "step_p90_us",
        "prefill_p50_us",
        "decode_p50_us",
        "decode_p90_us",
        "kernel_time_us",
        "compute_time_us",
        "communication_pct",
        "gpu_busy_pct",
    )
    out: dict[str, t.Any] = {"figures": {k: _delta(b[k], c[k]) for k in keys}}
    out["categories"] = [
        dict(_delta(b["categories"].get(name), c["categories"].get(name)), category=name)
        for name in sorted(set(b["categories"]) | set(c["categories"]))
    ]
    new = [k for k in c["kernels"] if k not in b["kernels"]]
    gone = [k for k in b["kernels"] if k not in c["kernels"]]
    changed = []
    for name in b["kernels"].keys() & c["kernels"].keys():
        kb, kc = b["kernels"][name], c["kernels"][name]
        changed.append(dict(_delta(kb["total_us"], kc["total_us"]), name=name, short_name=kc["short_name"]))
    changed.sort(key=lambda row: -abs(row["delta"] or 0.0))

    def brief(row: dict[str, t.Any]) -> dict[str, t.Any]:
        return {k: row[k] for k in ("name", "short_name", "category", "count", "total_us", "share_pct")}

    out["kernels"] = {
        "new": [brief(c["kernels"][k]) for k in new][:top],
        "gone": [brief(b["kernels"][k]) for k in gone][:top],
        "changed": changed[:top],
    }
    return out


def gate(comparison: dict[str, t.Any], thresholds: t.Mapping[str, float | None]) -> list[str]:
    """One sentence per threshold the candidate exceeds (empty: the gate passes)."""
    failures = []
    for name, limit in sorted(thresholds.items()):
        if limit is None:
            continue
        if name not in THRESHOLDS:
            raise TraceError(f"unknown threshold {name!r}; known: {', '.join(sorted(THRESHOLDS))}")
        key, kind = THRESHOLDS[name]
        fig = comparison["figures"][key]
        base, cand = fig["baseline"], fig["candidate"]
        if base is None or cand is None:
            continue
        label = key.replace("_us", "").replace("_pct", "").replace("_", " ")
        if kind == "pct" and fig["delta_pct"] is not None and fig["delta_pct"] > limit:
            failures.append(
                f"{label} {base / 1000:.3f} ms -> {cand / 1000:.3f} ms ({fig['delta_pct']:+.1f}%, limit +{limit:g}%)"
            )
        elif kind == "pts" and cand - base > limit:
            failures.append(f"{label} {base:.2f}% -> {cand:.2f}% ({cand - base:+.2f} points, limit +{limit:g})")
        elif kind == "drop" and base - cand > limit:
            failures.append(f"{label} {base:.2f}% -> {cand:.2f}% ({cand - base:+.2f} points, limit -{limit:g})")
    return failures


def compare_paths(
    baseline: str, candidate: str, thresholds: t.Mapping[str, float | None], top: int = 10
) -> dict[str, t.Any]:
    """Compare two captures (files, directories or summary.json); per rank too when both have the same ranks."""
    base_res, cand_res = load_result(baseline, top), load_result(candidate, top)
    result = compare(base_res["summary"], cand_res["summary"], top)
    result.update(baseline=baseline, candidate=candidate)
    result["ranks"] = _rank_deltas(base_res.get("cross_rank"), cand_res.get("cross_rank"))
    result["failures"] = gate(result, thresholds)
    result["straggler"] = {
        "baseline": (base_res.get("cross_rank") or {}).get("straggler_line"),
        "candidate": (cand_res.get("cross_rank") or {}).get("straggler_line"),
    }
    return result


def _rank_deltas(base: dict[str, t.Any] | None, cand: dict[str, t.Any] | None) -> list[dict[str, t.Any]]:
    if not base or not cand:
        return []
    cand_rows = {row["rank"]: row for row in cand["rows"]}
    out = []
    for row in base["rows"]:
        other = cand_rows.get(row["rank"])
        if other is None:
            continue
        out.append(
            {
                "rank": row["rank"],
                **{
                    key: _delta(row.get(key), other.get(key))
                    for key in ("step_p50_us", "kernel_us", "compute_us", "collective_wait_us", "communication_pct")
                },
            }
        )
    return out


def parse_thresholds(given: t.Mapping[str, t.Any] | None) -> dict[str, float | None]:
    """The gate's limits from a user's dict (None: the defaults); a sentence for an unknown key or a non-number."""
    if given is None:
        return dict(DEFAULT_THRESHOLDS)
    unknown = sorted(set(given) - set(THRESHOLDS))
    if unknown:
        raise TraceError(f"unknown thresholds {', '.join(unknown)}; known: {', '.join(sorted(THRESHOLDS))}")
    out: dict[str, float | None] = {}
    for key, value in given.items():
        try:
            out[key] = None if value is None else float(value)
        except (TypeError, ValueError):
            raise TraceError(f"threshold {key} must be a number, not {value!r}") from None
    return out


def compare_hosts(
    result: dict[str, t.Any], baseline_host: str, thresholds: t.Mapping[str, float | None], top: int = 10
) -> dict[str, t.Any]:
    """Every host of an ``analyze()`` result against ``baseline_host`` (each host's latest capture).

    Raises ``TraceError`` when the baseline host is not among the hosts.
    """
    hosts = {h["host"]: h for h in result["hosts"]}
    if baseline_host not in hosts:
        raise TraceError(
            f"{result['input']}: no host directory {baseline_host!r} to compare against "
            f"(hosts: {', '.join(sorted(hosts))})"
        )
    base = hosts[baseline_host]
    out = []
    for name, host in sorted(hosts.items()):
        if name == baseline_host:
            continue
        cmp = compare(base["summary"], host["summary"], top)
        cmp["ranks"] = _rank_deltas(base.get("cross_rank"), host.get("cross_rank"))
        cmp["failures"] = gate(cmp, thresholds)
        cmp.update(host=name, baseline=baseline_host)
        cmp["line"] = baseline_line(cmp)
        out.append(cmp)
    return {
        "baseline_host": baseline_host,
        "thresholds": dict(thresholds),
        "hosts": out,
        "failures": [f"{h['host']}: {f}" for h in out for f in h["failures"]],
    }


def baseline_view(
    result: dict[str, t.Any], baseline_host: str, thresholds: t.Mapping[str, float | None], top: int = 10
) -> dict[str, t.Any]:
    """``compare_hosts`` for a report: a baseline host without a capture in this run is said in ``error``
    (the report is still written; a gate reading the view fails on the error) instead of raised."""
    try:
        view = compare_hosts(result, baseline_host, thresholds, top)
        view["error"] = None
    except TraceError as exc:
        view = {"baseline_host": baseline_host, "thresholds": dict(thresholds), "hosts": [], "failures": []}
        view["error"] = str(exc)
    # What a job's artifacts keep (set_stats): the lines and the verdict, not every figure and kernel.
    view["brief"] = {
        "host": baseline_host,
        "error": view["error"],
        "failures": view["failures"],
        "lines": {cmp["host"]: cmp["line"] for cmp in view["hosts"]},
    }
    return view


def compare_fleet(path: str, baseline_host: str, thresholds: t.Mapping[str, float | None], top: int = 10) -> dict:
    """Compare every host of a capture root (one sub-directory per host) with ``baseline_host``."""
    return compare_hosts(analyze(path, top=max(top, 50), fleet="always"), baseline_host, thresholds, top)


# The figures of a host's line against the baseline, in the order a person reads them.
LINE_FIGURES = (
    ("step p50", "step_p50_us"),
    ("decode p90", "decode_p90_us"),
    ("kernel time", "kernel_time_us"),
    ("compute", "compute_time_us"),
    ("communication", "communication_pct"),
    ("GPU busy", "gpu_busy_pct"),
)


def _change(key: str, fig: dict[str, t.Any]) -> str:
    base, cand = fig["baseline"], fig["candidate"]
    if key.endswith("_pct"):  # shares: the change in percentage points
        return f"{base:.1f}% -> {cand:.1f}% ({cand - base:+.1f} pts)"
    rel = "" if fig["delta_pct"] is None else f" ({fig['delta_pct']:+.1f}%)"
    return f"{_ms(base)} -> {_ms(cand)}{rel}"


# The report's table against the baseline host: one column per figure.
TABLE_FIGURES = (
    ("step p50", "step_p50_us"),
    ("step p90", "step_p90_us"),
    ("decode p50", "decode_p50_us"),
    ("kernel time", "kernel_time_us"),
    ("compute", "compute_time_us"),
    ("communication", "communication_pct"),
    ("GPU busy", "gpu_busy_pct"),
)


def baseline_table(view: dict[str, t.Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the report's table: each host's figures against the baseline host's, and the verdict."""
    header = ["host", *(label for label, _key in TABLE_FIGURES), "limits"]
    rows = []
    for cmp in view["hosts"]:
        cells = [cmp["host"]]
        for _label, key in TABLE_FIGURES:
            fig = cmp["figures"][key]
            known = fig["baseline"] is not None and fig["candidate"] is not None
            cells.append(_change(key, fig) if known else "\u2013")
        cells.append(f"{len(cmp['failures'])} over" if cmp["failures"] else "within")
        rows.append(cells)
    return header, rows


def baseline_line(cmp: dict[str, t.Any]) -> str:
    """One sentence: a host's figures against the baseline host's, and the gate's verdict."""
    parts = [
        f"{label} {_change(key, cmp['figures'][key])}"
        for label, key in LINE_FIGURES
        if cmp["figures"][key]["baseline"] is not None and cmp["figures"][key]["candidate"] is not None
    ]
    verdict = "over the limits: " + "; ".join(cmp["failures"]) if cmp["failures"] else "within the limits"
    return f"against {cmp['baseline']}: " + (", ".join(parts) or "no figures in common") + f"; {verdict}"


# ---- report -------------------------------------------------------------------------------------


def _ms(us: float | None) -> str:
    return "\u2013" if us is None else f"{us / 1000:.3f} ms"


def _fig(key: str, value: float | None) -> str:
    if value is None:
        return "\u2013"
    if key.endswith("_us"):
        return _ms(value)
    if key.endswith("_pct"):
        return f"{value:.2f}%"
    return str(value)


def render_markdown(result: dict[str, t.Any]) -> str:
    """Side by side: baseline, candidate, delta; then categories, kernels and the gate's verdict."""
    sections = result.get("hosts", [result])
    out = ["# Trace comparison", ""]
    for cmp in sections:
        title = f"{cmp.get('host')} against {cmp['baseline']}" if "host" in cmp else ""
        if title:
            out += [f"## {title}", ""]
        else:
            out += [f"Baseline: `{cmp['baseline']}`", "", f"Candidate: `{cmp['candidate']}`", ""]
        verdict = "FAILED: " + "; ".join(cmp["failures"]) if cmp["failures"] else "passed"
        out += [f"**Gate {verdict}**", "", "| figure | baseline | candidate | delta |", "| --- | --- | --- | --- |"]
        for key, fig in cmp["figures"].items():
            delta = "\u2013" if fig["delta_pct"] is None else f"{fig['delta_pct']:+.1f}%"
            out.append(f"| {key} | {_fig(key, fig['baseline'])} | {_fig(key, fig['candidate'])} | {delta} |")
        out += ["", "| kernel category share | baseline | candidate |", "| --- | --- | --- |"]
        out += [
            f"| {c['category']} | {_fig('_pct', c['baseline'])} | {_fig('_pct', c['candidate'])} |"
            for c in cmp["categories"]
        ]
        kern = cmp["kernels"]
        out += ["", "| kernel | change | baseline | candidate |", "| --- | --- | --- | --- |"]
        out += [f"| {k['short_name']} | new | \u2013 | {_ms(k['total_us'])} |" for k in kern["new"]]
        out += [f"| {k['short_name']} | gone | {_ms(k['total_us'])} | \u2013 |" for k in kern["gone"]]
        out += [
            f"| {k['short_name']} | {k['delta_pct']:+.1f}% | {_ms(k['baseline'])} | {_ms(k['candidate'])} |"
            for k in kern["changed"]
            if k["delta_pct"] is not None
        ]
        if cmp.get("ranks"):
            out += [
                "",
                "| rank | step p50 | kernel time | compute | collective wait |",
                "| --- | --- | --- | --- | --- |",
            ]
            for r in cmp["ranks"]:
                cells = [
                    f"{_ms(r[k]['baseline'])} -> {_ms(r[k]['candidate'])}"
                    for k in ("step_p50_us", "kernel_us", "compute_us", "collective_wait_us")
                ]
                out.append(f"| {r['rank']} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out) + "\n"
