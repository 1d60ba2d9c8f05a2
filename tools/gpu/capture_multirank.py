#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Capture real 2-rank GPU traces (torch.distributed + NCCL) on a machine with two NVIDIA GPUs.

Run there, not in CI:  capture_multirank.py OUT_DIR [--world-size 2]

The workload is a tensor-parallel MLP stack shaped like one vLLM decoder's MLP half: every rank holds a
column shard of W_up and a row shard of W_down, and each layer ends in an NCCL all-reduce of the
hidden state, as vLLM's RowParallelLinear does. Rank 1 is made deliberately slower (an extra GEMM per
layer before the all-reduce), so rank 0 waits inside the collective: the straggler the summary must name.
Each engine step is wrapped in ``record_function`` with vLLM's own step-annotation format
(``execute_context_1(128)_generation_0(0)`` for the prefill, ``execute_context_0(0)_generation_1(1)`` per
decode step), so the step analysis has something to read; nothing else in the traces is vLLM's.
Traces are written by ``torch.profiler.tensorboard_trace_handler`` -- the handler vLLM itself uses -- with
vLLM's worker names, so file names follow vLLM's two conventions.

Writes OUT_DIR/<capture>/<files>, captures:
  eager/      rank{N}.<ns>.pt.trace.json.gz        1 prefill + 9 decode steps, eager, bf16   (vLLM 0.32 names)
  graph/      rank{N}.<ns>.pt.trace.json.gz        the same; decode steps replayed from one CUDA graph per rank
  candidate/  cand-rank-{N}.<ns>.pt.trace.json.gz  eager with a deliberate change: weights left in float32
                                                   (vLLM 0.13-0.15 names ``<id>-rank-N``)
and OUT_DIR/capture.log (versions, GPUs, what ran).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.profiler import ProfilerActivity, profile, record_function, tensorboard_trace_handler

HIDDEN = 4096
FFN = 14336
LAYERS = 4
PROMPT = 128
DECODE_STEPS = 9
SLOW_RANK = 1
SLOW_GEMM = 4096  # rank 1's extra square GEMM per layer (the deliberate straggler)


def log(out: Path, msg: str) -> None:
    print(msg, flush=True)
    with (out / "capture.log").open("a") as fh:
        fh.write(msg + "\n")


class TPStack:
    def __init__(self, rank: int, world: int, dtype: torch.dtype) -> None:
        gen = torch.Generator(device="cuda").manual_seed(1234 + rank)
        shard = FFN // world
        self.rank = rank
        self.up = [torch.randn(HIDDEN, shard, device="cuda", dtype=dtype, generator=gen) * 0.02 for _ in range(LAYERS)]
        self.down = [
            torch.randn(shard, HIDDEN, device="cuda", dtype=dtype, generator=gen) * 0.02 for _ in range(LAYERS)
        ]
        self.norm = [torch.ones(HIDDEN, device="cuda", dtype=dtype) for _ in range(LAYERS)]
        self.pad = torch.randn(SLOW_GEMM, SLOW_GEMM, device="cuda", dtype=dtype, generator=gen)
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(LAYERS):
            h = torch.nn.functional.rms_norm(x, (HIDDEN,), self.norm[i])
            h = torch.nn.functional.silu(h @ self.up[i]) @ self.down[i]
            if self.rank == SLOW_RANK:
                self.pad = torch.mm(self.pad, self.pad).clamp_(-1, 1)  # the deliberate straggler
            dist.all_reduce(h)
            x = x + h
        return x


def prefill_and_decode(model: TPStack, decode_step) -> None:
    x = torch.randn(PROMPT, HIDDEN, device="cuda", dtype=model.dtype)
    with record_function(f"execute_context_1({PROMPT})_generation_0(0)"):
        model.forward(x)
    for _ in range(DECODE_STEPS):
        with record_function("execute_context_0(0)_generation_1(1)"):
            decode_step()
    torch.cuda.synchronize()


def run_capture(model: TPStack, out_dir: Path, worker: str, use_graph: bool) -> None:
    token = torch.randn(1, HIDDEN, device="cuda", dtype=model.dtype)
    step = lambda: model.forward(token)  # noqa: E731
    if use_graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                model.forward(token)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            model.forward(token)
        step = graph.replay
    prefill_and_decode(model, step)  # warm-up: cuBLAS handles, NCCL channels, allocator
    dist.barrier()
    torch.cuda.synchronize()
    with (
        torch.no_grad(),
        profile(
            activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
            record_shapes=True,
            on_trace_ready=tensorboard_trace_handler(str(out_dir), worker_name=worker, use_gzip=True),
        ),
    ):
        prefill_and_decode(model, step)
    dist.barrier()


def worker_main(rank: int, world: int, out: str) -> None:
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29541")
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world, device_id=torch.device("cuda", rank))
    root = Path(out)
    plans = [
        ("eager", f"rank{rank}", torch.bfloat16, False),
        ("graph", f"rank{rank}", torch.bfloat16, True),
        ("candidate", f"cand-rank-{rank}", torch.float32, False),
    ]
    with torch.no_grad():
        for name, worker, dtype, use_graph in plans:
            target = root / name
            target.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            try:
                run_capture(TPStack(rank, world, dtype), target, worker, use_graph)
                if rank == 0:
                    log(root, f"{name}: ok in {time.monotonic() - started:.1f} s (dtype {dtype}, graph {use_graph})")
            except Exception as exc:  # keep the other captures; say which one failed and why
                log(root, f"{name}: rank {rank} FAILED: {exc!r}")
            torch.cuda.empty_cache()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--world-size", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log(out, f"$ {' '.join(sys.argv)}")
    log(
        out,
        f"torch {torch.__version__}, cuda {torch.version.cuda}, nccl {'.'.join(map(str, torch.cuda.nccl.version()))}",
    )
    log(out, f"python {sys.version.split()[0]}, GPUs {torch.cuda.device_count()}: {torch.cuda.get_device_name(0)}")
    for cmd in (
        ["nvidia-smi", "-L"],
        ["nvidia-smi", "topo", "-m"],
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv"],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        log(out, f"$ {' '.join(cmd)}\n{proc.stdout.strip()}")
    log(out, f"env NCCL_NVLS_ENABLE={os.environ.get('NCCL_NVLS_ENABLE')} (NVLink multicast left off)")
    mp.spawn(worker_main, args=(args.world_size, str(out)), nprocs=args.world_size, join=True)
    for path in sorted(out.rglob("*.gz")):
        log(out, f"{path.relative_to(out)}: {path.stat().st_size} bytes gz")


if __name__ == "__main__":
    main()
