#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Capture real GPU fixtures on a machine with an NVIDIA GPU (run there, not in CI).

Writes into OUT_DIR:
  smi.tar                    nvidia-smi table, -L, and --query-gpu CSV outputs (real)
  gpu_eager.pt.trace.json.gz torch.profiler trace: a small Qwen3 (random weights) generating
                             10 tokens (1 prefill + 9 decode steps) with a KV cache, eager
  gpu_graph.pt.trace.json.gz the same model's decode step captured once as a CUDA graph and
                             replayed per token (cudaGraphLaunch + kernels)
  gpu_stack.pt.trace.json.gz eager again with with_stack=True (nn.Module events per layer)
  capture.log                versions and what ran

Not vLLM: these traces come from torch.profiler around a Hugging Face model, so they carry
no vLLM step annotations; each step is wrapped in record_function("token_step_<i>").
A single-rank process group is initialised so Kineto writes `distributedInfo` (HTA needs it).

Usage: capture_gpu_fixtures.py OUT_DIR
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import transformers
from torch.profiler import ProfilerActivity, profile, record_function
from transformers import Qwen3Config, Qwen3ForCausalLM

TOKENS = 10
SMI_COMMANDS = {
    "nvidia-smi.txt": ["nvidia-smi"],
    "nvidia-smi_-L.txt": ["nvidia-smi", "-L"],
    "query-gpu.csv": [
        "nvidia-smi",
        "--query-gpu=index,name,uuid,driver_version,memory.total,mig.mode.current,pci.bus_id",
        "--format=csv",
    ],
    "query-gpu_noheader_nounits.csv": [
        "nvidia-smi",
        "--query-gpu=index,name,uuid,driver_version,memory.total,mig.mode.current,pci.bus_id",
        "--format=csv,noheader,nounits",
    ],
    "nvidia-smi_-q_-d_MEMORY.txt": ["nvidia-smi", "-q", "-d", "MEMORY"],
}


def log(out: Path, msg: str) -> None:
    print(msg, flush=True)
    with (out / "capture.log").open("a") as fh:
        fh.write(msg + "\n")


def capture_smi(out: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, cmd in SMI_COMMANDS.items():
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            data = (proc.stdout + proc.stderr).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
            log(out, f"$ {' '.join(cmd)} -> rc {proc.returncode}, {len(data)} bytes")
    (out / "smi.tar").write_bytes(buf.getvalue())


def make_model() -> Qwen3ForCausalLM:
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=2048,
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    config._attn_implementation = "sdpa"
    return Qwen3ForCausalLM(config).to(device="cuda", dtype=torch.bfloat16).eval()


def save_trace(prof: profile, out: Path, name: str) -> None:
    raw = out / f"{name}.pt.trace.json"
    prof.export_chrome_trace(str(raw))
    with raw.open("rb") as src, gzip.open(out / f"{name}.pt.trace.json.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    log(out, f"{name}: {raw.stat().st_size} bytes JSON -> {(out / (name + '.pt.trace.json.gz')).stat().st_size} gz")
    raw.unlink()


@torch.inference_mode()
def eager_generate(model: Qwen3ForCausalLM, prompt: torch.Tensor) -> None:
    with record_function("token_step_0"):
        result = model(input_ids=prompt, use_cache=True)
    past = result.past_key_values
    token = result.logits[:, -1:].argmax(-1)
    for step in range(1, TOKENS):
        with record_function(f"token_step_{step}"):
            result = model(input_ids=token, past_key_values=past, use_cache=True)
        past = result.past_key_values
        token = result.logits[:, -1:].argmax(-1)
    torch.cuda.synchronize()


def profile_eager(model: Qwen3ForCausalLM, out: Path, name: str, with_stack: bool) -> None:
    prompt = torch.randint(0, 2048, (1, 16), device="cuda")
    eager_generate(model, prompt)  # warm-up: cuBLAS handles, allocator
    with profile(
        activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
        record_shapes=True,
        with_stack=with_stack,
    ) as prof:
        eager_generate(model, prompt)
    save_trace(prof, out, name)


@torch.inference_mode()
def profile_graph(model: Qwen3ForCausalLM, out: Path) -> None:
    # A fixed-shape forward over a padded window: recomputes the whole window each step
    # (no KV cache), which keeps shapes static so the step can be captured as one graph.
    window = 32
    static_ids = torch.randint(0, 2048, (1, window), device="cuda")
    static_logits = torch.empty((1, window, 2048), device="cuda", dtype=torch.bfloat16)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            static_logits.copy_(model(input_ids=static_ids, use_cache=False).logits)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_logits.copy_(model(input_ids=static_ids, use_cache=False).logits)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
        for step in range(TOKENS):
            with record_function(f"token_step_{step}"):
                graph.replay()
                token = static_logits[:, -1].argmax(-1)
                static_ids.copy_(torch.roll(static_ids, -1, dims=1))
                static_ids[0, -1] = token[0]
        torch.cuda.synchronize()
    save_trace(prof, out, "gpu_graph")


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log(out, f"torch {torch.__version__}, cuda {torch.version.cuda}, device {torch.cuda.get_device_name(0)}")
    log(out, f"transformers {transformers.__version__}, python {sys.version.split()[0]}")
    capture_smi(out)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=torch.device("cuda", 0))
    model = make_model()
    profile_eager(model, out, "gpu_eager", with_stack=False)
    profile_graph(model, out)
    profile_eager(model, out, "gpu_stack", with_stack=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
