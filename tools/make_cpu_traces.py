#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Capture real vLLM CPU profiler traces with the test harness.

Starts the harness's vLLM CPU image (tests/support/vllm.py ``vllm_container()``)
with the torch profiler on and a host directory mounted at /profiles, then
POST /start_profile, runs ``--requests`` completions of ``--max-tokens`` tokens
each (``ignore_eos``, so the token count is exact), POST /stop_profile, and
copies the trace files into ``--out``.

  python tools/make_cpu_traces.py --out DIR [--with-stack] [--requests N]
         [--max-tokens N] [--concurrency N] [--prefix NAME] [--detailed-annotation]

Used by tests/fixtures/traces (the committed small fixtures) and by
benchmarks/trace_summary (the big with-stack trace, made at bench time).
Needs podman and the ``vllm-cpu-tiny`` harness image (built on demand).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import podman  # noqa: E402
from tests.support.vllm import VllmServer, vllm_container  # noqa: E402

PROMPTS = (
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain how a GPU schedules warps.",
    "List three uses of a profiler.",
)


def capture(
    out: Path,
    *,
    with_stack: bool,
    requests: int = 1,
    max_tokens: int = 10,
    concurrency: int = 1,
    prefix: str = "",
    detailed_annotation: bool = False,
    server_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> list[Path]:
    """Run one profiled session; return the trace files copied into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    profiles = Path(tempfile.mkdtemp(prefix="vllm-profiles-"))
    profiles.chmod(0o777)  # the image runs as uid 1001
    config: dict[str, object] = {
        "profiler": "torch",
        "torch_profiler_dir": "/profiles",
        "torch_profiler_with_stack": with_stack,
    }
    if detailed_annotation:
        config["detailed_trace_annotation"] = True
    try:
        with vllm_container(
            extra_args=["--profiler-config", json.dumps(config), *server_args],
            env=env,
            volumes=[f"{profiles}:/profiles:z"],
            prefix="traces",
        ) as server:
            # One untimed request first: the profiled window then shows steady-state steps.
            try:
                server.complete(max_tokens=2)
            except Exception:
                # the server's own reason (a 500 says nothing); the container is removed on the way out
                print(podman.logs_tail(server.name, 80), file=sys.stderr)
                raise
            body = {"profile_prefix": prefix} if prefix else None
            server.post("/start_profile", json=body).raise_for_status()
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
                jobs = [pool.submit(server.complete, PROMPTS[i % len(PROMPTS)], max_tokens) for i in range(requests)]
                for job in jobs:
                    usage = job.result()["usage"]
                    if usage["completion_tokens"] != max_tokens:
                        raise AssertionError(f"asked for {max_tokens} tokens, got {usage}")
            started = time.monotonic()
            server.post("/stop_profile", timeout=600).raise_for_status()
            print(f"stop_profile took {time.monotonic() - started:.1f}s", file=sys.stderr)
        copied = []
        for src in sorted(profiles.iterdir()):
            if src.is_file() and src.stat().st_size > 1:
                dst = out / src.name
                shutil.copyfile(src, dst)
                copied.append(dst)
        if not any(p.name.endswith((".pt.trace.json.gz", ".pt.trace.json")) for p in copied):
            raise AssertionError(f"vLLM wrote no trace into {profiles}: {[p.name for p in profiles.iterdir()]}")
        return copied
    finally:
        shutil.rmtree(profiles, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="directory for the trace files")
    parser.add_argument("--with-stack", action="store_true", help="torch_profiler_with_stack: true")
    parser.add_argument("--requests", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--prefix", default="", help="profile_prefix for /start_profile")
    parser.add_argument(
        "--detailed-annotation", action="store_true", help="detailed_trace_annotation: true (execute_N_context_...)"
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="one more vLLM server argument (repeatable), e.g. --server-arg=--tensor-parallel-size --server-arg=2",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=0, help="seconds to wait for /health (default: the harness's 240)"
    )
    parser.add_argument(
        "--image",
        default="",
        help="another image than the harness's vllm-cpu-tiny (e.g. one with g++ for tensor parallel on the CPU)",
    )
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the container (repeatable)")
    args = parser.parse_args(argv)
    if args.image:
        podman.ensure_image = lambda _name: args.image  # the harness starts whatever ensure_image names
    if args.ready_timeout:
        # A tensor-parallel CPU server starts one process per rank: on 2 shared cores that takes longer than
        # the harness's default wait. The tool's own knob, without changing the harness for every test.
        VllmServer.wait_ready.__defaults__ = (args.ready_timeout,)
    paths = capture(
        args.out,
        with_stack=args.with_stack,
        requests=args.requests,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        prefix=args.prefix,
        detailed_annotation=args.detailed_annotation,
        server_args=tuple(args.server_arg),
        env=dict(item.split("=", 1) for item in args.env) or None,
    )
    for path in paths:
        print(f"{path} {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
