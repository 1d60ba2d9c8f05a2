# SPDX-License-Identifier: GPL-3.0-or-later
"""The vllm_profiler_session module, run in-process against tests/support/fault_server.py.

The stand-in server is used only for what the real vLLM cannot be made to do on demand: a stop that
hangs, 5xx answers, a completion that returns fewer tokens, a trace left truncated, 404s from older
versions. The full capture, 404/409/401 from the real server and a server killed mid-workload are in
tests/integration/test_vllm_profiler_session_real.py.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import os
import time
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.module_utils import _internal as ansible_internal
from ansible.module_utils.testing import patch_module_args
from support import ansible, podman
from support.fault_server import FaultServer, Request, vllm_error
from support.module_spec import argument_spec

from ansible_collections.vllm_infra.profiling.plugins.doc_fragments import vllm_api as vllm_api_fragment
from ansible_collections.vllm_infra.profiling.plugins.module_utils import _vllm_api
from ansible_collections.vllm_infra.profiling.plugins.modules import vllm_profiler_session as M

REPO = Path(__file__).resolve().parents[4]
TRACE = "rank0.1795823023642513601.pt.trace.json.gz"


@pytest.fixture(autouse=True)
def as_on_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """Modules run on the target. Once a test in the same session imported ansible's controller code
    (e.g. the filter tests), ansible-core routes module warnings to the controller's display instead of
    the result; the module's own process never has that."""
    monkeypatch.setattr(ansible_internal, "is_controller", False)


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any], check_mode: bool = False) -> dict[str, t.Any]:
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args), pytest.raises(SystemExit) as excinfo:
        M.main()
    result = json.loads(capsys.readouterr().out)
    assert (excinfo.value.code != 0) == bool(result.get("failed")), result
    return result


def warnings(result: dict[str, t.Any]) -> list[str]:
    """Warning texts; ansible-core 2.19+ returns them as WarningSummary objects."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def trace_text(events: int = 50) -> str:
    return json.dumps({"schemaVersion": 1, "traceEvents": [{"ph": "X", "name": f"e{i}"} for i in range(events)]})


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    directory = tmp_path / "profiles"
    directory.mkdir()
    (directory / "rank0.1.pt.trace.json.gz").write_bytes(b"from an earlier session")
    return directory


@pytest.fixture
def server(profiles: Path):
    """The stand-in writes a worker and a frontend trace when an active session is stopped, as vLLM
    does (names as vLLM 0.32 makes them; ``written`` keeps them per session)."""
    with FaultServer() as srv:
        stop = srv.routes[("POST", "/stop_profile")]
        srv.written = []
        srv.write_dir = profiles  # the server's profiler directory, as the host sees it

        def stop_and_write(req: Request):
            if srv.active:
                stamp = time.time_ns()
                names = [f"rank0.{stamp}.pt.trace.json.gz", f"0a1b2c3d4e5f_6.async_llm.{stamp + 1}.pt.trace.json.gz"]
                for name in names:
                    with gzip.open(srv.write_dir / name, "wt") as fh:
                        fh.write(trace_text())
                srv.written.append(names)
            return stop(req)

        srv.routes[("POST", "/stop_profile")] = stop_and_write
        yield srv


def args_for(srv: FaultServer, profiles: Path, **extra: t.Any) -> dict[str, t.Any]:
    return {"url": srv.url, "profile_dir": str(profiles), "flush_timeout": 5, **extra}


# ----------------------------------------------------------------------------- the happy path
def test_capture(capsys, server: FaultServer, profiles: Path) -> None:
    result = run(capsys, args_for(server, profiles, num_requests=3, concurrency=2, max_tokens=12))
    assert result["changed"] is True
    assert server.paths() == [
        "GET /health",
        "GET /version",
        "GET /v1/models",
        "POST /start_profile",
        *["POST /v1/completions"] * 3,
        "POST /stop_profile",
    ]
    assert result["vllm_version"] == "0.32.0"
    assert result["model"] == "/models/stand-in"
    assert result["http_client"] == "requests"
    worker, frontend = server.written[0]
    assert sorted((tr["name"], tr["kind"]) for tr in result["traces"]) == [(frontend, "frontend"), (worker, "rank0")]
    assert all(tr["size"] == (profiles / tr["name"]).stat().st_size for tr in result["traces"])
    assert [r["completion_tokens"] for r in result["requests"]] == [12, 12, 12]
    assert set(result["timings"]) == {"ready", "start", "workload", "stop", "flush", "total"}
    assert result["stop_attempted"] is True
    assert server.calls[3].body is None  # no per-session options asked for: no body
    assert server.calls[4].body == {
        "model": "/models/stand-in",
        "prompt": "What is the capital of France?",
        "max_tokens": 12,
        "ignore_eos": True,
        "stream": False,
    }


def test_chat_with_a_list_of_prompts(capsys, server: FaultServer, profiles: Path) -> None:
    result = run(capsys, args_for(server, profiles, endpoint="chat", prompts=["one", "two"], num_requests=3))
    assert not result.get("failed"), result
    bodies = [c.body for c in server.calls if c.path == "/v1/chat/completions"]
    assert [b["messages"][0]["content"] for b in bodies] == ["one", "two", "one"]


def test_falls_back_to_open_url_without_requests(capsys, server, profiles, monkeypatch) -> None:
    monkeypatch.setattr(_vllm_api, "HAS_REQUESTS", False)
    result = run(capsys, args_for(server, profiles))
    assert result["http_client"] == "open_url"
    assert len(result["traces"]) == 2


# ----------------------------------------------------------------------------- faults
def test_stop_is_sent_when_the_workload_fails(capsys, server: FaultServer, profiles: Path) -> None:
    server.routes[("POST", "/v1/completions")] = lambda req: vllm_error(500, "EngineCore died", "InternalServerError")
    result = run(capsys, args_for(server, profiles, num_requests=4))
    assert result["failed"]
    assert result["msg"] == (
        "workload failed: request 0 failed: POST /v1/completions answered HTTP 500: EngineCore died; "
        "3 of 4 requests not sent after the failure. /stop_profile was sent and answered"
    )
    assert server.paths()[-1] == "POST /stop_profile"
    assert result["changed"] is True
    assert result["stop_attempted"] is True
    assert {tr["name"] for tr in result["traces"]} == set(server.written[0])  # what the stopped session wrote


def test_a_short_completion_fails_clearly(capsys, server: FaultServer, profiles: Path) -> None:
    complete = server.routes[("POST", "/v1/completions")]

    def short(req: Request):
        status, body = complete(req)
        body["usage"]["completion_tokens"] = 7
        body["choices"][0]["finish_reason"] = "stop"
        return status, body

    server.routes[("POST", "/v1/completions")] = short
    result = run(capsys, args_for(server, profiles))
    assert result["failed"]
    assert "request 0 returned 7 completion tokens, expected 10 (finish_reason=stop)" in result["msg"]
    assert server.paths()[-1] == "POST /stop_profile"
    # Without ignore_eos a short answer is normal (the model stopped): reported, not checked.
    server.calls.clear()
    result = run(capsys, args_for(server, profiles, ignore_eos=False))
    assert not result.get("failed"), result
    assert result["requests"][0]["completion_tokens"] == 7
    assert server.calls[4].body["ignore_eos"] is False


def test_a_stop_that_hangs_hits_stop_timeout(capsys, server: FaultServer, profiles: Path) -> None:
    def hang(req: Request):
        server.release.wait(60)
        return 200, ""

    server.routes[("POST", "/stop_profile")] = hang
    started = time.monotonic()
    result = run(capsys, args_for(server, profiles, stop_timeout=1))
    assert time.monotonic() - started < 10
    assert result["failed"]
    assert result["msg"].startswith("POST /stop_profile did not answer within stop_timeout=1s")
    assert "raise stop_timeout" in result["msg"]
    assert result["timings"]["stop"] >= 1


def test_a_5xx_on_stop(capsys, server: FaultServer, profiles: Path) -> None:
    server.routes[("POST", "/stop_profile")] = lambda req: vllm_error(500, "worker gone", "InternalServerError")
    result = run(capsys, args_for(server, profiles))
    assert result["failed"]
    assert result["msg"] == "POST /stop_profile failed: POST /stop_profile answered HTTP 500: worker gone"


def test_a_5xx_on_start_sends_nothing_else(capsys, server: FaultServer, profiles: Path) -> None:
    server.routes[("POST", "/start_profile")] = lambda req: (503, {"detail": "Service Unavailable"})
    result = run(capsys, args_for(server, profiles))
    assert result["failed"]
    assert result["msg"] == "could not start the profiler: POST /start_profile answered HTTP 503: Service Unavailable"
    assert result["changed"] is False
    assert server.paths()[-1] == "POST /start_profile"


def test_a_start_that_times_out_is_stopped(capsys, server: FaultServer, profiles: Path) -> None:
    def hang(req: Request):
        server.release.wait(60)
        return 200, ""

    server.routes[("POST", "/start_profile")] = hang
    result = run(capsys, args_for(server, profiles, request_timeout=0.5))
    assert result["failed"]
    assert "could not start the profiler" in result["msg"]
    assert "no answer within 0.5s" in result["msg"]
    assert "stop_profile sent in case the start took effect" in result["msg"]
    assert server.paths()[-1] == "POST /stop_profile"
    assert result["changed"] is True


def test_a_truncated_trace_hits_flush_timeout(capsys, server: FaultServer, profiles: Path) -> None:
    def stop_with_truncated_trace(req: Request):
        full = profiles / "full.gz"
        with gzip.open(full, "wt") as fh:
            fh.write(trace_text(5000))
        (profiles / TRACE).write_bytes(full.read_bytes()[:-200])
        full.unlink()
        return 200, ""

    server.routes[("POST", "/stop_profile")] = stop_with_truncated_trace
    started = time.monotonic()
    result = run(capsys, args_for(server, profiles, flush_timeout=1))
    assert time.monotonic() - started < 10
    assert result["failed"]
    assert result["msg"] == (
        f"trace files in {profiles} not complete within 1s: "
        f"{TRACE}: gzip stream ends early (still being written, or truncated) (flush_timeout)"
    )
    assert [tr["name"] for tr in result["traces"]] == [TRACE]


def test_no_trace_written(capsys, server: FaultServer, profiles: Path) -> None:
    server.routes[("POST", "/stop_profile")] = lambda req: (200, "")
    result = run(capsys, args_for(server, profiles, flush_timeout=0.5))
    assert result["failed"]
    assert result["msg"].startswith(f"no new trace file appeared in {profiles} within 0.5s after stop_profile")
    assert "host side of the server's torch_profiler_dir" in result["msg"]


def test_without_profile_dir_no_trace_wait(capsys, server: FaultServer, profiles: Path) -> None:
    result = run(capsys, {"url": server.url})
    assert not result.get("failed"), result
    assert result["traces"] == []
    assert "flush" not in result["timings"]


# ----------------------------------------------------------------------------- workload only
def test_profile_false_sends_only_the_workload(capsys, server: FaultServer, profiles: Path) -> None:
    """The nsys whole-run capture and the smoke test: the same workload, no profiler calls."""
    before = sorted(p.name for p in profiles.iterdir())
    result = run(capsys, {"url": server.url, "profile": False, "prompts": ["one", "two"], "num_requests": 4})
    assert not result.get("failed"), result
    assert result["changed"] is False  # completions change nothing on the server
    assert server.paths() == ["GET /health", "GET /version", "GET /v1/models", *["POST /v1/completions"] * 4]
    assert [c.body["prompt"] for c in server.calls if c.path == "/v1/completions"] == ["one", "two"] * 2
    assert result["stop_attempted"] is False
    assert result["plan"]["start_profile"] is None and result["plan"]["stop_profile"] is None
    assert set(result["timings"]) == {"ready", "workload", "total"}
    assert result["workload"]["completion_tokens"] == 40
    assert sorted(p.name for p in profiles.iterdir()) == before


def test_profile_false_checks_the_workload_as_torch_mode_does(capsys, server: FaultServer) -> None:
    complete = server.routes[("POST", "/v1/completions")]

    def short(req: Request):
        status, body = complete(req)
        body["usage"]["completion_tokens"] = 7
        return status, body

    server.routes[("POST", "/v1/completions")] = short
    result = run(capsys, {"url": server.url, "profile": False})
    assert result["failed"]
    assert result["msg"] == (
        "workload failed: request 0 returned 7 completion tokens, expected 10 (finish_reason=length)"
    )
    assert "POST /stop_profile" not in server.paths()
    # Without ignore_eos (the smoke test) the count is reported, not checked.
    result = run(capsys, {"url": server.url, "profile": False, "ignore_eos": False, "max_tokens": 50})
    assert not result.get("failed"), result
    assert result["workload"]["completion_tokens"] == 7


@pytest.mark.parametrize(
    "extra",
    [
        {"profile_dir": "/tmp"},
        {"profile_prefix": "p1"},
        {"max_iterations": 3},
        {"stop_stale": True},
    ],
)
def test_profile_false_refuses_session_options(capsys, server: FaultServer, extra: dict[str, t.Any]) -> None:
    result = run(capsys, {"url": server.url, "profile": False, **extra})
    assert result["failed"]
    assert result["msg"] == f"profile=false sends no /start_profile: leave out {next(iter(extra))}"
    assert server.calls == []


def test_409_without_stop_stale_fails(capsys, server: FaultServer, profiles: Path) -> None:
    server.active = True  # a session someone else started
    result = run(capsys, args_for(server, profiles))
    assert result["failed"]
    assert result["msg"].startswith(f"a profiling session is already active on {server.url} (HTTP 409")
    assert "stop_stale: true" in result["msg"]
    assert server.paths()[-1] == "POST /start_profile"  # neither stopped nor any completion sent
    assert result["changed"] is False
    assert server.active  # the other session is left alone


def test_409_with_stop_stale_stops_it_first(capsys, server: FaultServer, profiles: Path) -> None:
    server.active = True
    result = run(capsys, args_for(server, profiles, stop_stale=True))
    assert not result.get("failed"), result
    assert server.paths()[3:] == [
        "POST /start_profile",  # 409
        "POST /stop_profile",
        "POST /start_profile",
        "POST /v1/completions",
        "POST /stop_profile",
    ]
    assert any("stopped it (stop_stale)" in w for w in warnings(result))
    _stale, ours = server.written
    assert {tr["name"] for tr in result["traces"]} == set(ours)  # not the stale session's files


# ----------------------------------------------------------------------------- a directory per session
def test_run_subdir_gives_each_session_a_directory_of_its_own(capsys, server: FaultServer, profiles: Path) -> None:
    """The role's servers write through <profile dir>/current (profiler_switch run_link): the module points it
    at <profile dir>/<run_subdir> before each start, so one running server puts each session apart."""
    server.write_dir = profiles / "current"
    profiles.chmod(0o770)
    first = run(capsys, args_for(server, profiles, run_subdir="run1"))
    second = run(capsys, args_for(server, profiles, run_subdir="run2"))
    for result, run_id, names in ((first, "run1", server.written[0]), (second, "run2", server.written[1])):
        assert not result.get("failed"), result
        assert result["run_dir"] == str(profiles / run_id)
        assert sorted(tr["path"] for tr in result["traces"]) == sorted(str(profiles / run_id / n) for n in names)
        assert (profiles / run_id).stat().st_mode & 0o7777 == 0o770  # the capture directory's mode
    assert os.readlink(profiles / "current") == "run2"  # relative: it resolves inside the container too
    assert sorted(p.name for p in (profiles / "run1").iterdir()) == sorted(server.written[0])
    assert (profiles / "rank0.1.pt.trace.json.gz").is_file()  # an earlier file in the parent: untouched


def test_run_subdir_leaves_out_a_stale_sessions_files(capsys, server: FaultServer, profiles: Path) -> None:
    server.write_dir = profiles / "current"
    server.active = True  # a leftover session, stopped by stop_stale after the link points at run1
    result = run(capsys, args_for(server, profiles, run_subdir="run1", stop_stale=True))
    assert not result.get("failed"), result
    stale, ours = server.written
    assert {tr["name"] for tr in result["traces"]} == set(ours)
    assert {p.name for p in (profiles / "run1").iterdir()} == set(stale) | set(ours)


def test_run_subdir_replaces_an_empty_directory_and_refuses_a_full_one(
    capsys, server: FaultServer, profiles: Path
) -> None:
    server.write_dir = profiles / "current"
    (profiles / "current").mkdir()  # a server that made its profiler directory itself, before any capture
    result = run(capsys, args_for(server, profiles, run_subdir="run1"))
    assert not result.get("failed"), result
    assert (profiles / "current").is_symlink()
    (profiles / "current").unlink()
    (profiles / "current").mkdir()
    (profiles / "current" / "old.pt.trace.json.gz").write_bytes(b"")
    result = run(capsys, args_for(server, profiles, run_subdir="run2"))
    assert result["failed"] is True
    assert result["msg"].startswith(f"could not prepare this session's directory in {profiles}: ")
    assert "is a directory with files" in result["msg"] and "move its files away" in result["msg"]
    assert server.paths().count("POST /start_profile") == 1  # the second session never started


def test_run_subdir_in_check_mode_touches_nothing(capsys, server: FaultServer, profiles: Path) -> None:
    before = sorted(p.name for p in profiles.iterdir())
    result = run(capsys, args_for(server, profiles, run_subdir="run1"), check_mode=True)
    assert result["changed"] is True and result["plan"]["run_dir"] == str(profiles / "run1")
    assert sorted(p.name for p in profiles.iterdir()) == before


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        ("0.12.2", ["vLLM 0.12.2 is switched by environment variables", "VLLM_TORCH_PROFILER_DIR="],
         ["--profiler-config '"]),
        ("0.13.0", ["--profiler-config '{\"profiler\":\"torch\"", "deprecated VLLM_TORCH_PROFILER_DIR"], []),
        ("0.32.0", ["start vLLM 0.32.0 with --profiler-config", "environment variables are ignored"],
         ["VLLM_TORCH_PROFILER_DIR="]),
    ],
)  # fmt: skip
def test_404_names_the_switch_of_the_version(capsys, server, profiles, version, *, present, absent) -> None:
    server.version = version
    server.routes[("POST", "/start_profile")] = lambda req: (404, {"detail": "Not Found"})
    result = run(capsys, args_for(server, profiles))
    assert result["failed"]
    assert result["msg"].startswith(
        f"POST {server.url}/start_profile answered 404: the profiler is off on this server."
    )
    for text in present:
        assert text in result["msg"]
    for text in absent:
        assert text not in result["msg"]


def test_start_body_where_the_server_takes_one(capsys, server: FaultServer, profiles: Path) -> None:
    result = run(capsys, args_for(server, profiles, profile_prefix="run-1", delay_iterations=0, max_iterations=5))
    assert not result.get("failed"), result
    assert server.calls[3].body == {"profile_prefix": "run-1", "delay_iterations": 0, "max_iterations": 5}


def test_before_0_32_the_prefix_is_dropped_with_a_warning(capsys, server: FaultServer, profiles: Path) -> None:
    server.version = "0.31.0"
    result = run(capsys, args_for(server, profiles, profile_prefix="run-1"))
    assert not result.get("failed"), result
    assert server.calls[3].path == "/start_profile"
    assert server.calls[3].body is None
    assert any("vLLM 0.31.0 ignores profile_prefix" in w for w in warnings(result))


def test_before_0_32_iteration_limits_fail_before_the_start(capsys, server: FaultServer, profiles: Path) -> None:
    server.version = "0.31.0"
    result = run(capsys, args_for(server, profiles, max_iterations=5))
    assert result["failed"]
    assert result["msg"].startswith("max_iterations per session need vLLM 0.32 or later; this server is 0.31.0")
    assert "POST /start_profile" not in server.paths()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"profile_prefix": "bad prefix"}, "profile_prefix 'bad prefix' is not accepted by vLLM"),
        ({"prompt": ["ok", 3]}, "prompt must be a non-empty string or a non-empty list"),
        ({"prompt": []}, "prompt must be a non-empty string or a non-empty list"),
        ({"max_tokens": 0}, "max_tokens must be at least 1"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"max_iterations": -1}, "max_iterations must be 0 or more"),
        ({"profile_dir": "/nonexistent/profiles"}, "profile_dir /nonexistent/profiles is not a directory on this host"),
        ({"run_subdir": "../up"}, "run_subdir '../up': 1-128 ASCII letters"),
    ],
)
def test_bad_options_fail_before_any_request(capsys, server, profiles, extra, message) -> None:
    result = run(capsys, args_for(server, profiles, **extra))
    assert result["failed"]
    assert message in result["msg"]
    assert server.calls == []


def test_connection_refused(capsys, profiles: Path) -> None:
    url = f"http://127.0.0.1:{podman.free_port()}"
    result = run(capsys, {"url": url, "profile_dir": str(profiles), "ready_timeout": 0.5})
    assert result["failed"]
    assert result["msg"].startswith(f"vLLM at {url} not ready within 0.5s (ready_timeout); last attempt:")
    assert "connection refused" in result["msg"]
    assert result["changed"] is False


# ----------------------------------------------------------------------------- check mode
def test_check_mode_plans_and_touches_nothing(capsys, server: FaultServer, profiles: Path) -> None:
    before = sorted(p.name for p in profiles.iterdir())
    result = run(capsys, args_for(server, profiles, num_requests=3, profile_prefix="p1"), check_mode=True)
    assert not result.get("failed"), result
    assert result["changed"] is True  # a real run would capture
    assert server.paths() == ["GET /version", "GET /v1/models"]
    assert result["vllm_version"] == "0.32.0"
    plan = result["plan"]
    assert plan["start_profile"] == {"path": "/start_profile", "body": {"profile_prefix": "p1"}}
    assert plan["endpoint"] == "/v1/completions"
    assert [r["model"] for r in plan["requests"]] == ["/models/stand-in"] * 3
    assert result["traces"] == []
    assert result["stop_attempted"] is False
    assert sorted(p.name for p in profiles.iterdir()) == before


def test_check_mode_with_the_server_down(capsys, profiles: Path) -> None:
    url = f"http://127.0.0.1:{podman.free_port()}"
    result = run(capsys, {"url": url, "profile_dir": str(profiles), "model": "m"}, check_mode=True)
    assert not result.get("failed"), result
    assert result["vllm_version"] is None
    assert result["plan"]["requests"][0]["model"] == "m"
    assert any("could not read the server" in w for w in warnings(result))


def test_api_key_is_no_log(capsys, server: FaultServer, profiles: Path) -> None:
    result = run(capsys, {**args_for(server, profiles), "api_key": "s3cret-key-123", "_ansible_verbosity": 3})
    assert not result.get("failed"), result
    assert server.calls[-1].headers["Authorization"] == "Bearer s3cret-key-123"
    assert "s3cret-key-123" not in json.dumps(result)


# ----------------------------------------------------------------------------- fetch_dest (action plugin)
FETCH_PLAYBOOK = """
- name: Capture and fetch in one task
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Capture
      vllm_infra.profiling.vllm_profiler_session:
        url: "{{ url }}"
        profile_dir: "{{ profile_dir }}"
        flush_timeout: 5
        fetch_dest: "{{ dest }}"
      register: capture

    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ capture | to_json }}"
        dest: "{{ out }}"
        mode: "0644"
"""


@pytest.mark.parametrize("become", [[], ["--become", "--become-method", "su"]], ids=["copy", "become-slurp"])
def test_fetch_dest_copies_the_traces_in_the_same_task(
    server: FaultServer, profiles: Path, tmp_path: Path, become: list[str]
) -> None:
    """Through real ansible-playbook (the action plugin runs only there): the session's traces, and only
    them, land in fetch_dest, checked against the SHA-1 the module returned; under become they are read
    through slurp (the connection's user may not read them), as ansible.builtin.fetch does. The key-averages
    table vLLM writes beside the traces comes the same way (with a checksum: no slurp module per table)."""
    stop = server.routes[("POST", "/stop_profile")]

    def stop_and_write_a_table(req):
        answer = stop(req)
        if server.written:
            (server.write_dir / "rank0.profiler_out.txt").write_text("---- key averages ----\n")
            server.written[-1].append("rank0.profiler_out.txt")
        return answer

    server.routes[("POST", "/stop_profile")] = stop_and_write_a_table
    playbook = tmp_path / "fetch.yml"
    playbook.write_text(FETCH_PLAYBOOK)
    dest, out = tmp_path / "controller" / "run1", tmp_path / "result.json"
    variables = {"url": server.url, "profile_dir": str(profiles), "dest": str(dest), "out": str(out)}
    proc = ansible.run_playbook(str(playbook), variables, "-v", *become)
    assert proc.returncode == 0, proc.stdout[-3000:]
    result = json.loads(out.read_text())
    assert sorted(p.name for p in dest.iterdir()) == sorted(server.written[0])  # not the earlier session's file
    assert {f["dest"] for f in result["fetched"]} == {str(dest / name) for name in server.written[0]}
    assert {f["via"] for f in result["fetched"]} == {"slurp" if become else "connection"}
    assert [t["name"] for t in result["tables"]] == ["rank0.profiler_out.txt"]
    for output in result["traces"] + result["tables"]:
        copy = dest / output["name"]
        assert output["checksum"] == hashlib.sha1(copy.read_bytes()).hexdigest()
        assert copy.read_bytes() == (profiles / output["name"]).read_bytes()


def test_fetch_dest_is_not_fetched_in_check_mode(server: FaultServer, profiles: Path, tmp_path: Path) -> None:
    playbook = tmp_path / "fetch.yml"
    playbook.write_text(
        FETCH_PLAYBOOK.replace("      register: capture", "      register: capture\n      check_mode: true")
    )
    dest, out = tmp_path / "controller", tmp_path / "result.json"
    variables = {"url": server.url, "profile_dir": str(profiles), "dest": str(dest), "out": str(out)}
    proc = ansible.run_playbook(str(playbook), variables)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "fetched" not in json.loads(out.read_text()) and not dest.exists()


# ----------------------------------------------------------------------------- target Python
@pytest.mark.parametrize(
    "path",
    [
        "plugins/modules/vllm_profiler_session.py",
        "plugins/module_utils/_vllm_api.py",
        "plugins/module_utils/_profiler.py",
        "plugins/module_utils/_version.py",
        "plugins/module_utils/_dnf.py",
        "plugins/module_utils/_container.py",
    ],
)
def test_parses_as_python_3_9(path: str) -> None:
    """The module runs on the vLLM host: RHEL 9's platform Python is 3.9."""
    ast.parse((REPO / path).read_text(), filename=path, feature_version=(3, 9))


# ----------------------------------------------------------------------------- docs vs spec
def test_documentation_matches_the_argument_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCUMENTATION, EXAMPLES and RETURN are valid YAML, and every option is documented with the spec's
    type, default, choices and aliases (what ansible-test's validate-modules checks)."""

    captured = argument_spec(M, monkeypatch)
    doc = yaml.safe_load(M.DOCUMENTATION)
    fragment = yaml.safe_load(vllm_api_fragment.ModuleDocFragment.DOCUMENTATION)
    assert "vllm_infra.profiling.vllm_api" in doc["extends_documentation_fragment"]
    doc["options"].update(fragment["options"])
    assert isinstance(yaml.safe_load(M.EXAMPLES), list)
    assert isinstance(yaml.safe_load(M.RETURN), dict)
    assert set(doc["options"]) == set(captured)
    for name, spec in captured.items():
        option = doc["options"][name]
        assert option["type"] == spec["type"], name
        assert option.get("default") == spec.get("default"), name
        assert option.get("choices") == spec.get("choices"), name
        assert option.get("aliases") == spec.get("aliases"), name
        assert isinstance(option["description"], (str, list)), name
        descriptions = option["description"] if isinstance(option["description"], list) else [option["description"]]
        assert all(isinstance(d, str) for d in descriptions), name
    assert captured["api_key"]["no_log"] is True
    assert doc["attributes"]["idempotent"]["support"] == "none"
