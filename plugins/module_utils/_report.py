# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: render trace_summary results as a headline, Markdown and HTML.

Pure Python, standard library only. The HTML is one self-contained file: inline CSS and
inline SVG pictures drawn from the data (a timeline of engine steps, step durations, the
share of GPU time per kernel category, a fleet comparison). No scripts, no external assets,
and no timestamps, so the same input renders byte-identical output (``changed`` stays honest).

``result`` is the dict the module builds:
  {"path": str, "summary": <TraceSummary.to_dict()>, "hosts": [{"host", "summary", "traces",
   "frontends", "nsys"}], "errors": [str], "fleet": bool}
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.nsys import nsys_headline

NA = "\u2013"  # en dash: a value that is not known
# per-rank chart: compute, the collectives' own time, waiting in collectives for the slowest rank
RANK_COLORS = {"compute": "#2f9e44", "collective": "#1971c2", "wait": "#e03131"}
PHASE_COLORS = {"prefill": "#d9480f", "decode": "#1971c2", "empty": "#adb5bd", "step": "#2f9e44"}
CATEGORY_COLORS = {
    "GEMM": "#1971c2",
    "attention": "#d9480f",
    "norm": "#2f9e44",
    "elementwise": "#f08c00",
    "memcpy/memset": "#7048e8",
    "communication": "#c2255c",
    "other": "#868e96",
}


# --------------------------------------------------------------------------------------------
# formatting helpers
# --------------------------------------------------------------------------------------------


def ms(us: float | None, digits: int = 2) -> str:
    return NA if us is None else f"{us / 1000.0:.{digits}f} ms"


def usf(us: float | None) -> str:
    return NA if us is None else f"{us:,.1f} µs"


def pct(value: float | None) -> str:
    return NA if value is None else f"{value:.1f}%"


def _md(text: t.Any, limit: int = 90) -> str:
    s = str(text if text is not None else NA).replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _h(text: t.Any) -> str:
    # what html.escape(..., quote=True) does (the html package imports its entity tables: start-up time)
    s = str(text if text is not None else NA)
    return (
        s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#x27;")
    )


def _top_names(summary: dict[str, t.Any], n: int = 3) -> tuple[str, list[str]]:
    """('kernels'|'ops', ["name share", ...]) for the headline and the fleet table."""
    if summary.get("top_kernels"):
        return "kernels", [f"{k['short_name']} {pct(k['share_pct'])}" for k in summary["top_kernels"][:n]]
    if summary.get("top_ops"):
        return "ops", [f"{o['name']} {ms(o['self_us'])} self" for o in summary["top_ops"][:n]]
    return "ops", []


def steps_line(steps: dict[str, t.Any] | None) -> str:
    if not steps:
        return "no vLLM engine steps"
    if steps.get("source") != "vllm":
        a = steps["all"]
        return f"{steps['steps']} steps, mean {ms(a['mean_us'])}, p50 {ms(a['p50_us'])}, p90 {ms(a['p90_us'])}"
    parts = [
        f"{steps['steps']} steps ({steps['prefill_steps']} prefill / {steps['prefill_tokens']} tok, "
        f"{steps['decode_steps']} decode / {steps['decode_tokens']} tok"
        + (f", {steps['empty_steps']} empty" if steps.get("empty_steps") else "")
        + ")"
    ]
    if steps["prefill"]["count"]:
        parts.append(f"prefill {ms(steps['prefill']['mean_us'])} mean")
    if steps["decode"]["count"]:
        d = steps["decode"]
        parts.append(f"decode {ms(d['mean_us'])} mean, p50 {ms(d['p50_us'])}, p90 {ms(d['p90_us'])}")
    return "; ".join(parts)


def headline(result: dict[str, t.Any], report_path: str | None = None) -> str:
    """One line a person reads first (the role prints it after each fetch)."""
    summary = result["summary"]
    hosts = result.get("hosts") or []
    if result.get("nsys_summary") and not summary.get("files"):
        # An nsys capture (stats tables, no Kineto trace): its own headline, not empty torch figures.
        return nsys_headline(result["nsys_summary"]) + (f"; report: {report_path}" if report_path else "")
    lead = f"{len(hosts)} hosts: " if result.get("fleet") else ""
    kind, names = _top_names(summary)
    text = lead + steps_line(summary.get("steps"))
    if summary.get("layers"):
        lay = summary["layers"]
        text += f"; {lay['count']} layers" + (" (estimated)" if lay.get("estimated") else "")
    if summary.get("gpu_busy_pct") is not None:
        text += f"; GPU busy {pct(summary['gpu_busy_pct'])}"
    if summary.get("cuda_graph_launches"):
        text += f"; {summary['cuda_graph_launches']} cudaGraphLaunch"
    if names:
        text += f"; top {kind}: " + ", ".join(names)
    if result.get("nsys_reports"):
        text += f"; {len(result['nsys_reports'])} nsys stats tables"
    captures = len(hosts[0].get("captures") or []) if len(hosts) == 1 else 0
    if captures > 1:
        text += f"; latest of {captures} captures"
    cross = result.get("cross_rank")
    if cross:
        text += f"; {cross['ranks']} ranks"
        if cross.get("straggler_line"):
            text += f"; {cross['straggler_line']}"
    base = result.get("baseline")
    if base:
        text += "; " + baseline_summary(base)
    if report_path:
        text += f"; report: {report_path}"
    return text


def baseline_summary(base: dict[str, t.Any]) -> str:
    """The headline's part for the comparison with the baseline host."""
    if base.get("error"):
        return f"no comparison with baseline {base['baseline_host']}: {base['error']}"
    over = sorted({f.split(":", 1)[0] for f in base["failures"]})
    verdict = f"{len(over)} over the limits ({', '.join(over)})" if over else "all within the limits"
    return f"{len(base['hosts'])} hosts against baseline {base['baseline_host']}: {verdict}"


def _baseline_table(base: dict[str, t.Any]) -> tuple[list[str], list[list[str]]]:
    from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.compare import (  # noqa: PLC0415
        baseline_table,  # here: a summary without a baseline host does not need the comparison's module
    )

    return baseline_table(base)


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _kernel_rows(kernels: list[dict]) -> list[list]:
    """Table rows of the top GPU kernels, shared by summary.md and report.html."""
    return [
        [k["short_name"], k["category"], k["count"], ms(k["total_us"], 3), usf(k["mean_us"]), pct(k["share_pct"])]
        for k in kernels
    ]


def _op_rows(ops: list[dict]) -> list[list]:
    """Table rows of the top CPU ops, shared by summary.md and report.html."""
    return [[o["name"], o["cat"], o["count"], ms(o["total_us"], 3), ms(o["self_us"], 3)] for o in ops]


def _md_table(header: list[str], rows: list[list[t.Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _column in header) + "|"]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _md_summary(s: dict[str, t.Any], level: str = "##") -> list[str]:
    out: list[str] = []
    facts = [
        ("kind", s.get("kind") + (f" (rank {s['rank']} of {s['world_size']})" if s.get("rank") is not None else "")),
        ("vLLM", s.get("vllm_version") or NA),
        ("device", (s.get("device") or {}).get("name") or "CPU only (no GPU events)"),
        ("with stack", "yes" if s.get("with_stack") else "no"),
        ("profiled window", ms(s.get("window_us"))),
        ("events", f"{s.get('events', 0):,}"),
        ("GPU busy", pct(s.get("gpu_busy_pct"))),
        ("cudaGraphLaunch calls", s.get("cuda_graph_launches", 0)),
    ]
    out += [f"- **{k}**: {_md(v)}" for k, v in facts] + [""]
    steps = s.get("steps")
    out += [f"{level} Engine steps", "", steps_line(steps), ""]
    if steps:
        rows = []
        for label, key in (("prefill", "prefill"), ("decode", "decode"), ("all steps", "all")):
            st = steps.get(key)
            if st and st.get("count"):
                rows.append(
                    [label, st["count"], ms(st["total_us"]), ms(st["mean_us"]), ms(st["p50_us"]), ms(st["p90_us"])]
                )
        out += _md_table(["steps", "count", "total", "mean", "p50", "p90"], rows)
    lay = s.get("layers")
    out += [
        f"{level} Layers",
        "",
        (
            f"{lay['count']} decoder layers per forward"
            + (f" ({lay['module']})" if lay.get("module") else "")
            + f", from {lay['source']}"
            + (" — estimated" if lay.get("estimated") else "")
            if lay
            else "unknown (no stack capture and no vLLM attention ops)"
        ),
        "",
    ]
    if s.get("top_kernels"):
        out += [f"{level} Top GPU kernels", ""]
        out += _md_table(
            ["kernel", "category", "count", "total", "mean", "share"],
            _kernel_rows(s["top_kernels"]),
        )
        out += [f"{level} Kernel categories", ""]
        out += _md_table(
            ["category", "count", "total", "share"],
            [[c["category"], c["count"], ms(c["total_us"], 3), pct(c["share_pct"])] for c in s["kernel_categories"]],
        )
    if s.get("top_ops"):
        out += [f"{level} Top CPU ops (by self time)", ""]
        out += _md_table(
            ["op", "cat", "count", "total", "self"],
            _op_rows(s["top_ops"]),
        )
    if s.get("top_modules"):
        out += [f"{level} nn.Module time (stack capture)", ""]
        out += _md_table(
            ["module", "count", "total", "mean"],
            [[m["name"], m["count"], ms(m["total_us"], 3), usf(m["mean_us"])] for m in s["top_modules"]],
        )
    return out


def _md_nsys(tables: list[dict[str, t.Any]]) -> list[str]:
    out: list[str] = []
    for tab in tables:
        out += [f"### nsys stats: {tab.get('report') or 'report'} (`{_md(tab['label'], 120)}`)", ""]
        if not tab["rows"]:
            out += [f"_{_md(tab.get('note') or 'no rows', 200)}_", ""]
            continue
        out += _md_table(
            ["name", "time %", "total", "count", "avg"],
            [[r["name"], pct(r["time_pct"]), ms(r["total_us"], 3), r["count"], usf(r["avg_us"])] for r in tab["rows"]],
        )
    return out


def rank_table_rows(cross: dict[str, t.Any]) -> list[list[t.Any]]:
    """The per-rank table (Markdown and HTML share it)."""
    return [
        [
            row["rank"] if row["rank"] is not None else NA,
            row["steps"] if row["steps"] is not None else NA,
            ms(row["step_p50_us"], 3),
            ms(row["kernel_us"], 3),
            ms(row["compute_us"], 3),
            ms(row["collective_us"], 3),
            ms(row.get("collective_wait_us"), 3),
            pct(row["communication_pct"]),
            pct(row["gpu_busy_pct"]),
            row["cuda_graph_launches"],
        ]
        for row in cross["rows"]
    ]


RANK_HEADER = [
    "rank",
    "steps",
    "step p50",
    "kernel time",
    "compute",
    "collectives",
    "collective wait",
    "communication",
    "GPU busy",
    "cudaGraphLaunch",
]


def rank_header(cross: dict[str, t.Any]) -> list[str]:
    """On ranks without GPU kernels (vLLM's CPU backend) the busy figure is the engine steps' time."""
    if cross.get("basis") == "cpu_ops":
        return [RANK_HEADER[0], RANK_HEADER[1], RANK_HEADER[2], "step time", *RANK_HEADER[4:]]
    return RANK_HEADER


def _md_ranks(host: dict[str, t.Any]) -> list[str]:
    out: list[str] = []
    captures = host.get("captures") or []
    if len(captures) > 1:
        out += [f"{len(captures)} captures in this directory (never merged); the summary is the latest one.", ""]
        out += _md_table(
            ["capture", "ranks", "steps", "GPU busy", "straggler"],
            [
                [
                    ", ".join(c["files"]),
                    ", ".join(str(r) for r in c["ranks"]),
                    (c.get("steps") or {}).get("steps", NA),
                    pct(c["gpu_busy_pct"]),
                    (c.get("cross_rank") or {}).get("straggler", NA),
                ]
                for c in captures
            ],
        )
    cross = host.get("cross_rank")
    if cross:
        out += ["### Ranks", ""]
        out += _md_table(rank_header(cross), rank_table_rows(cross))
        out += [
            f"_{_md(cross['straggler_line'], 1000)}_" if cross.get("straggler_line") else "_no straggler_",
            "",
            f"Collectives matched by order across ranks: {cross['collectives_matched']} "
            f"(per rank {cross['collectives_per_rank']}); compute spread {ms(cross.get('compute_spread_us'), 3)}.",
            "",
        ]
    return out


def _md_nsys_summary(summary: dict[str, t.Any]) -> list[str]:
    out = ["### nsys capture", ""]
    out += _md_table(
        ["table", "report", "rows", "total", "top items"],
        [
            [
                sec["title"],
                sec["report"],
                sec["rows_total"],
                ms(sec["total_us"], 3),
                "; ".join(f"{r['name']} {pct(r['time_pct'])}" for r in sec["top"]),
            ]
            for sec in summary["sections"]
        ],
    )
    for empty in summary["empty_reports"]:
        out += [f"- {empty['title']}: {_md(empty['note'], 200)}"]
    out += [f"- {_md(note, 300)}" for note in summary["notes"]] + [""]
    return out


def fleet_rows(result: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    rows = []
    for host in result.get("hosts") or []:
        s = host["summary"]
        steps = s.get("steps") or {}
        kind, names = _top_names(s)
        rows.append(
            {
                "host": host["host"],
                "traces": len(host.get("traces") or []) + len(host.get("frontends") or []),
                "steps": steps.get("steps"),
                "prefill_steps": steps.get("prefill_steps"),
                "decode_steps": steps.get("decode_steps"),
                "prefill_mean_us": (steps.get("prefill") or {}).get("mean_us"),
                "decode_mean_us": (steps.get("decode") or {}).get("mean_us"),
                "decode_p50_us": (steps.get("decode") or {}).get("p50_us"),
                "decode_p90_us": (steps.get("decode") or {}).get("p90_us"),
                "gpu_busy_pct": s.get("gpu_busy_pct"),
                "device": (s.get("device") or {}).get("name"),
                "top": names,
                "top_kind": kind,
                "straggler": (host.get("cross_rank") or {}).get("straggler"),
            }
        )
    return rows


def render_markdown(result: dict[str, t.Any], top: int = 15) -> str:
    out = ["# Trace summary", "", f"**{_md(headline(result), 2000)}**", "", f"Input: `{result['input']}`", ""]
    if result.get("errors"):
        out += ["## Skipped inputs", ""] + [f"- {_md(e, 400)}" for e in result["errors"]] + [""]
    if result.get("fleet"):
        out += ["## Fleet", ""]
        out += _md_table(
            ["host", "steps", "prefill mean", "decode mean", "decode p50", "decode p90", "GPU busy", "top 3"],
            [
                [
                    r["host"],
                    r["steps"],
                    ms(r["prefill_mean_us"]),
                    ms(r["decode_mean_us"]),
                    ms(r["decode_p50_us"]),
                    ms(r["decode_p90_us"]),
                    pct(r["gpu_busy_pct"]),
                    "; ".join(r["top"]),
                ]
                for r in fleet_rows(result)
            ],
        )
        stragglers = [f"{r['host']}: rank {r['straggler']}" for r in fleet_rows(result) if r["straggler"] is not None]
        if stragglers:
            out += ["Stragglers (the rank the others wait for in collectives): " + "; ".join(stragglers), ""]
    base = result.get("baseline")
    if base:
        out += [f"## Against the baseline host {_md(base['baseline_host'])}", "", _md(baseline_summary(base), 2000), ""]
        if base["hosts"]:
            header, rows = _baseline_table(base)
            out += _md_table(header, rows)
        out += [f"- {_md(f, 400)}" for f in base["failures"]] + ([""] if base["failures"] else [])
    for host in result.get("hosts") or []:
        out += [f"## Host {_md(host['host'])}", ""]
        traces = (host.get("traces") or []) + (host.get("frontends") or [])
        out += (
            []
            if not traces
            else _md_table(
                ["trace", "kind", "rank", "events", "window", "steps"],
                [
                    [
                        tr["label"],
                        tr["kind"],
                        tr.get("rank"),
                        f"{tr['events']:,}",
                        ms(tr["window_us"]),
                        (tr.get("steps") or {}).get("steps", NA),
                    ]
                    for tr in traces
                ],
            )
        )
        out += _md_ranks(host)
        if host["summary"].get("files"):
            out += _md_summary(host["summary"], "###")
        elif host.get("nsys_summary"):
            out += _md_nsys_summary(host["nsys_summary"])
        out += _md_nsys(host.get("nsys") or [])
        for table in host.get("profiler_tables") or []:
            out += [f"### torch key_averages table `{_md(table['file'], 120)}` (top rows)", "", "```"]
            out += table["head"] + ["```", ""]
    out.append("_Times are from the trace (µs resolution); step times are the CPU span of each vLLM step annotation._")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# SVG pictures
# --------------------------------------------------------------------------------------------


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_h(title)}">'
        f"<title>{_h(title)}</title>" + "".join(body) + "</svg>"
    )


def _nice_ticks(vmax: float, n: int = 5) -> list[float]:
    if vmax <= 0:
        return [0.0]
    raw = vmax / n
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks, v = [], 0.0
    while v <= vmax * 1.0001:
        ticks.append(v)
        v += step
    return ticks


def svg_step_timeline(timeline: list[dict[str, t.Any]], width: int = 960) -> str:
    """Engine steps on the trace's time axis: CPU span per step, GPU span below when known."""
    if not timeline:
        return ""
    left, right, top = 70, 20, 24
    lane = 26
    has_gpu = any(r.get("gpu_dur_us") is not None for r in timeline)
    height = top + lane * (2 if has_gpu else 1) + 46
    t0 = min(min(r["start_us"], r.get("gpu_start_us") or r["start_us"]) for r in timeline)
    t1 = max(
        max(r["start_us"] + r["dur_us"], (r.get("gpu_start_us") or 0) + (r.get("gpu_dur_us") or 0)) for r in timeline
    )
    span = max(t1 - t0, 1e-9)
    plot_w = width - left - right

    def x(us: float) -> float:
        return left + (us - t0) / span * plot_w

    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    body.append(
        f'<text x="{left}" y="16" font-size="13" font-family="sans-serif" fill="#212529">Engine steps over time</text>'
    )
    lanes = [("CPU", "start_us", "dur_us")] + ([("GPU", "gpu_start_us", "gpu_dur_us")] if has_gpu else [])
    for li, (label, k_start, k_dur) in enumerate(lanes):
        y = top + li * lane
        body.append(
            f'<text x="{left - 8}" y="{y + 17}" font-size="12" text-anchor="end" font-family="sans-serif" '
            f'fill="#495057">{label}</text>'
        )
        body.append(f'<rect x="{left}" y="{y + 2}" width="{plot_w}" height="{lane - 6}" fill="#f1f3f5"/>')
        for r in timeline:
            if r.get(k_dur) is None:
                continue
            x0 = x(r[k_start])
            w = max(x(r[k_start] + r[k_dur]) - x0, 1.0)
            color = PHASE_COLORS.get(r.get("phase", "step"), "#2f9e44")
            tip = f"{r['name']}: {ms(r[k_dur], 3)}"
            body.append(
                f'<rect x="{x0:.2f}" y="{y + 4}" width="{w:.2f}" height="{lane - 10}" fill="{color}">'
                f"<title>{_h(tip)}</title></rect>"
            )
    axis_y = top + lane * len(lanes) + 4
    body.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#495057"/>')
    for tick in _nice_ticks(span / 1000.0):
        tx = left + tick * 1000.0 / span * plot_w
        body.append(f'<line x1="{tx:.2f}" y1="{axis_y}" x2="{tx:.2f}" y2="{axis_y + 4}" stroke="#495057"/>')
        body.append(
            f'<text x="{tx:.2f}" y="{axis_y + 16}" font-size="11" text-anchor="middle" font-family="sans-serif" '
            f'fill="#495057">{tick:g}</text>'
        )
    body.append(
        f'<text x="{left + plot_w}" y="{axis_y + 32}" font-size="11" text-anchor="end" font-family="sans-serif" '
        f'fill="#495057">ms since the first step</text>'
    )
    body += _legend(
        [(p, c) for p, c in PHASE_COLORS.items() if any(r.get("phase") == p for r in timeline)], left, axis_y + 32
    )
    return _svg(width, height, body, "Engine steps over time")


def svg_step_durations(timeline: list[dict[str, t.Any]], width: int = 960, height: int = 240) -> str:
    """One bar per step (its duration): prefill peaks and the decode floor."""
    if not timeline:
        return ""
    left, right, top, bottom = 70, 20, 26, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = max(r["dur_us"] for r in timeline) / 1000.0
    ticks = _nice_ticks(vmax, 4)
    ymax = max(ticks[-1], vmax, 1e-9)
    n = len(timeline)
    bw = plot_w / n
    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    body.append(
        f'<text x="{left}" y="16" font-size="13" font-family="sans-serif" fill="#212529">'
        "Step duration (ms), in order</text>"
    )
    for tick in ticks:
        ty = top + plot_h - tick / ymax * plot_h
        body.append(f'<line x1="{left}" y1="{ty:.2f}" x2="{left + plot_w}" y2="{ty:.2f}" stroke="#e9ecef"/>')
        body.append(
            f'<text x="{left - 6}" y="{ty + 4:.2f}" font-size="11" text-anchor="end" font-family="sans-serif" '
            f'fill="#495057">{tick:g}</text>'
        )
    for i, r in enumerate(timeline):
        h = r["dur_us"] / 1000.0 / ymax * plot_h
        color = PHASE_COLORS.get(r.get("phase", "step"), "#2f9e44")
        tip = f"#{i} {r['name']}: {ms(r['dur_us'], 3)}"
        body.append(
            f'<rect x="{left + i * bw + bw * 0.1:.2f}" y="{top + plot_h - h:.2f}" width="{max(bw * 0.8, 0.5):.2f}" '
            f'height="{max(h, 0.5):.2f}" fill="{color}"><title>{_h(tip)}</title></rect>'
        )
    body.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#495057"/>')
    body.append(
        f'<text x="{left + plot_w}" y="{height - 8}" font-size="11" text-anchor="end" font-family="sans-serif" '
        f'fill="#495057">{n} steps in order (empty ones included)</text>'
    )
    return _svg(width, height, body, "Step durations")


def _legend(items: list[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for label, color in items:
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{color}"/>')
        out.append(
            f'<text x="{x + 14:.1f}" y="{y:.1f}" font-size="11" font-family="sans-serif" fill="#212529">'
            f"{_h(label)}</text>"
        )
        x += 24 + 7 * len(label)
    return out


def svg_categories(categories: list[dict[str, t.Any]], width: int = 960) -> str:
    """Share of GPU kernel time per category: one stacked bar and a labelled row per category."""
    cats = [c for c in categories if c.get("total_us")]
    if not cats:
        return ""
    left, right = 130, 80
    row_h = 20
    height = 40 + 30 + row_h * len(cats) + 10
    plot_w = width - left - right
    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    body.append(
        f'<text x="{left}" y="16" font-size="13" font-family="sans-serif" fill="#212529">'
        "GPU kernel time by category</text>"
    )
    x = float(left)
    for c in cats:
        w = c["share_pct"] / 100.0 * plot_w
        body.append(
            f'<rect x="{x:.2f}" y="26" width="{max(w, 0.5):.2f}" height="22" fill="{CATEGORY_COLORS[c["category"]]}">'
            f"<title>{_h(c['category'])}: {pct(c['share_pct'])}</title></rect>"
        )
        x += w
    y = 70
    vmax = max(c["share_pct"] for c in cats) or 1.0
    for c in sorted(cats, key=lambda c: -c["share_pct"]):
        w = c["share_pct"] / vmax * plot_w
        body.append(
            f'<text x="{left - 8}" y="{y + 13}" font-size="12" text-anchor="end" font-family="sans-serif" '
            f'fill="#212529">{_h(c["category"])}</text>'
        )
        body.append(
            f'<rect x="{left}" y="{y + 2}" width="{max(w, 0.5):.2f}" height="{row_h - 6}" '
            f'fill="{CATEGORY_COLORS[c["category"]]}"/>'
        )
        body.append(
            f'<text x="{left + w + 6:.2f}" y="{y + 13}" font-size="12" font-family="sans-serif" fill="#212529">'
            f"{pct(c['share_pct'])}</text>"
        )
        y += row_h
    return _svg(width, height, body, "GPU kernel time by category")


def svg_fleet(rows: list[dict[str, t.Any]], width: int = 960) -> str:
    """Decode step mean per host (bars), GPU busy as text."""
    rows = [r for r in rows if r.get("decode_mean_us") is not None or r.get("gpu_busy_pct") is not None]
    if not rows:
        return ""
    left, right, row_h = 160, 160, 22
    height = 36 + row_h * len(rows) + 10
    plot_w = width - left - right
    vmax = max((r.get("decode_mean_us") or 0.0) for r in rows) or 1.0
    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    body.append(
        f'<text x="{left}" y="16" font-size="13" font-family="sans-serif" fill="#212529">'
        "Decode step mean per host</text>"
    )
    y = 28
    for r in rows:
        w = (r.get("decode_mean_us") or 0.0) / vmax * plot_w
        body.append(
            f'<text x="{left - 8}" y="{y + 14}" font-size="12" text-anchor="end" font-family="sans-serif" '
            f'fill="#212529">{_h(r["host"])}</text>'
        )
        body.append(f'<rect x="{left}" y="{y + 3}" width="{max(w, 0.5):.2f}" height="{row_h - 7}" fill="#1971c2"/>')
        label = ms(r.get("decode_mean_us")) + (
            f" · GPU busy {pct(r['gpu_busy_pct'])}" if r.get("gpu_busy_pct") is not None else ""
        )
        body.append(
            f'<text x="{left + w + 6:.2f}" y="{y + 14}" font-size="12" font-family="sans-serif" fill="#212529">'
            f"{_h(label)}</text>"
        )
        y += row_h
    return _svg(width, height, body, "Decode step mean per host")


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def svg_ranks(cross: dict[str, t.Any], width: int = 960) -> str:
    """Per-rank bars: compute, collective time (its own cost) and collective wait, in ms."""
    rows = cross["rows"]
    bar_h, gap, left = 22, 10, 90
    height = 30 + len(rows) * (bar_h + gap) + 30
    vmax = max(((r["kernel_us"] or 0.0) for r in rows), default=0.0) or 1.0
    scale = (width - left - 20) / vmax
    body: list[str] = []
    colors = tuple(RANK_COLORS.items())
    for i, row in enumerate(rows):
        y = 20 + i * (bar_h + gap)
        wait = row.get("collective_wait_us") or 0.0
        parts = (
            ("compute", row["compute_us"] or 0.0),
            ("collective", max((row["collective_us"] or 0.0) - wait, 0.0)),
            ("wait", wait),
        )
        x = float(left)
        body.append(f'<text x="4" y="{y + 15}" font-size="12">rank {_h(row["rank"])}</text>')
        for key, value in parts:
            w = value * scale
            color = RANK_COLORS[key]
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
                f"<title>rank {_h(row['rank'])} {key}: {ms(value, 3)}</title></rect>"
            )
            x += w
    body += _legend(list(colors), left, height - 12)
    return _svg(width, height, body, "Kernel time per rank: compute, collectives, waiting in collectives")


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px auto;max-width:1000px;
color:#212529;background:#fff;line-height:1.4}
h1{font-size:24px;margin:0 0 8px}h2{font-size:20px;border-bottom:2px solid #dee2e6;padding-bottom:4px;margin-top:32px}
h3{font-size:16px;margin-top:22px}
.headline{background:#e7f5ff;border-left:4px solid #1971c2;padding:10px 14px;font-size:15px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px;width:100%}
th,td{border:1px solid #dee2e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.facts{display:grid;grid-template-columns:repeat(4,1fr);gap:8px;margin:8px 0 12px}
.fact{background:#f8f9fa;border:1px solid #e9ecef;border-radius:6px;padding:8px}
.fact b{display:block;font-size:11px;color:#868e96;text-transform:uppercase;letter-spacing:.04em}
.note{color:#868e96;font-size:12px}.err{color:#c92a2a}
svg{display:block;margin:8px 0 16px;max-width:100%;height:auto}
code{background:#f1f3f5;padding:1px 4px;border-radius:3px}
"""


def _html_table(header: list[str], rows: list[list[t.Any]], numeric: t.Collection[int] = ()) -> str:
    head = "".join(f"<th>{_h(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{_h(c)}</td>' if i in numeric else f"<td>{_h(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_summary(s: dict[str, t.Any]) -> list[str]:
    out = []
    steps = s.get("steps")
    lay = s.get("layers")
    facts = [
        ("kind", s.get("kind") + (f" · rank {s['rank']}/{s['world_size']}" if s.get("rank") is not None else "")),
        ("vLLM", s.get("vllm_version") or NA),
        ("device", (s.get("device") or {}).get("name") or "CPU only"),
        ("stack capture", "yes" if s.get("with_stack") else "no"),
        ("profiled window", ms(s.get("window_us"))),
        ("GPU busy", pct(s.get("gpu_busy_pct"))),
        ("cudaGraphLaunch", s.get("cuda_graph_launches", 0)),
        ("layers", (f"{lay['count']}" + (" (estimated)" if lay.get("estimated") else "")) if lay else "unknown"),
    ]
    out.append(
        '<div class="facts">' + "".join(f'<div class="fact"><b>{_h(k)}</b>{_h(v)}</div>' for k, v in facts) + "</div>"
    )
    out.append(f"<h3>Engine steps</h3><p>{_h(steps_line(steps))}</p>")
    if steps:
        rows = []
        for label, key in (("prefill", "prefill"), ("decode", "decode"), ("all steps", "all")):
            st = steps.get(key)
            if st and st.get("count"):
                rows.append(
                    [label, st["count"], ms(st["total_us"]), ms(st["mean_us"]), ms(st["p50_us"]), ms(st["p90_us"])]
                )
        out.append(_html_table(["steps", "count", "total", "mean", "p50", "p90"], rows, numeric=(1, 2, 3, 4, 5)))
        out.append(svg_step_timeline(s.get("timeline") or []))
        out.append(svg_step_durations(s.get("timeline") or []))
    if lay:
        out.append(
            f"<p>Layers: <b>{_h(lay['count'])}</b>"
            + (f" \u00d7 <code>{_h(lay['module'])}</code>" if lay.get("module") else "")
            + f" — from {_h(lay['source'])}{' (estimated)' if lay.get('estimated') else ''}.</p>"
        )
    if s.get("top_kernels"):
        out.append("<h3>GPU kernels</h3>")
        out.append(svg_categories(s.get("kernel_categories") or []))
        out.append(
            _html_table(
                ["kernel", "category", "count", "total", "mean", "share"],
                _kernel_rows(s["top_kernels"]),
                numeric=(2, 3, 4, 5),
            )
        )
    if s.get("top_ops"):
        out.append("<h3>Top CPU ops (by self time)</h3>")
        out.append(
            _html_table(
                ["op", "category", "count", "total", "self"],
                _op_rows(s["top_ops"]),
                numeric=(2, 3, 4),
            )
        )
    if s.get("top_modules"):
        out.append("<h3>nn.Module time (stack capture)</h3>")
        out.append(
            _html_table(
                ["module", "count", "total", "mean"],
                [[m["name"], m["count"], ms(m["total_us"], 3), usf(m["mean_us"])] for m in s["top_modules"]],
                numeric=(1, 2, 3),
            )
        )
    return out


def render_html(result: dict[str, t.Any]) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Trace summary</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Trace summary</h1>",
        f'<p class="headline">{_h(headline(result))}</p>',
        f'<p class="note">Input: <code>{_h(result["input"])}</code></p>',
    ]
    if result.get("errors"):
        out.append(
            "<h2>Skipped inputs</h2><ul>" + "".join(f'<li class="err">{_h(e)}</li>' for e in result["errors"]) + "</ul>"
        )
    if result.get("fleet"):
        rows = fleet_rows(result)
        out.append("<h2>Fleet</h2>")
        out.append(svg_fleet(rows))
        out.append(
            _html_table(
                [
                    "host",
                    "steps",
                    "prefill mean",
                    "decode mean",
                    "decode p50",
                    "decode p90",
                    "GPU busy",
                    "device",
                    "top 3",
                ],
                [
                    [
                        r["host"],
                        r["steps"] if r["steps"] is not None else NA,
                        ms(r["prefill_mean_us"]),
                        ms(r["decode_mean_us"]),
                        ms(r["decode_p50_us"]),
                        ms(r["decode_p90_us"]),
                        pct(r["gpu_busy_pct"]),
                        r["device"] or "CPU",
                        "; ".join(r["top"]),
                    ]
                    for r in rows
                ],
                numeric=(1, 2, 3, 4, 5, 6),
            )
        )
    base = result.get("baseline")
    if base:
        out.append(f"<h2>Against the baseline host {_h(base['baseline_host'])}</h2>")
        out.append(f'<p class="headline">{_h(baseline_summary(base))}</p>')
        if base["hosts"]:
            header, rows = _baseline_table(base)
            out.append(_html_table(header, rows, numeric=range(1, len(header) - 1)))
        if base["failures"]:
            out.append("<ul>" + "".join(f'<li class="err">{_h(f)}</li>' for f in base["failures"]) + "</ul>")
    for host in result.get("hosts") or []:
        out.append(f"<h2>Host {_h(host['host'])}</h2>")
        traces = (host.get("traces") or []) + (host.get("frontends") or [])
        if traces:
            out.append(
                _html_table(
                    ["trace", "kind", "rank", "events", "window", "steps"],
                    [
                        [
                            tr["label"],
                            tr["kind"],
                            tr.get("rank") if tr.get("rank") is not None else NA,
                            f"{tr['events']:,}",
                            ms(tr["window_us"]),
                            (tr.get("steps") or {}).get("steps", NA),
                        ]
                        for tr in traces
                    ],
                    numeric=(3, 4, 5),
                )
            )
        cross = host.get("cross_rank")
        if cross:
            out.append("<h3>Ranks</h3>")
            out.append(svg_ranks(cross))
            out.append(_html_table(rank_header(cross), rank_table_rows(cross), numeric=(1, 2, 3, 4, 5, 6, 7, 8, 9)))
            if cross.get("straggler_line"):
                out.append(f'<p class="headline">{_h(cross["straggler_line"])}</p>')
        if traces:
            out += _html_summary(host["summary"])
        elif host.get("nsys_summary"):
            out.append("<h3>nsys capture</h3>")
            out.append("".join(f"<p>{_h(line)}</p>" for line in _md_nsys_summary(host["nsys_summary"])[2:] if line))
        for tab in host.get("nsys") or []:
            out.append(f"<h3>nsys stats: {_h(tab.get('report') or 'report')} <code>{_h(tab['label'])}</code></h3>")
            if not tab["rows"]:
                out.append(f'<p class="note">{_h(tab.get("note") or "no rows")}</p>')
                continue
            out.append(
                _html_table(
                    ["name", "time %", "total", "count", "avg"],
                    [
                        [r["name"], pct(r["time_pct"]), ms(r["total_us"], 3), r["count"], usf(r["avg_us"])]
                        for r in tab["rows"]
                    ],
                    numeric=(1, 2, 3, 4),
                )
            )
    out.append(
        '<p class="note">Step times are the CPU span of each vLLM <code>execute_context_*</code> annotation; '
        "GPU busy is the union of kernel, memcpy and memset time over the profiled window. "
        "Made by vllm_infra.profiling.trace_summary.</p>"
    )
    out.append("</body></html>")
    return "\n".join(o for o in out if o) + "\n"


def render_json(result: dict[str, t.Any]) -> str:
    return json.dumps(result, indent=2, sort_keys=True) + "\n"
