# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: names in a trace - vLLM step annotations, kernel categories, short kernel names."""

from __future__ import annotations

import re

TRACE_SUFFIXES = (".pt.trace.json", ".pt.trace.json.gz", ".trace.json", ".trace.json.gz")
NSYS_REPORT_SUFFIXES = (".nsys-rep", ".qdrep")


# vLLM's per-engine-step annotation (vllm/v1/worker/gpu_worker.py), both layouts:
#   execute_context_1(10)_generation_0(0)
#   execute_12_context_1(sq10sk10sqsq100sqsk100)_generation_2(sq2sk20sqsq2sqsk20)   (detailed_trace_annotation)
VLLM_STEP_RE = re.compile(
    r"^execute_(?:\d+_)?context_(\d+)\((?:sq)?(\d+)[^)]*\)_generation_(\d+)\((?:sq)?(\d+)[^)]*\)$"
)
# One call per attention layer per forward (vLLM's custom ops); used to estimate layers without stack capture.
ATTENTION_OP_RE = re.compile(r"^vllm::unified_(?:mla_)?attention(?:_with_output)?$")
DECODER_LAYER_RE = re.compile(r"^nn\.Module: (\w*?(?:DecoderLayer|Block|Layer))_(\d+)$")
MODULE_RE = re.compile(r"^nn\.Module: (.+?)(?:_\d+)?$")
GRAPH_LAUNCH_NAMES = frozenset(("cudaGraphLaunch", "cudaGraphLaunch_v10000", "cuGraphLaunch", "hipGraphLaunch"))

CPU_CATS = frozenset(("cpu_op", "user_annotation", "cuda_runtime", "cuda_driver"))
OP_CATS = frozenset(("cpu_op", "cuda_runtime", "cuda_driver"))
GPU_CATS = frozenset(("kernel", "gpu_memcpy", "gpu_memset"))

KERNEL_CATEGORIES = ("GEMM", "attention", "norm", "elementwise", "memcpy/memset", "communication", "other")
# The patterns, matched case-insensitively (IGNORECASE): compiled as such only for a non-ASCII name.
_CATEGORY_PATTERNS = (
    (
        "communication",
        r"nccl|all_?reduce|all_?gather|reduce_?scatter|all_?to_?all|cross_device_reduce|sendrecv|custom_ar"
        r"|one_?shot|two_?shot|multimem|symm_mem",
    ),
    ("memcpy/memset", r"^(?:memcpy|memset|dma)"),
    (
        "attention",
        r"flash|fmha|attention|attn|paged|_mha|mha_|xformers|flashinfer|reshape_and_cache|kv_cache"
        r"|batch_prefill|batch_decode|cutlass_?mla|sdpa",
    ),
    ("norm", r"norm|rms"),
    (
        "GEMM",
        r"gemm|gemv|cutlass|cublas|nvjet|xmma|matmul|[sh](?:16816|1688|884)|hmma|imma|wgmma|splitk|triton_mm"
        r"|bmm|marlin|machete|scaled_mm|_mm_",
    ),
    (
        "elementwise",
        r"elementwise|vectorized|unrolled|pointwise|triton_poi|act_and_mul|silu|gelu|relu|rotary|rope"
        r"|copy|fill|catarray|index|gather|scatter|where|masked_|cast|convert|arange",
    ),
)


# The same patterns without IGNORECASE, for a lower-cased ASCII name: several times faster on the long C++
# signatures of GPU kernels (a case-insensitive alternation is tried character by character).
_CATEGORY_RES_LOWER = tuple((category, re.compile(pattern)) for category, pattern in _CATEGORY_PATTERNS)
_CATEGORY_RES_ANYCASE: list[tuple[str, re.Pattern[str]]] = []


def category_res_anycase() -> list[tuple[str, re.Pattern[str]]]:
    """The IGNORECASE patterns, compiled on first use (start-up time: kernel names are ASCII)."""
    if not _CATEGORY_RES_ANYCASE:
        _CATEGORY_RES_ANYCASE.extend((category, re.compile(p, re.IGNORECASE)) for category, p in _CATEGORY_PATTERNS)
    return _CATEGORY_RES_ANYCASE


_CATEGORY_CACHE: dict[str, str] = {}


def kernel_category(name: str, cat: str = "kernel") -> str:
    """GEMM, attention, norm, elementwise, memcpy/memset, communication or other."""
    if cat in ("gpu_memcpy", "gpu_memset"):
        return "memcpy/memset"
    found = _CATEGORY_CACHE.get(name)
    if found is None:
        found = _CATEGORY_CACHE[name] = _categorize(name)
    return found


def _categorize(name: str) -> str:
    # Lower-casing is what IGNORECASE does for ASCII; a non-ASCII name keeps the case-insensitive patterns.
    regexes, text = (_CATEGORY_RES_LOWER, name.lower()) if name.isascii() else (category_res_anycase(), name)
    for category, regex in regexes:
        if regex.search(text):
            return category
    return "other"


_GENERIC_HINTS = frozenset(
    ("BinaryFunctor", "gpu_kernel_impl", "gpu_kernel_impl_nocast", "ReduceOp", "UnaryFunctor", "AUnaryFunctor")
)
_DTYPE_RE = re.compile(r"\b(BFloat16|Half|Float8_e4m3fn|Float8_e5m2|float|double)\b")
_HINT_RE = re.compile(r"[A-Za-z_]\w*?(?:Functor\w*|Ops|_kernel_cuda|_kernel_impl|Op)\b")


def short_name(name: str, limit: int = 80) -> str:
    """A readable kernel name: ``elementwise_kernel [MulFunctor]`` for a long C++ signature."""
    s = name[5:] if name.startswith("void ") else name
    s = s.replace("(anonymous namespace)::", "")
    if "<" not in s and not name.startswith("void "):
        return s if len(s) <= limit else s[: limit - 1] + "…"
    base, templ, depth = [], [], 0
    for ch in s:
        if ch == "<":
            depth += 1
            if depth == 1:
                continue
        elif ch == ">" and depth:
            depth -= 1
            if depth == 0:
                continue
        elif ch == "(" and depth == 0:
            break
        (templ if depth else base).append(ch)
    head = "".join(base).strip()
    head = head.rsplit("::", 1)[-1] or head
    templ_text = "".join(templ)
    hints = [h for h in _HINT_RE.findall(templ_text) if h not in _GENERIC_HINTS and h != head][:1]
    dtype = _DTYPE_RE.search(templ_text)
    if dtype and hints:
        hints.append(dtype.group(1))
    out = f"{head} [{', '.join(hints)}]" if hints else head
    return out if len(out) <= limit else out[: limit - 1] + "…"
