#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark trace_summary against Meta's HolisticTraceAnalysis (HTA) on the same traces.

For each trace, runs (interleaved, ``--repeats`` rounds, each run in a fresh Python process):
  ours  analyze() + the three report renderings of vllm_infra.profiling (what the module does)
  hta   TraceAnalysis(trace_dir) + get_gpu_kernel_breakdown() + get_temporal_breakdown()
and reports wall time and peak RSS (the child's ru_maxrss), their ratios, and our MB/s of
uncompressed JSON. Both tools start warm: before the timed rounds each runs once untimed on the same
input (the file in the page cache, and our modules' bytecode written to __pycache__ as an installed
collection's is after its first run - HTA's came with its wheel; PYTHONDONTWRITEBYTECODE is unset for
the children so that this can happen). HTA's breakdowns need GPU kernels: on a CPU-only vLLM trace HTA only loads
the trace, and the breakdown calls are reported as failed (that is HTA, not the harness).

Inputs (default: all of them):
  big-stack   a real vLLM CPU worker trace with stack capture, >= 80 MB JSON (3 requests x 20 tokens,
              more if needed), made at run time with tools/make_cpu_traces.py (needs podman and the
              harness image) and cached in $VLLM_INFRA_CACHE/trace-bench (~/.cache/vllm-infra/trace-bench)
  gpu-stack   tests/fixtures/traces/gpu/gpu_stack.pt.trace.json.gz (real, H200, with stack)
  gpu-eager   tests/fixtures/traces/gpu/gpu_eager.pt.trace.json.gz
  two-rank    big-stack as rank 0 and a copy of it as rank 1 in one directory, against big-stack alone
              (ours only, interleaved one/two/one/two): the capture/rank grouping must not cost more than
              reading the second file. The copy says rank 1 of 2 in its distributedInfo (rank 0's too
              says world size 2); its events are rank 0's - a stand-in for a real second 80+ MB rank
              trace, which this CPU-only machine cannot make (the real 2-rank fixtures are ~1 MB).

Our reader uses the optional msgspec (JSON) and isal (gzip inflate) packages where installed (requirements/dev.in
installs both); ``--backend stdlib`` runs ours with the standard library only (VLLM_INFRA_TRACE_BACKEND=stdlib).
Our child prints which it used.

  .venv/bin/python benchmarks/trace_summary/bench.py [--repeats 3] [--only big-stack] [--json out.json]
         [--trace NAME=PATH ...] [--backend installed|stdlib]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "traces"

OURS = r"""
import sys
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import analyze
from ansible_collections.vllm_infra.profiling.plugins.module_utils import _report
result = analyze(sys.argv[1])
_report.render_json(result); _report.render_markdown(result); _report.render_html(result)
s = result["summary"]
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import reader
print("steps", (s["steps"] or {}).get("steps"), "kernels", len(s["top_kernels"]), "ops", len(s["top_ops"]),
      "json", "msgspec" if reader.fast_backend() else "stdlib", "inflate", reader.inflate_module().__name__)
"""

OURS_RANKS = (
    OURS
    + r"""
print("ranks", [c["ranks"] for c in result["hosts"][0]["captures"]],
      "straggler", (result["cross_rank"] or {}).get("straggler"))
"""
)

HTA = r"""
import logging, sys
logging.disable(logging.WARNING)
from hta.trace_analysis import TraceAnalysis
ta = TraceAnalysis(trace_dir=sys.argv[1])
try:
    ta.get_gpu_kernel_breakdown(visualize=False)
    ta.get_temporal_breakdown(visualize=False)
    print("breakdowns ok")
except Exception as exc:  # HTA's own failure on a trace without GPU kernels
    print("breakdowns failed:", type(exc).__name__, str(exc)[:120])
"""


def cache_dir() -> Path:
    path = Path(os.environ.get("VLLM_INFRA_CACHE", Path.home() / ".cache" / "vllm-infra")) / "trace-bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


BIG_JSON_BYTES = 80e6
BACKEND = "installed"  # --backend


def big_stack_trace() -> Path:
    """A real with-stack vLLM worker trace of at least 80 MB JSON (made once, then cached).

    With stack capture the size follows the profiled wall time (the worker's idle loop polling
    its shared-memory queue is recorded too): 10 tokens gave 25-100 MB here depending on load,
    so capture 3 requests x 20 tokens, and more requests until the trace is big enough.
    """
    out = cache_dir() / "big-stack"
    for requests in (3, 6, 12):
        found = sorted(out.glob("rank0.*.pt.trace.json.gz"))
        if found and json_bytes(found[-1]) >= BIG_JSON_BYTES:
            return found[-1]
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                str(REPO / "tools" / "make_cpu_traces.py"),
                "--out",
                str(out),
                "--with-stack",
                "--requests",
                str(requests),
                "--max-tokens",
                "20",
            ],
            check=True,
        )
    return sorted(out.glob("rank0.*.pt.trace.json.gz"))[-1]


def two_rank_dir(one: Path) -> Path:
    """big-stack as rank 0 and rank 1 of a 2-rank capture (made once from big-stack, then cached)."""
    out = cache_dir() / "two-rank"
    stamp = out / "made-from.txt"  # not named like a trace: analyze() would read it
    if stamp.exists() and stamp.read_text() == one.name:
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run_id = one.name.split(".")[1]
    for rank in (0, 1):
        target = out / f"rank{rank}.{run_id}.pt.trace.json.gz"
        with gzip.open(one, "rb") as src, gzip.open(target, "wb", compresslevel=1) as dst:
            head = src.read(1 << 16)
            old = b'"distributedInfo": {"backend": "gloo", "rank": 0, "world_size": 1'
            if old not in head:
                raise SystemExit(f"{one}: no single-rank distributedInfo in the first 64 KiB to rewrite")
            new = f'"distributedInfo": {{"backend": "gloo", "rank": {rank}, "world_size": 2'.encode()
            dst.write(head.replace(old, new, 1))
            shutil.copyfileobj(src, dst, 1 << 20)
    stamp.write_text(one.name)
    return out


def bench_two_rank(one: Path, repeats: int) -> dict:
    """Ours on a directory with rank 0 alone, then with ranks 0 and 1 (interleaved)."""
    pair = two_rank_dir(one)
    single = Path(tempfile.mkdtemp(prefix="bench-one-rank-"))
    try:
        rank0 = sorted(pair.glob("rank0.*"))[0]
        shutil.copyfile(rank0, single / rank0.name)
        rows: dict[str, list[tuple[float, float]]] = {"one": [], "two": []}
        notes: dict[str, str] = {}
        run_child(OURS_RANKS, str(pair))  # warm-up, untimed
        for _ in range(repeats):
            for case, target in (("one", single), ("two", pair)):
                secs, rss, out = run_child(OURS_RANKS, str(target))
                rows[case].append((secs, rss))
                notes[case] = out
        res = {"input": "two-rank", "json_mb": round(2 * json_bytes(rank0) / 1e6, 1), "repeats": repeats}
        for case, runs in rows.items():
            res[f"{case}_s"] = round(statistics.median(s for s, _ in runs), 3)
            res[f"{case}_rss_mb"] = round(max(r for _, r in runs), 1)
            res[f"{case}_note"] = notes[case]
        res["time_ratio"] = round(res["two_s"] / res["one_s"], 3)
        return res
    finally:
        shutil.rmtree(single, ignore_errors=True)


def json_bytes(path: Path) -> int:
    with gzip.open(path, "rb") as fh:
        return sum(len(block) for block in iter(lambda: fh.read(1 << 20), b""))


def run_child(code: str, target: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of one fresh Python process."""
    env = dict(os.environ, PYTHONPATH=str(REPO / ".build" / "collections"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # warm bytecode for both tools (see the module's doc)
    if BACKEND == "stdlib":
        env["VLLM_INFRA_TRACE_BACKEND"] = "stdlib"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, target], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed on {target}:\n{out}\n{err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024.0, out.strip()


def bench(name: str, trace: Path, repeats: int) -> dict:
    # HTA reads every trace in a directory: give it a directory with only this worker trace.
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        shutil.copyfile(trace, work / trace.name)
        size = json_bytes(trace)
        rows: dict[str, list[tuple[float, float]]] = {"ours": [], "hta": []}
        notes: dict[str, str] = {}
        for code in (OURS, HTA):  # warm-up, untimed: page cache and bytecode for both
            run_child(code, str(work))
        for _ in range(repeats):
            for tool, code in (("ours", OURS), ("hta", HTA)):  # interleaved
                secs, rss, out = run_child(code, str(work))
                rows[tool].append((secs, rss))
                notes[tool] = out
        res = {"input": name, "file": str(trace), "json_mb": round(size / 1e6, 1), "repeats": repeats}
        for tool, runs in rows.items():
            res[f"{tool}_s"] = round(statistics.median(s for s, _ in runs), 3)
            res[f"{tool}_rss_mb"] = round(max(r for _, r in runs), 1)
            res[f"{tool}_note"] = notes[tool]
        res["time_ratio"] = round(res["ours_s"] / res["hta_s"], 4)
        res["rss_ratio"] = round(res["ours_rss_mb"] / res["hta_rss_mb"], 4)
        res["ours_mb_per_s"] = round(size / 1e6 / res["ours_s"], 1)
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", action="append", choices=["big-stack", "gpu-stack", "gpu-eager", "two-rank"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--trace", action="append", default=[], metavar="NAME=PATH", help="another trace to bench")
    parser.add_argument("--backend", choices=["installed", "stdlib"], default="installed")
    args = parser.parse_args(argv)
    global BACKEND  # noqa: PLW0603 - one setting for every child of this run
    BACKEND = args.backend
    inputs = {
        "big-stack": big_stack_trace,
        "gpu-stack": lambda: FIXTURES / "gpu" / "gpu_stack.pt.trace.json.gz",
        "gpu-eager": lambda: FIXTURES / "gpu" / "gpu_eager.pt.trace.json.gz",
    }
    for extra in args.trace:
        name, _, path = extra.partition("=")
        inputs[name] = lambda path=path: Path(path)
        args.only = [*(args.only or []), name] if args.only else None
    results = []
    header = (
        "| input | JSON MB | ours s | HTA s | time ratio | ours peak RSS MiB | HTA peak RSS MiB | RSS ratio | MB/s |"
    )
    print(header + "\n|" + "---|" * 9)
    for name in args.only or [*inputs, "two-rank"]:
        if name == "two-rank":
            continue
        res = bench(name, inputs[name](), args.repeats)
        results.append(res)
        print(
            f"| {name} | {res['json_mb']} | {res['ours_s']} | {res['hta_s']} | {res['time_ratio']:.3f} | "
            f"{res['ours_rss_mb']} | {res['hta_rss_mb']} | {res['rss_ratio']:.3f} | {res['ours_mb_per_s']} |",
            flush=True,
        )
    if "two-rank" in (args.only or ["two-rank"]):
        two = bench_two_rank(big_stack_trace(), args.repeats)
        print(
            f"\n| two 80+ MB ranks, one directory | JSON MB | one rank s | two ranks s | time ratio (target <= 2.2) "
            f"| two ranks peak RSS MiB (target <= 150) |\n|---|---|---|---|---|---|\n"
            f"| two-rank | {two['json_mb']} | {two['one_s']} | {two['two_s']} | {two['time_ratio']:.3f} "
            f"| {two['two_rss_mb']} |",
            flush=True,
        )
        print(f"two-rank: one: {two['one_note']} | two: {two['two_note']}")
        results.append(two)
    for res in results:
        if res["input"] == "two-rank":
            continue
        print(f"{res['input']}: ours: {res['ours_note']} | hta: {res['hta_note']}")
    if args.json:
        for res in results:
            res["backend"] = args.backend
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
