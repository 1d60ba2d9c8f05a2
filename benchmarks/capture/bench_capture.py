#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: the role's capture (module + fetch, inside a play) against the same steps by hand.

One real vLLM CPU server (harness image, profiler on, no stack) serves all; runs are interleaved
(by hand, play, [play before,] by hand, ...) and reported as medians, their ratio and the play's overhead
over the by-hand sequence, also without vLLM's own /stop_profile time on either side (bimodal here, see
main()). "play" is this checkout's capture_play.yml with this checkout's collection;
with --before REV, "play before" is REV's capture_play.yml with REV's collection (git archive into a
temporary collections path), so that a change is measured against its base in one interleaved run (REV must
have vllm_profiler_session's run_subdir, 2026-11-30: the server writes through the run link, as the role's do).
A second server with stack capture on gives the stop/flush time with and without stacks (--no-stack skips it).

Run:  source tools/setup.sh && python benchmarks/capture/bench_capture.py [--rounds 5] [--no-stack] [--before REV]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from support import ansible  # noqa: E402
from support.vllm import vllm_container  # noqa: E402

from ansible_collections.vllm_infra.profiling.plugins.module_utils._profiler import (  # noqa: E402
    RUN_LINK,
    prepare_run_dir,
)

PROMPT = "What is the capital of France?"
# Start-up is not measured: on a machine shared with other podman work the tiny server may take minutes.
READY_TIMEOUT = 900


def by_hand(url: str, profile_dir: Path, dest: Path, prefix: str) -> tuple[float, float]:
    """What a person does: curl start, curl a completion, curl stop, cp the new files (from the directory the
    server writes into, wherever the role's link points it). Returns the whole time and the stop call's."""
    profile_dir = (profile_dir / RUN_LINK).resolve()
    before = set(profile_dir.iterdir())
    body = json.dumps({"model": "/models/tiny-qwen3", "prompt": PROMPT, "max_tokens": 10, "ignore_eos": True})
    t0 = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "-sf",
            "-X",
            "POST",
            f"{url}/start_profile",
            "-H",
            "content-type: application/json",
            "-d",
            json.dumps({"profile_prefix": prefix}),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["curl", "-sf", f"{url}/v1/completions", "-H", "content-type: application/json", "-d", body],
        check=True,
        capture_output=True,
    )
    t_stop = time.perf_counter()
    subprocess.run(["curl", "-sf", "-X", "POST", f"{url}/stop_profile"], check=True, capture_output=True)
    stop = time.perf_counter() - t_stop
    new = [p for p in profile_dir.iterdir() if p not in before and p.name.endswith(".pt.trace.json.gz")]
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", *map(str, new), str(dest)], check=True)
    return time.perf_counter() - t0, stop


def by_play(url: str, profile_dir: Path, dest: Path, prefix: str, tree: Path = REPO) -> tuple[float, dict]:
    """capture_play.yml of ``tree`` (a checkout, or a collections path's copy of one) with that tree's collection."""
    env = {} if tree == REPO else {"ANSIBLE_COLLECTIONS_PATH": str(tree.parents[2])}
    ansible.run_playbook(
        str(tree / "benchmarks" / "capture" / "capture_play.yml"),
        {"url": url, "profile_dir": str(profile_dir), "dest": str(dest), "prefix": prefix},
        check=True,
        **env,
    )
    data = json.loads((dest / "bench.json").read_text())
    return data["elapsed"], data["timings"]


def export(rev: str, work: Path) -> Path:
    """REV's files as the collection vllm_infra.profiling under ``work``/before (its root returned)."""
    root = work / "before" / "ansible_collections" / "vllm_infra" / "profiling"
    root.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root


def server(profiles: Path, with_stack: bool):
    # As the role runs its servers: the profiler writes through the link <dir>/current, which each play's capture
    # points at its own run directory (run_subdir).
    config = {
        "profiler": "torch",
        "torch_profiler_dir": f"/profiles/{RUN_LINK}",
        "torch_profiler_with_stack": with_stack,
    }
    return vllm_container(
        extra_args=["--profiler-config", json.dumps(config)],
        volumes=[f"{profiles}:/profiles:z"],
        prefix="bench",
        ready_timeout=READY_TIMEOUT,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-stack", action="store_true", help="skip the second server (stack capture on)")
    parser.add_argument("--before", metavar="REV", help="also run REV's capture play with REV's collection")
    args = parser.parse_args()
    if not shutil.which("curl"):
        parser.error("curl is needed for the by-hand baseline")
    work = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    before_tree = export(args.before, work) if args.before else None
    results = {}
    for with_stack in (False,) if args.no_stack else (False, True):
        profiles = work / f"profiles-stack-{with_stack}"
        profiles.mkdir()
        profiles.chmod(0o777)
        prepare_run_dir(str(profiles), "by-hand")  # where the by-hand captures land until a play points it on
        with server(profiles, with_stack) as srv:
            hand, hand_stops, play, before, stops, phases = [], [], [], [], [], []
            by_hand(srv.url, profiles, work / "warmup", "warmup")  # first capture pays Kineto's init
            rounds = args.rounds if not with_stack else max(2, args.rounds // 2)
            for i in range(rounds):
                elapsed, stop = by_hand(srv.url, profiles, work / f"hand-{with_stack}-{i}", f"hand{i}")
                hand.append(elapsed)
                hand_stops.append(stop)
                elapsed, timings = by_play(srv.url, profiles, work / f"play-{with_stack}-{i}", f"play{i}")
                play.append(elapsed)
                stops.append(timings.get("stop", 0) + timings.get("flush", 0))
                phases.append(timings)
                if before_tree is not None and not with_stack:
                    where = work / f"before-{with_stack}-{i}"
                    before.append(by_play(srv.url, profiles, where, f"before{i}", before_tree)[0])
        results[with_stack] = {
            "hand": hand,
            "hand_stop": hand_stops,
            "play": play,
            "play_before": before,
            "stop_flush": stops,
            # The module's own phases (medians): what of the play is the capture and what is ansible around it.
            "module_phases": {k: statistics.median(p.get(k, 0) for p in phases) for k in sorted(phases[0])},
            "rounds": [{"elapsed_minus_stop": e - p.get("stop", 0)} for e, p in zip(play, phases, strict=True)],
        }
    plain = results[False]
    hand_s = statistics.median(plain["hand"])
    for label, key in (("play before", "play_before"), ("play now", "play")):
        if not plain[key]:
            continue
        median = statistics.median(plain[key])
        print(
            f"capture part, no stack, {label}: median {median:.2f}s, by hand median {hand_s:.2f}s -> "
            f"ratio {median / hand_s:.2f}x, {median - hand_s:.2f}s above by hand (target <= 1.0s above)"
        )
    # vLLM's own /stop_profile time is the same work on both sides but bimodal on this machine (~0.35 s or ~0.8 s,
    # measured 2026-11-30, whichever side calls it), which moves the medians above by up to the gap: the same
    # comparison without it (the play's stop phase from the module's timings, by hand the stop call's time).
    hand_rest = statistics.median(h - s for h, s in zip(plain["hand"], plain["hand_stop"], strict=True))
    play_rest = statistics.median(p["elapsed_minus_stop"] for p in plain["rounds"])
    print(
        f"capture part, no stack, without vLLM's stop time: play median {play_rest:.2f}s, by hand median "
        f"{hand_rest:.2f}s -> {play_rest - hand_rest:.2f}s above by hand"
    )
    phases = plain["module_phases"]
    print(f"module phases, no stack (medians): {', '.join(f'{k} {v:.3f}s' for k, v in phases.items())}")
    if True in results:
        for with_stack, label in ((False, "without"), (True, "with")):
            stops = results[with_stack]["stop_flush"]
            print(f"stop+flush {label} stack capture: median {statistics.median(stops):.2f}s over {len(stops)} runs")
        ratio_stack = statistics.median(results[True]["stop_flush"]) / statistics.median(plain["stop_flush"])
        print(f"stop+flush with/without stack: {ratio_stack:.1f}x")
    print(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
