# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for module_utils/_vllm_api.py.

HTTP goes to tests/support/fault_server.py, a local stand-in that answers like vLLM 0.32, used here only
for what the real server cannot be made to do on demand (5xx, answers that hang, dropped connections,
short completions). The real server is exercised in tests/integration/test_vllm_profiler_session_real.py,
with both HTTP backends. Every test here runs with both backends: requests and ansible-core's open_url.
"""

from __future__ import annotations

import threading
import time

import pytest
from support import podman
from support.fault_server import FaultServer, vllm_error

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _vllm_api as A

BACKENDS = ["requests", "open_url"]


@pytest.fixture
def server():
    with FaultServer() as srv:
        yield srv


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def client(srv: FaultServer, backend: str, **kw) -> A.VllmClient:
    return A.VllmClient(srv.url, backend=backend, **kw)


def test_auto_backend_prefers_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    assert A.make_transport("auto").name == "requests"
    monkeypatch.setattr(A, "HAS_REQUESTS", False)  # as on a host without python3-requests
    assert A.make_transport("auto").name == "open_url"
    with pytest.raises(ValueError, match="unknown HTTP backend"):
        A.make_transport("curl")


def test_reads_version_models_and_sends_the_key(server: FaultServer, backend: str) -> None:
    c = client(server, backend, api_key="s3cret")
    assert c.transport.name == backend
    assert c.version() == "0.32.0"
    assert c.models() == ["/models/stand-in"]
    assert c.start_profile() is None  # 200 with an empty body
    assert server.calls[-1].headers["Authorization"] == "Bearer s3cret"
    assert server.calls[-1].body is None  # no body unless asked for
    c.stop_profile()
    c.start_profile({"profile_prefix": "run1", "max_iterations": 3})
    assert server.calls[-1].body == {"profile_prefix": "run1", "max_iterations": 3}
    assert server.calls[-1].headers["Content-Type"] == "application/json"


def test_no_authorization_header_without_a_key(server: FaultServer, backend: str) -> None:
    client(server, backend).version()
    assert "Authorization" not in server.calls[-1].headers


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (vllm_error(500, "EngineCore died", "InternalServerError"), "HTTP 500: EngineCore died"),
        ((503, {"detail": "Service Unavailable"}), "HTTP 503: Service Unavailable"),
        ((502, "<html>Bad Gateway</html>"), "HTTP 502: <html>Bad Gateway</html>"),
        ((401, {"error": "Unauthorized"}), "HTTP 401: Unauthorized (the server requires an API key: set api_key"),
        ((500, ""), "HTTP 500: (empty body)"),
    ],
)
def test_http_errors_carry_status_and_message(server: FaultServer, backend: str, reply, expected: str) -> None:
    server.routes[("POST", "/stop_profile")] = lambda req: reply
    with pytest.raises(A.VllmHttpError) as excinfo:
        client(server, backend).stop_profile()
    assert excinfo.value.status == reply[0]
    assert expected in str(excinfo.value)
    assert str(excinfo.value).startswith("POST /stop_profile answered")


def test_connection_refused(backend: str) -> None:
    port = podman.free_port()  # bound and released: nothing listens there
    c = A.VllmClient(f"http://127.0.0.1:{port}", backend=backend)
    with pytest.raises(A.VllmConnectionError, match="connection refused"):
        c.version()


def test_an_answer_that_never_comes_times_out(server: FaultServer, backend: str) -> None:
    def hang(req):
        server.release.wait(30)  # until the server closes
        return 200, ""

    server.routes[("POST", "/stop_profile")] = hang
    started = time.monotonic()
    with pytest.raises(A.VllmTimeoutError, match=r"POST .*/stop_profile: no answer within 0.5s"):
        client(server, backend).stop_profile(timeout=0.5)
    assert time.monotonic() - started < 5


def test_a_dropped_connection_is_a_connection_error(server: FaultServer, backend: str) -> None:
    server.routes[("POST", "/v1/completions")] = lambda req: None  # closes the socket without an answer
    with pytest.raises(A.VllmConnectionError, match=r"connection closed by the server"):
        client(server, backend).call("POST", "/v1/completions", {"prompt": "x", "max_tokens": 1})


def test_a_non_json_answer_is_invalid(server: FaultServer, backend: str) -> None:
    server.routes[("GET", "/version")] = lambda req: (200, "<html>not vLLM</html>")
    with pytest.raises(A.VllmInvalidResponse, match="not JSON"):
        client(server, backend).version()


def test_proxy_environment_is_ignored_unless_use_proxy(
    server: FaultServer, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{podman.free_port()}"
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, dead)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert client(server, backend).version() == "0.32.0"
    with pytest.raises(A.VllmApiError):
        client(server, backend, use_proxy=True).version()


def test_wait_ready_retries_until_health_answers(server: FaultServer, backend: str) -> None:
    answers = iter([(503, ""), (503, ""), (200, "")])
    server.routes[("GET", "/health")] = lambda req: next(answers)
    waited = client(server, backend).wait_ready(timeout=10, interval=0.05)
    assert 0 < waited < 5
    assert server.paths().count("GET /health") == 3


def test_wait_ready_gives_up_with_the_last_error(backend: str) -> None:
    port = podman.free_port()
    c = A.VllmClient(f"http://127.0.0.1:{port}", backend=backend)
    started = time.monotonic()
    with pytest.raises(A.VllmTimeoutError, match=r"not ready within 0.6s \(ready_timeout\); last attempt: .*refused"):
        c.wait_ready(timeout=0.6, interval=0.1)
    assert time.monotonic() - started < 3


def test_wait_ready_fails_at_once_on_a_4xx(server: FaultServer, backend: str) -> None:
    server.routes[("GET", "/health")] = lambda req: (404, {"detail": "Not Found"})
    with pytest.raises(A.VllmHttpError, match="404"):
        client(server, backend).wait_ready(timeout=30, interval=0.05)
    assert server.paths() == ["GET /health"]


# ----------------------------------------------------------------------------- workload
def test_build_payloads_completions_and_chat() -> None:
    prompts = ["a", "b"]
    payloads = A.build_payloads(prompts, 3, 10, "completions", "m", extra_body={"temperature": 0, "max_tokens": 99})
    assert [p["prompt"] for p in payloads] == ["a", "b", "a"]
    assert payloads[0] == {
        "temperature": 0,
        "model": "m",
        "prompt": "a",
        "max_tokens": 10,  # the module's own fields win over extra_body
        "ignore_eos": True,
        "stream": False,
    }
    chat = A.build_payloads(["q"], 1, 5, "chat", "m", ignore_eos=False, extra_body={"prompt": "stray"})
    assert chat == [
        {"model": "m", "messages": [{"role": "user", "content": "q"}], "max_tokens": 5, "ignore_eos": False,
         "stream": False}
    ]  # fmt: skip
    with pytest.raises(ValueError, match="endpoint"):
        A.build_payloads(prompts, 1, 1, "embeddings", "m")


def test_run_workload_keeps_concurrency_requests_in_flight(server: FaultServer, backend: str) -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    complete = server.routes[("POST", "/v1/completions")]

    def slow(req):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
        return complete(req)

    server.routes[("POST", "/v1/completions")] = slow
    payloads = A.build_payloads(["p"], 6, 4, "completions", "m")
    results = A.run_workload(client(server, backend), "completions", payloads, concurrency=3)
    assert state["max"] == 3
    assert [r["index"] for r in results] == list(range(6))
    assert all(r["ok"] and r["completion_tokens"] == 4 and r["latency"] >= 0.2 for r in results)
    assert A.workload_problems(results, 4) == []
    summary = A.workload_summary(results)
    assert (summary["sent"], summary["succeeded"], summary["completion_tokens"]) == (6, 6, 24)


def test_run_workload_stops_sending_after_a_failure(server: FaultServer, backend: str) -> None:
    count = {"n": 0}
    complete = server.routes[("POST", "/v1/completions")]

    def third_fails(req):
        count["n"] += 1
        if count["n"] == 3:
            return vllm_error(500, "engine dead", "InternalServerError")
        return complete(req)

    server.routes[("POST", "/v1/completions")] = third_fails
    payloads = A.build_payloads(["p"], 10, 4, "completions", "m")
    results = A.run_workload(client(server, backend), "completions", payloads, concurrency=1)
    assert [r["ok"] for r in results] == [True, True] + [False] * 8
    assert results[2]["error"].endswith("HTTP 500: engine dead")
    assert all(r.get("skipped") for r in results[3:])
    assert server.paths().count("POST /v1/completions") == 3
    problems = A.workload_problems(results, 4)
    assert problems[0].startswith("request 2 failed: POST /v1/completions answered HTTP 500")
    assert problems[1] == "7 of 10 requests not sent after the failure"


def test_workload_problems_flags_short_completions() -> None:
    results = [
        {
            "index": 0,
            "ok": True,
            "latency": 0.1,
            "prompt_tokens": 5,
            "completion_tokens": 10,
            "finish_reason": "length",
        },
        {"index": 1, "ok": True, "latency": 0.1, "prompt_tokens": 5, "completion_tokens": 7, "finish_reason": "stop"},
    ]
    assert A.workload_problems(results, 10, ignore_eos=True) == [
        "request 1 returned 7 completion tokens, expected 10 (finish_reason=stop)"
    ]
    assert A.workload_problems(results, 10, ignore_eos=False) == []
    # An empty answer fails either way (the smoke test's check).
    empty = [{"index": 0, "ok": True, "latency": 0.1, "prompt_tokens": 5, "completion_tokens": 0}]
    expected = ["request 0 returned no completion tokens (an empty answer)"]
    assert A.workload_problems(empty, 10, ignore_eos=False) == expected
    assert A.workload_problems(empty, 10, ignore_eos=True) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"error":{"message":"boom","type":"X","code":500}}', "boom"),
        ('{"error":"Unauthorized"}', "Unauthorized"),
        ('{"detail":"Not Found"}', "Not Found"),
        ('{"message":"m"}', "m"),
        ("plain text\n", "plain text"),
        ("", "(empty body)"),
    ],
)
def test_error_message(text: str, message: str) -> None:
    assert A.error_message(text) == message
