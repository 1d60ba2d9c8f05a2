# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the streaming trace reader and the trace analysis, on real traces.

Independent oracles: ``json.load`` of the whole file (the reader must give the same events),
torch's own ``key_averages()`` table that vLLM wrote beside each CPU trace (op counts and
self/total times), and plain re-computations from the loaded events (kernel totals, GPU busy
union, cudaGraphLaunch correlation).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _trace as T
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import reader as trace_reader

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "traces"
NOSTACK = FIX / "cpu" / "nostack"
DETAILED = FIX / "cpu" / "detailed"
STACK = FIX / "cpu" / "stack"
GPU = FIX / "gpu"
NSYS = FIX / "nsys" / "cpu-2022.4.2"


def worker(directory: Path) -> Path:
    return next(directory.glob("rank0.*.pt.trace.json.gz"))


def frontend(directory: Path) -> Path:
    return next(directory.glob("*.async_llm.*.pt.trace.json.gz"))


def load(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


# ------------------------------------------------------------------------------------------
# the streaming reader
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [worker(NOSTACK), frontend(NOSTACK), GPU / "gpu_graph.pt.trace.json.gz"],
    ids=["cpu-worker", "cpu-frontend", "gpu-graph"],
)
@pytest.mark.parametrize("chunk", [4093, 1 << 20])
def test_reader_yields_exactly_what_json_load_sees(path: Path, chunk: int) -> None:
    whole = load(path)
    trace = T.read_trace(str(path), chunk=chunk)
    with pytest.raises(RuntimeError, match="read the events before the metadata"):
        assert trace.meta is None  # raises before comparing
    events = list(trace)
    assert events == whole["traceEvents"]
    assert trace.meta == {k: v for k, v in whole.items() if k != "traceEvents"}


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 64])
def test_reader_handles_every_chunk_boundary(tmp_path: Path, chunk: int) -> None:
    # Numbers, strings with escapes and keys after traceEvents, cut at every possible place.
    doc = {
        "schemaVersion": 1,
        "baseTimeNanoseconds": 1790857026000000000,
        "traceEvents": [
            {"ph": "X", "cat": "cpu_op", "name": 'aten::mm "q" \\ \u00b5', "ts": 12.5, "dur": 3, "pid": 1, "tid": 1},
            {"ph": "i", "name": "x", "ts": 1e3, "args": {"a": [1, 2, {"b": None}]}},
        ],
        "traceName": "/tmp/x.json",
    }
    path = tmp_path / "t.pt.trace.json"
    path.write_text(json.dumps(doc, indent=3))
    trace = T.read_trace(str(path), chunk=chunk)
    assert list(trace) == doc["traceEvents"]
    meta = trace.meta
    assert meta["traceName"] == "/tmp/x.json"
    assert meta["baseTimeNanoseconds"] == 1790857026000000000


def test_reader_accepts_the_bare_array_format(tmp_path: Path) -> None:
    path = tmp_path / "a.trace.json"
    path.write_text('[{"ph":"X","name":"a","ts":1,"dur":2,"cat":"cpu_op","pid":1,"tid":1}]')
    s = T.summarize_trace(str(path))
    assert s.ops["a"][1] == 1


@pytest.mark.parametrize(
    "path",
    [worker(STACK), frontend(STACK), GPU / "gpu_stack.pt.trace.json.gz"],
    ids=["cpu-worker", "cpu-frontend", "gpu-stack"],
)
@pytest.mark.parametrize("chunk", [4093, 65536, 1 << 20])
def test_bulk_python_runs_give_the_same_summary(path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace_reader, "CHUNK", chunk)
    slow = T.summarize_trace(str(path), skip_python=False).to_dict(top=1000)
    fast = T.summarize_trace(str(path), skip_python=True).to_dict(top=1000)
    assert slow["with_stack"] and slow["events"] == len(load(path)["traceEvents"])
    # The window's end (ts + dur of one event or another) can differ in the last printed digit.
    assert fast.pop("window_us") == pytest.approx(slow.pop("window_us"), abs=0.002)
    if slow["gpu"]:
        assert fast["gpu"].pop("busy_pct") == pytest.approx(slow["gpu"].pop("busy_pct"), abs=0.01)
        assert fast["gpu"].pop("window_us") == pytest.approx(slow["gpu"].pop("window_us"), abs=0.002)
        assert fast.pop("gpu_busy_pct") == pytest.approx(slow.pop("gpu_busy_pct"), abs=0.01)
    assert fast == slow


def _kineto_text(events: list[dict]) -> str:
    """Events written in Kineto's own layout (its writer's indentation and key order)."""
    out = []
    for ev in events:
        head = ", ".join(f"{json.dumps(k)}: {json.dumps(ev[k])}" for k in ("ph", "cat", "name", "pid", "tid"))
        text = "  {\n    " + head + ",\n    " + f'"ts": {json.dumps(ev["ts"])}, "dur": {json.dumps(ev["dur"])}'
        if "args" in ev:
            text += ',\n    "args": {\n      ' + json.dumps(ev["args"])[1:-1] + "\n    }"
        out.append(text + "\n  }")
    flow = '  {\n    "ph": "s", "id": 7, "pid": 1, "tid": 1, "ts": 5.0, "cat": "ac2g", "name": "ac2g"\n  }'
    return '{\n  "schemaVersion": 1,\n  "traceEvents": [\n' + ",\n".join([*out, flow]) + '\n  ],\n  "x": 1\n}'


@pytest.mark.parametrize("chunk", [7, 64, 4093])
def test_lean_reading_gives_what_json_gives_less_the_args(
    tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events of the lean categories come as json decodes them, without args; what the lean head cannot read
    exactly (an escaped name, a pid that is not an integer) is decoded whole, an args string holding the text of
    an event's end does not cut the event short, and a flow event is elided. An event not whole in the buffer
    (small chunks) is decoded whole: the summary is the same either way."""
    events = [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 412, "tid": 412, "ts": 1.5, "dur": 2.25,
         "args": {"Input Dims": [[2048, 512], []], "Concrete Inputs": ["", "\n  }\n  {"]}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::view", "pid": 1, "tid": -3, "ts": 17, "dur": 1e-3},
        {"ph": "X", "cat": "cpu_op", "name": 'a "quoted" \u00b5 op', "pid": 1, "tid": 1, "ts": 3.0, "dur": 1.0},
        {"ph": "X", "cat": "user_annotation", "name": "step", "pid": "Spans", "tid": 1, "ts": 4.0, "dur": 5.0,
         "args": {"a": 1}},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 2.0, "dur": 1.0,
         "args": {"device": 0, "stream": 7, "correlation": 9}},
    ]  # fmt: skip
    path = tmp_path / "k.pt.trace.json"
    path.write_text(_kineto_text(events))
    whole = json.loads(path.read_text())
    assert whole["traceEvents"][:-1] == events  # the text is valid JSON, and holds these events
    trace = T.read_trace(str(path), chunk=chunk, skip_python=True, lean={"cpu_op", "user_annotation"})
    got = list(trace)
    assert trace.meta == {"schemaVersion": 1, "x": 1}
    if chunk == 4093:  # the whole file in the buffer: the lean path is taken wherever it can be
        assert got[-1] is trace_reader.ELIDED
        expected = [{k: v for k, v in ev.items() if k != "args"} if ev["cat"] == "cpu_op" else ev for ev in events]
        assert got[:-1] == expected
        assert [type(e["ts"]) for e in got[:-1]] == [type(e["ts"]) for e in events]  # 17 stays an int, as in json
    else:
        assert got[-1] is trace_reader.ELIDED or got[-1] == whole["traceEvents"][-1]
        assert [{k: v for k, v in e.items() if k != "args"} for e in got[:-1]] == [
            {k: v for k, v in e.items() if k != "args"} for e in events
        ]
    slow = T.summarize_trace(str(path), skip_python=False).to_dict(top=100)
    monkeypatch.setattr(trace_reader, "CHUNK", chunk)
    assert T.summarize_trace(str(path)).to_dict(top=100) == slow and slow["events"] == 6


@pytest.mark.parametrize("bad", ['"ts": 1.2.3', '"ts": 01.5', '"name": "a\tb"'])
def test_lean_reading_leaves_invalid_json_to_the_decoder(tmp_path: Path, bad: str) -> None:
    """What json rejects in an event head (a malformed number, a leading zero, a raw tab in a string) is not read
    by the lean head: the decoder reports it, naming the file - never a ValueError from float()."""
    event = {"ph": "X", "cat": "cpu_op", "name": "ab", "pid": 1, "tid": 1, "ts": 1.5, "dur": 1.0}
    text = _kineto_text([event])
    good = '"name": "ab"' if "name" in bad else '"ts": 1.5'
    path = tmp_path / "bad.pt.trace.json"
    path.write_text(text.replace(good, bad, 1))
    with pytest.raises(T.TraceError, match=r"bad\.pt\.trace\.json: not valid trace JSON"):
        T.summarize_trace(str(path))


# ------------------------------------------------------------------------------------------
# bad input: a clear error naming the file, never a traceback
# ------------------------------------------------------------------------------------------


def _truncated_gzip(tmp_path: Path) -> Path:
    data = worker(NOSTACK).read_bytes()
    path = tmp_path / "truncated.pt.trace.json.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def _gzip_of(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))
    return path


BAD = {
    "truncated gzip": (_truncated_gzip, r"truncated gzip"),
    "not json": (
        lambda p: _gzip_of(p, "notjson.pt.trace.json.gz", "Traceback (most recent call last):\n"),
        r"not JSON",
    ),
    "json not a trace": (
        lambda p: _gzip_of(p, "config.pt.trace.json.gz", json.dumps({"model": "x", "layers": 2})),
        r"not a trace: it has no 'traceEvents'",
    ),
    "empty trace": (
        lambda p: _gzip_of(p, "empty.pt.trace.json.gz", json.dumps({"schemaVersion": 1, "traceEvents": []})),
        r"empty trace",
    ),
    "empty file": (lambda p: _gzip_of(p, "zero.pt.trace.json.gz", ""), r"empty file"),
    "json cut short": (
        lambda p: _gzip_of(p, "cut.pt.trace.json.gz", '{"traceEvents": [{"ph"'),
        r"not valid trace JSON.*(truncated|ends)",
    ),
    "garbage gzip": (lambda p: _write(p / "garbage.pt.trace.json.gz", b"\x1f\x8b\x08\x00garbage"), r"gzip"),
    "events not objects": (
        lambda p: _gzip_of(p, "ints.pt.trace.json.gz", '{"traceEvents": [1, 2]}'),
        r"item 1 is not an object",
    ),
    "trailing text": (
        lambda p: _gzip_of(p, "trail.pt.trace.json.gz", '{"traceEvents": [{"ph":"M"}]} extra'),
        r"text after the end",
    ),
    "latin-1 bytes": (lambda p: _write(p / "bin.pt.trace.json", b'{"a": "\xff\xfe"}'), r"not UTF-8"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_the_file(tmp_path: Path, case: str) -> None:
    make, message = BAD[case]
    path = make(tmp_path)
    with pytest.raises(T.TraceError) as info:
        T.summarize_trace(str(path))
    text = str(info.value)
    assert text.startswith(str(path)), text
    assert re.search(message, text), text
    assert "Traceback" not in text or case == "not json"


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(T.TraceError, match="no such file or directory"):
        T.find_inputs(str(tmp_path / "nope"))
    with pytest.raises(T.TraceError, match="no profiler traces"):
        T.find_inputs(str(tmp_path))


# ------------------------------------------------------------------------------------------
# vLLM CPU traces
# ------------------------------------------------------------------------------------------


def key_averages(path: Path) -> dict[str, tuple[float, float, int]]:
    """torch's profiler_out.txt table -> {name: (self_us, total_us, calls)}."""

    def us(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1.0, "ms": 1e3, "s": 1e6}[unit]

    rows = {}
    for line in path.read_text().splitlines():
        cols = re.split(r"\s{2,}", line.strip())
        if len(cols) == 7 and cols[-1].isdigit():
            rows[cols[0]] = (us(cols[2]), us(cols[4]), int(cols[6]))
    return rows


@pytest.mark.parametrize("directory", [NOSTACK, DETAILED, STACK], ids=["nostack", "detailed", "stack"])
def test_ops_agree_with_torch_key_averages(directory: Path) -> None:
    table = key_averages(directory / "rank0.profiler_out.txt")
    assert len(table) > 20
    s = T.summarize_trace(str(worker(directory)))
    checked = 0
    # With stack capture the table is mostly Python functions (the trace's python_function events).
    want = 5 if directory == STACK else 20
    for name, (self_us, total_us, calls) in table.items():
        if name not in s.ops:
            continue  # step annotations (user_annotation) are reported as steps, not ops
        _cat, count, total, ours_self = s.ops[name]
        assert count == calls, name
        # the table prints 3-4 significant digits
        assert total == pytest.approx(total_us, rel=5e-3, abs=0.01), name
        assert ours_self == pytest.approx(self_us, rel=5e-3, abs=0.01), name
        checked += 1
    assert checked >= want


def test_nostack_worker_steps_and_estimated_layers() -> None:
    d = T.summarize_trace(str(worker(NOSTACK))).to_dict()
    assert d["kind"] == "worker"
    assert (d["rank"], d["world_size"], d["vllm_version"]) == (0, 1, "0.32.0")
    assert d["device"] is None and d["gpu"] is None and d["gpu_busy_pct"] is None
    st = d["steps"]
    assert (st["steps"], st["prefill_steps"], st["decode_steps"], st["empty_steps"]) == (10, 1, 9, 1)
    assert (st["prefill_tokens"], st["decode_tokens"]) == (10, 9)
    whole = load(worker(NOSTACK))["traceEvents"]
    decode = sorted(e["dur"] for e in whole if e.get("name") == "execute_context_0(0)_generation_1(1)")
    assert st["decode"]["mean_us"] == pytest.approx(sum(decode) / len(decode), abs=1e-3)
    assert st["decode"]["p50_us"] == pytest.approx(decode[4], abs=1e-3)
    assert st["decode"]["max_us"] == pytest.approx(decode[-1], abs=1e-3)
    assert d["layers"] == {
        "count": 2,
        "module": None,
        "source": "attention ops per step (vllm::unified_attention*)",
        "estimated": True,
    }
    assert len(d["timeline"]) == 11
    assert [r["phase"] for r in d["timeline"]][:2] == ["prefill", "decode"]
    assert d["timeline"][-1]["phase"] == "empty"


def test_detailed_annotation_layout() -> None:
    st = T.summarize_trace(str(worker(DETAILED))).to_dict()["steps"]
    assert (st["prefill_steps"], st["decode_steps"], st["empty_steps"]) == (4, 20, 4)
    assert (st["prefill_tokens"], st["decode_tokens"]) == (76, 20)


def test_stack_capture_layers_from_modules() -> None:
    d = T.summarize_trace(str(worker(STACK))).to_dict()
    assert d["with_stack"] is True
    assert d["layers"] == {"count": 2, "module": "Qwen3DecoderLayer", "source": "nn.Module events", "estimated": False}
    modules = {m["name"]: m for m in d["top_modules"]}
    assert modules["Qwen3DecoderLayer"]["count"] == 4  # 2 layers x 2 forwards
    assert modules["Qwen3ForCausalLM"]["count"] == 2


def test_frontend_trace_is_recognised() -> None:
    d = T.summarize_trace(str(frontend(NOSTACK))).to_dict()
    assert d["kind"] == "frontend"
    assert d["steps"] is None and d["layers"] is None and d["top_ops"] == []


# ------------------------------------------------------------------------------------------
# GPU traces
# ------------------------------------------------------------------------------------------


def naive_gpu(path: Path) -> tuple[dict[str, float], float, int, int]:
    events = load(path)["traceEvents"]
    gpu = [e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    totals: dict[str, float] = {}
    for e in gpu:
        totals[e["name"]] = totals.get(e["name"], 0.0) + e["dur"]
    busy, end = 0.0, None
    for a, b in sorted((e["ts"], e["ts"] + e["dur"]) for e in gpu):
        if end is None or a > end:
            busy += b - a
            end = b
        elif b > end:
            busy += b - end
            end = b
    graph = {e["args"]["correlation"] for e in events if e.get("name") == "cudaGraphLaunch"}
    under_graph = sum(1 for e in gpu if e["args"].get("correlation") in graph)
    return totals, busy, len(graph), under_graph


@pytest.mark.parametrize("name", ["gpu_eager", "gpu_graph", "gpu_stack"])
def test_gpu_kernels_busy_and_graphs_agree_with_a_plain_recount(name: str) -> None:
    path = GPU / f"{name}.pt.trace.json.gz"
    totals, busy, graph_launches, under_graph = naive_gpu(path)
    s = T.summarize_trace(str(path))
    d = s.to_dict(top=1000)
    assert {k: pytest.approx(v[2], rel=1e-9) for k, v in s.kernels.items()} == totals
    assert d["gpu"]["busy_us"] == pytest.approx(busy, rel=1e-6)
    assert d["gpu_busy_pct"] == pytest.approx(100 * busy / d["window_us"], abs=0.01)
    assert d["cuda_graph_launches"] == graph_launches
    assert d["gpu"]["cuda_graph_kernels"] == under_graph
    assert sum(k["share_pct"] for k in d["top_kernels"]) == pytest.approx(100, abs=0.05)
    assert sum(c["share_pct"] for c in d["kernel_categories"]) == pytest.approx(100, abs=0.05)
    assert d["device"]["name"] == "NVIDIA H200"
    assert d["device"]["compute_capability"] == "9.0"
    assert d["steps"] is None  # not vLLM: no execute_context annotations
    assert d["kind"] == "trace"


def test_cuda_graph_trace() -> None:
    d = T.summarize_trace(str(GPU / "gpu_graph.pt.trace.json.gz")).to_dict()
    assert d["cuda_graph_launches"] == 10
    assert d["gpu"]["cuda_graph_kernels"] > 2000  # the kernels replayed under the 10 launches
    cats = {c["category"]: c for c in d["kernel_categories"]}
    assert cats["GEMM"]["share_pct"] > 5 and cats["memcpy/memset"]["count"] == 70


def test_step_regex_for_non_vllm_traces() -> None:
    s = T.summarize_trace(str(GPU / "gpu_eager.pt.trace.json.gz"), step_regex=r"^token_step_\d+$")
    d = s.to_dict()
    assert d["steps"]["source"] == "step_regex"
    assert d["steps"]["steps"] == 10 and "prefill_steps" not in d["steps"]
    # the GPU spans of the same annotations are paired with the CPU ones
    assert all(r["gpu_dur_us"] is not None and r["gpu_busy_us"] <= r["gpu_dur_us"] + 1e-6 for r in d["timeline"])
    assert sum(r["gpu_busy_us"] for r in d["timeline"]) <= d["gpu"]["busy_us"] + 1e-6


def test_gpu_stack_layers() -> None:
    d = T.summarize_trace(str(GPU / "gpu_stack.pt.trace.json.gz")).to_dict()
    assert d["layers"]["count"] == 4 and d["layers"]["module"] == "Qwen3DecoderLayer"


# ------------------------------------------------------------------------------------------
# names and categories
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "category", "short"),
    [
        ("nvjet_sm90_tst_8x64_64x16_4x1_v_bz_TNN", "GEMM", "nvjet_sm90_tst_8x64_64x16_4x1_v_bz_TNN"),
        (
            "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float, "
            "float, float>, unsigned int, float, 4, 4> >(at::native::ReduceOp<float, at::native::MeanOps<float, "
            "float, float, float>, unsigned int, float, 4, 4>)",
            "other",
            "reduce_kernel [MeanOps, float]",
        ),
        (
            "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x64_4x1x1_cga1x1x1_kernel0_0",
            "attention",
            None,
        ),
        ("Memcpy DtoD (Device -> Device)", "memcpy/memset", "Memcpy DtoD (Device -> Device)"),
        ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "communication", None),
        ("void vllm::rms_norm_kernel<c10::BFloat16, 8, 4>(c10::BFloat16*, int)", "norm", None),
        ("void vllm::act_and_mul_kernel<c10::BFloat16>(c10::BFloat16*)", "elementwise", None),
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "GEMM", None),
        ("void flash::flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128>>(Flash_fwd_params)", "attention", None),
        ("void vllm::cross_device_reduce_1stage<__nv_bfloat16, 2>(vllm::RankData*)", "communication", None),
        ("triton_poi_fused_add_0", "elementwise", None),
    ],
)
def test_kernel_category_and_short_name(name: str, category: str, short: str | None) -> None:
    assert T.kernel_category(name) == category
    if short is not None:
        assert T.short_name(name) == short
    assert len(T.short_name(name)) <= 80


def test_kernel_category_fast_path_equals_the_case_insensitive_patterns() -> None:
    """kernel_category lower-cases an ASCII name and caches the answer: for every kernel of the real GPU fixtures
    (and mixed-case or non-ASCII names) it must say what the IGNORECASE patterns say."""
    from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import classify  # noqa: PLC0415

    def reference(name: str) -> str:
        return next((cat for cat, regex in classify.category_res_anycase() if regex.search(name)), "other")

    # mixed case, and non-ASCII letters IGNORECASE folds to ASCII ones (long s, Kelvin sign, dotted capital I)
    names = {"NCCL_AllReduce", "Void GEMM<Half>", "MEMCPY HtoD", "\u017filu_kernel", "RMSNorm\u212a", "\u0130ndex"}
    for path in [*GPU.glob("*.pt.trace.json.gz"), *(FIX / "gpu-tp2").glob("*/*.pt.trace.json.gz")]:
        names |= {e["name"] for e in load(path)["traceEvents"] if e.get("cat") == "kernel"}
    assert len(names) > 50
    for name in sorted(names):
        assert classify._categorize(name) == reference(name), name
        assert T.kernel_category(name) == T.kernel_category(name) == reference(name), name


def test_every_fixture_kernel_gets_a_category_and_a_readable_name() -> None:
    s = T.summarize_trace(str(GPU / "gpu_eager.pt.trace.json.gz"))
    for name, (cat, _count, _total) in s.kernels.items():
        assert T.kernel_category(name, cat) in T.KERNEL_CATEGORIES
        short = T.short_name(name)
        assert len(short) <= 80
        if name.startswith("void "):
            assert "(" not in short and "<" not in short, short


def test_percentile_is_numpys_linear_method() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert T.percentile(values, 50) == 3.0
    assert T.percentile(values, 90) == pytest.approx(7.6)
    assert T.percentile([5.0], 90) == 5.0
    assert T.percentile([], 50) is None


# ------------------------------------------------------------------------------------------
# merging, inputs, fleet
# ------------------------------------------------------------------------------------------


def test_merge_keeps_one_ranks_steps_and_sums_the_rest() -> None:
    a = T.summarize_trace(str(worker(NOSTACK)))
    b = T.summarize_trace(str(worker(NOSTACK)))
    b.rank = 1
    merged = T.TraceSummary.merge([a, b])
    d = merged.to_dict()
    assert d["steps"]["steps"] == 10  # ranks of one engine repeat the same steps
    assert d["top_ops"][0]["count"] == 2 * a.to_dict()["top_ops"][0]["count"]
    fleet = T.TraceSummary.merge([a, b], steps_from="all").to_dict()
    assert fleet["steps"]["steps"] == 20
    starts = [r["start_us"] for r in fleet["timeline"]]
    assert starts == sorted(starts) and starts[11] >= a.window_us  # captures laid end to end


def test_find_inputs_single_host_and_fleet(tmp_path: Path) -> None:
    root = tmp_path / "captures"
    for host, src in (("gpu-a", NOSTACK), ("gpu-b", STACK)):
        shutil.copytree(src, root / host / "profiles")
    shutil.copytree(NSYS, root / "gpu-a" / "nsys")
    (root / "report").mkdir()
    (root / "report" / "x.pt.trace.json").write_text("{}")
    groups = T.find_inputs(str(root), exclude=str(root / "report"))
    assert sorted(groups) == ["gpu-a", "gpu-b"]
    assert len(groups["gpu-a"]["traces"]) == 2
    assert sorted(Path(p).name for p in groups["gpu-a"]["nsys_csv"]) == [
        "run1_cudaapisum.csv",
        "run1_gpukernsum.csv",
        "run1_nvtxsum.csv",
        "run1_osrtsum.csv",
    ]
    one = T.find_inputs(str(root), exclude=str(root / "report"), fleet="never")
    assert list(one) == ["captures"] and len(one["captures"]["traces"]) == 4
    assert sorted(T.find_inputs(str(root / "gpu-a"), fleet="always")) == ["nsys", "profiles"]
    single = T.find_inputs(str(root / "gpu-b"))
    assert list(single) == ["gpu-b"] and len(single["gpu-b"]["traces"]) == 2
    assert list(T.find_inputs(str(worker(NOSTACK)))) == [worker(NOSTACK).name]


def test_find_inputs_skips_dot_files_and_dot_directories(tmp_path: Path) -> None:
    """Hidden files are not captures: rsync's temporary copy of a trace being transferred, an
    editor's backup, a benchmark's marker, a hidden sub-directory - none may be read or make a host."""
    root = tmp_path / "captures"
    shutil.copytree(NOSTACK, root / "gpu-a")
    shutil.copytree(STACK, root / "gpu-b")
    name = worker(NOSTACK).name
    # rsync --partial-dir / its temp name: a truncated copy of a real trace
    (root / "gpu-a" / f".{name}.Xy12Ab").write_bytes(worker(NOSTACK).read_bytes()[:1000])
    (root / "gpu-a" / ".marker.pt.trace.json").write_text("not json")
    (root / "gpu-a" / ".run1_gpukernsum.csv").write_text("garbage")
    shutil.copytree(NOSTACK, root / ".previous")  # a hidden directory with inputs is not a host either
    shutil.copytree(NOSTACK, root / "gpu-b" / ".ipynb_checkpoints")
    groups = T.find_inputs(str(root))
    assert sorted(groups) == ["gpu-a", "gpu-b"]
    every = [p for g in groups.values() for key in g for p in g[key]]
    assert every and not [p for p in every if "/." in p], every
    assert len(groups["gpu-a"]["traces"]) == 2 and len(groups["gpu-b"]["traces"]) == 2
    # the summary reads the directory without tripping over the truncated hidden copy
    result = T.analyze(str(root / "gpu-a"))
    assert result["errors"] == [] and len(result["hosts"][0]["traces"]) == 1
    # named explicitly, a dot-file is read (and here fails, naming it)
    with pytest.raises(T.TraceError, match=r"\.marker\.pt\.trace\.json"):
        T.analyze(str(root / "gpu-a" / ".marker.pt.trace.json"))


def test_analyze_a_fleet(tmp_path: Path) -> None:
    root = tmp_path / "captures"
    shutil.copytree(NOSTACK, root / "host1")
    shutil.copytree(DETAILED, root / "host2")
    result = T.analyze(str(root))
    assert result["fleet"] is True
    assert [h["host"] for h in result["hosts"]] == ["host1", "host2"]
    assert [h["summary"]["steps"]["steps"] for h in result["hosts"]] == [10, 24]
    assert result["summary"]["steps"]["steps"] == 34
    assert all(len(h["frontends"]) == 1 and len(h["traces"]) == 1 for h in result["hosts"])


def test_analyze_skip_and_fail(tmp_path: Path) -> None:
    shutil.copytree(NOSTACK, tmp_path / "cap")
    bad = _truncated_gzip(tmp_path / "cap")
    with pytest.raises(T.TraceError, match=re.escape(str(bad))):
        T.analyze(str(tmp_path / "cap"))
    result = T.analyze(str(tmp_path / "cap"), on_error="skip")
    assert len(result["errors"]) == 1 and str(bad) in result["errors"][0]
    assert result["summary"]["steps"]["steps"] == 10
    with pytest.raises(T.TraceError, match="step_regex"):
        T.analyze(str(tmp_path / "cap"), step_regex="(")


# ------------------------------------------------------------------------------------------
# nsys stats CSVs
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "report", "kind"),
    [
        ("run1_cuda_gpu_kern_sum.csv", "cuda_gpu_kern_sum", "gpu_kernels"),
        ("run1_gpukernsum.csv", "gpukernsum", "gpu_kernels"),
        ("x_cuda_api_sum.csv", "cuda_api_sum", "cuda_api"),
        ("x_cudaapisum.csv", "cudaapisum", "cuda_api"),
        ("report_nvtx_sum.csv", "nvtx_sum", "nvtx"),
        ("report_nvtxsum.csv", "nvtxsum", "nvtx"),
        ("a_osrt_sum.csv", "osrt_sum", "osrt"),
        ("a_osrtsum.csv", "osrtsum", "osrt"),
        ("notes.csv", None, None),
    ],
)
def test_nsys_report_names_of_both_eras(filename: str, report: str | None, kind: str | None) -> None:
    assert T.nsys_report_name(filename) == report
    if kind:
        assert T.NSYS_REPORTS[report] == kind  # type: ignore[index]


def test_nsys_osrtsum_csv() -> None:
    tab = T.parse_nsys_csv(str(NSYS / "run1_osrtsum.csv"), top=5)
    assert tab["report"] == "osrtsum" and tab["kind"] == "osrt"
    assert tab["rows_total"] == 13 and len(tab["rows"]) == 5
    first = tab["rows"][0]
    assert first == {
        "name": "clock_nanosleep",
        "time_pct": 73.1,
        "total_us": 688631.182,
        "count": 600,
        "avg_us": 1147.719,
    }


def test_nsys_stats_stdout_with_banner_parses_the_same(tmp_path: Path) -> None:
    copy = tmp_path / "stdout_osrtsum.csv"
    shutil.copyfile(NSYS / "stdout_osrtsum.txt", copy)
    assert T.parse_nsys_csv(str(copy))["rows"] == T.parse_nsys_csv(str(NSYS / "run1_osrtsum.csv"))["rows"]


def test_nsys_skipped_report_is_an_empty_table() -> None:
    tab = T.parse_nsys_csv(str(NSYS / "run1_gpukernsum.csv"))
    assert tab["rows"] == [] and tab["kind"] == "gpu_kernels"
    assert "empty" in tab["note"]
