# SPDX-License-Identifier: GPL-3.0-or-later
"""The trace reader's optional backends (msgspec's typed JSON decoder, isal's inflate) against the standard
library path: the same summaries on every fixture trace, the same events where msgspec decodes them, the
standard library wherever msgspec does not take the text, and a reader that works without either.

requirements/dev.in installs both into the test venv; the stdlib path is tested by switching them off
(``monkeypatch`` of the reader's module state, ``VLLM_INFRA_TRACE_BACKEND=stdlib``, or an import that fails).
"""

from __future__ import annotations

import gzip
import json
import sys
import zlib
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _trace as T
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import reader as R

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "traces"
TRACES = sorted(FIX.rglob("*.pt.trace.json.gz"))
GPU = FIX / "gpu"
STACK_WORKER = next((FIX / "cpu" / "stack").glob("rank0.*.pt.trace.json.gz"))


def load(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def use(monkeypatch: pytest.MonkeyPatch, backends: str) -> None:
    """``installed``: msgspec and isal (they must be there: requirements/dev.in); ``stdlib``: neither."""
    if backends == "installed":
        monkeypatch.setattr(R, "_LOADED", {})
        monkeypatch.delenv(R.BACKEND_ENV, raising=False)
        assert R.fast_backend() is not None, "msgspec is not installed (requirements/dev.in installs it)"
        assert R.inflate_module() is not zlib, "isal is not installed (requirements/dev.in installs it)"
    else:
        monkeypatch.setattr(R, "_LOADED", {"json": None, "inflate": zlib})


def summary(path: Path, **kwargs: object) -> dict:
    return T.summarize_trace(str(path), **kwargs).to_dict(top=100000)  # type: ignore[arg-type]


def test_every_fixture_trace_is_summarised_alike_with_and_without_the_backends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert len(TRACES) >= 15
    for path in TRACES:
        use(monkeypatch, "installed")
        fast = summary(path)
        use(monkeypatch, "stdlib")
        assert summary(path) == fast, path
        # and the plain decode of every event (no bulk python runs, no lean heads, no msgspec): the same but for
        # the window's end, which python_function events may move (see test__trace.py's bulk-run test)
        plain = summary(path, skip_python=False)
        for key in ("window_us", "gpu_busy_pct"):
            assert fast.pop(key) == pytest.approx(plain.pop(key), abs=0.01), (path, key)
        if plain["gpu"]:
            assert fast["gpu"].pop("busy_pct") == pytest.approx(plain["gpu"].pop("busy_pct"), abs=0.01)
            assert fast["gpu"].pop("window_us") == pytest.approx(plain["gpu"].pop("window_us"), abs=0.002)
        assert fast == plain, path


@pytest.mark.parametrize("chunk", [4093, 65536, 1 << 20])
@pytest.mark.parametrize(
    "path", [GPU / "gpu_stack.pt.trace.json.gz", GPU / "gpu_graph.pt.trace.json.gz", STACK_WORKER], ids=lambda p: p.name
)
def test_backends_give_the_same_summary_at_every_buffer_size(
    path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(R, "CHUNK", chunk)
    use(monkeypatch, "stdlib")
    want = summary(path)
    use(monkeypatch, "installed")
    assert summary(path) == want


def _fields(ev: dict) -> tuple:
    """What msgspec's Event holds of a json-decoded event: its own fields (None if absent), its args' (ABSENT)."""
    args = ev.get("args")
    own = tuple(ev.get(k) for k in R.EVENT_FIELDS)
    if args is None:
        return (*own, None)
    return (*own, tuple(args.get(k, R.ABSENT) for k in R.ARGS_FIELDS))


@pytest.mark.parametrize(
    "path",
    [GPU / "gpu_stack.pt.trace.json.gz", GPU / "gpu_eager.pt.trace.json.gz", STACK_WORKER],
    ids=lambda p: p.name,
)
def test_msgspec_events_are_what_json_decodes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, "installed")
    event_type = R.fast_backend()[1]
    whole = load(path)["traceEvents"]
    i = structs = 0
    for item in T.read_trace(str(path), skip_python=True, fast=True):
        if isinstance(item, T.PythonRun):
            assert {e["cat"] for e in whole[i : i + item.events]} == {"python_function"}
            i += item.events
            continue
        if isinstance(item, event_type):
            structs += 1
            got = (*(getattr(item, k) for k in R.EVENT_FIELDS), item.args)
            if got[-1] is not None:
                got = (*got[:-1], tuple(getattr(item.args, k) for k in R.ARGS_FIELDS))
            assert got == _fields(whole[i]), i
            # json's types too: an integer stays an int, a number with a fraction a float
            assert [type(v) for v in got[:-1]] == [type(v) for v in _fields(whole[i])[:-1]], i
        else:
            assert item == whole[i], i
        i += 1
    assert i == len(whole)
    others = sum(e.get("cat") != "python_function" for e in whole)
    assert structs > others // 2  # the fast path was taken for most of what is not python_function


def _kineto(events: list[dict]) -> str:
    """Kineto's layout (see test__trace.py): an event at 2 spaces, its keys at 4, args on their own lines."""
    out = []
    for ev in events:
        head = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in ev.items() if k != "args")
        text = "  {\n    " + head
        if "args" in ev:
            text += ',\n    "args": {\n      ' + json.dumps(ev["args"])[1:-1] + "\n    }"
        out.append(text + "\n  }")
    return '{\n  "schemaVersion": 1,\n  "traceEvents": [\n' + ",\n".join(out) + "\n  ]\n}"


def _kernel(i: int, **args: object) -> dict:
    return {
        "ph": "X", "cat": "kernel", "name": f"gemm_{i % 3}", "pid": 0, "tid": 7, "ts": 10.0 * i, "dur": 2.5,
        "args": {"device": 0, "stream": 7, "correlation": 100 + i, **args},
    }  # fmt: skip


@pytest.mark.parametrize(
    "odd",
    [
        {"x": float("nan")},  # json reads NaN, msgspec does not
        {"name": "\ud800"},  # a lone surrogate: json reads it, msgspec does not
        {"stream": "7", "device": None},  # not integers: taken as they are by both
        {"External id": 2**70, "queued": -(2**65)},  # beyond 64 bits
    ],
    ids=["nan", "lone-surrogate", "odd-types", "big-int"],
)
def test_what_msgspec_does_not_take_is_read_by_json(tmp_path: Path, odd: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [_kernel(i) for i in range(40)]
    events[17]["args"].update(odd)
    events += [
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaGraphLaunch", "pid": 1, "tid": 1, "ts": 3.0, "dur": 1.0,
         "args": {"correlation": 101}},
        {"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "VLLM Worker"}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 2.0, "dur": 4.0},
    ]  # fmt: skip
    path = tmp_path / "odd.pt.trace.json"
    path.write_text(_kineto(events), encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8"))["traceEvents"] == json.loads(json.dumps(events))
    plain = summary(path, skip_python=False)
    use(monkeypatch, "stdlib")
    assert summary(path) == plain
    use(monkeypatch, "installed")
    assert summary(path) == plain
    assert T.summarize_trace(str(path)).process_names == ["VLLM Worker"]
    assert plain["events"] == 43 and plain["kind"] == "worker" and plain["cuda_graph_launches"] == 1


def test_another_layout_is_read_by_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not Kineto's layout (one line, or nested objects at two spaces): msgspec is not given a part of an event."""
    events = [_kernel(i) for i in range(30)]
    one_line = tmp_path / "line.pt.trace.json"
    one_line.write_text(json.dumps({"traceEvents": events}))
    nested = tmp_path / "nested.pt.trace.json"
    nested.write_text(json.dumps({"traceEvents": events}, indent=2))  # args close with "\n  }" too: deeper
    for path in (one_line, nested):
        plain = summary(path, skip_python=False)
        use(monkeypatch, "installed")
        assert summary(path) == plain
        assert plain["events"] == 30


def test_the_reader_works_without_msgspec_and_isal(monkeypatch: pytest.MonkeyPatch) -> None:
    path = GPU / "gpu_stack.pt.trace.json.gz"
    use(monkeypatch, "installed")
    want = summary(path)
    # as on a controller without them: their import fails
    monkeypatch.setitem(sys.modules, "msgspec", None)
    monkeypatch.setitem(sys.modules, "isal", None)
    monkeypatch.setattr(R, "_LOADED", {})
    assert R.fast_backend() is None and R.inflate_module() is zlib
    assert summary(path) == want


def test_the_environment_switches_the_backends_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(R.BACKEND_ENV, "stdlib")
    monkeypatch.setattr(R, "_LOADED", {})
    assert R.fast_backend() is None and R.inflate_module() is zlib


@pytest.mark.parametrize("backends", ["installed", "stdlib"])
@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_inflate_reads_gzip_as_the_gzip_module_does(
    tmp_path: Path, chunk: int, backends: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reader inflates itself (zlib or isal): several gzip members one after the other (what
    # `cat a.gz b.gz` makes) and UTF-8 characters cut between reads give what gzip.open gives.
    use(monkeypatch, backends)
    doc = {"traceEvents": [{"ph": "X", "name": "\u00b5s \u2014 \U0001f600", "ts": i, "dur": 1} for i in range(50)]}
    text = json.dumps(doc, ensure_ascii=False).encode()
    path = tmp_path / "two-members.pt.trace.json.gz"
    path.write_bytes(gzip.compress(text[:101]) + gzip.compress(text[101:]))
    assert load(path) == doc
    assert list(T.read_trace(str(path), chunk=chunk)) == doc["traceEvents"]


@pytest.mark.parametrize("backends", ["installed", "stdlib"])
def test_bad_gzip_is_reported_alike(tmp_path: Path, backends: str, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, backends)
    data = STACK_WORKER.read_bytes()
    cut = tmp_path / "cut.pt.trace.json.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(T.TraceError, match=r"cut\.pt\.trace\.json\.gz: truncated gzip"):
        T.summarize_trace(str(cut))
    garbage = tmp_path / "garbage.pt.trace.json.gz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(T.TraceError, match=r"garbage\.pt\.trace\.json\.gz: (corrupt|truncated) gzip"):
        T.summarize_trace(str(garbage))
