# SPDX-License-Identifier: GPL-3.0-or-later
"""trace_summary on a fresh, big, real vLLM trace: the harness's vLLM CPU server with stack capture,
3 requests x 20 tokens (a trace of 50-150 MB JSON, gzip'd: with stack capture the size follows the
profiled wall time), summarised by the module in a process whose peak RSS must stay under 150 MB.

Needs podman and the ``vllm-cpu-tiny`` harness image (built on demand); fails, never skips.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import make_cpu_traces  # noqa: E402  (tools/make_cpu_traces.py)

MODULE = "ansible_collections.vllm_infra.profiling.plugins.modules.trace_summary"
PEAK_RSS_LIMIT_MB = 150


@pytest.mark.podman
@pytest.mark.vllm
def test_big_with_stack_trace_is_summarised_in_bounded_memory(tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    files = make_cpu_traces.capture(capture, with_stack=True, requests=3, max_tokens=20)
    worker = next(p for p in files if p.name.startswith("rank0.") and p.name.endswith(".pt.trace.json.gz"))
    with gzip.open(worker, "rb") as fh:
        json_bytes = sum(len(b) for b in iter(lambda: fh.read(1 << 20), b""))
    assert json_bytes > 40e6, json_bytes  # stack capture makes it big

    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"path": str(capture), "dest": str(tmp_path / "report")}}))
    env = dict(os.environ, PYTHONPATH=str(REPO / ".build" / "collections"))
    # Linux keeps a process's peak RSS across exec, and a child forked from this pytest process
    # starts with pytest's (hundreds of MB once HTA and pandas have run). So the module runs under
    # a small Python wrapper, whose own child's peak is the module's alone (plus the wrapper's few MB).
    wrapper = (
        "import resource, subprocess, sys\n"
        "proc = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "sys.stderr.buffer.write(proc.stderr)\n"
        "sys.stdout.buffer.write(proc.stdout)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(proc.returncode)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", MODULE, str(args)],
        capture_output=True,
        env=env,
        check=False,
    )
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err
    peak_mb = int(err.decode().strip().splitlines()[-1]) / 1024
    result = json.loads(out)
    print(f"{json_bytes / 1e6:.1f} MB JSON, peak RSS {peak_mb:.1f} MiB: {result['headline']}")
    assert peak_mb < PEAK_RSS_LIMIT_MB

    summary = result["summary"]
    assert summary["kind"] == "worker" and summary["with_stack"] is True
    steps = summary["steps"]
    # 3 requests one after the other: each 1 prefill step + 19 decode steps
    assert (steps["prefill_steps"], steps["decode_steps"], steps["decode_tokens"]) == (3, 57, 57)
    assert summary["layers"] == {
        "count": 2,
        "module": "Qwen3DecoderLayer",
        "source": "nn.Module events",
        "estimated": False,
    }
    frontends = result["hosts"][0]["frontends"]
    assert len(frontends) == 1 and frontends[0]["kind"] == "frontend"
    assert (tmp_path / "report" / "report.html").stat().st_size > 5000
