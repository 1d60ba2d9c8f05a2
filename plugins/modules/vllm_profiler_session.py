#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
module: vllm_profiler_session
short_description: Capture one PyTorch-profiler session on a running vLLM server
version_added: 0.1.0
description:
  - Waits until the vLLM server answers C(/health), reads C(/version) and C(/v1/models), starts the
    profiler (C(POST /start_profile)), sends a workload of completions or chat completions, stops the
    profiler (C(POST /stop_profile)) and waits until the new trace files are complete.
  - C(/stop_profile) is always sent once C(/start_profile) was, also when the workload failed.
  - With O(profile=false) it sends only the workload, with the same options and checks (a smoke test, or
    Nsight Systems' whole-run capture, which records everything the server does while it runs).
  - The server must have been started with its profiler on. vLLM 0.5.5 to 0.12 use the environment
    variable C(VLLM_TORCH_PROFILER_DIR), 0.13 to 0.15 accept both it and C(--profiler-config), from
    0.16 only C(--profiler-config) works (the P(vllm_infra.profiling.profiler_switch#filter) filter
    builds either). Otherwise vLLM answers 404 and the module says which switch this version needs.
  - Run it on the host that serves vLLM (or delegate to it), so that O(profile_dir) is the host side of
    the server's profiler directory.
  - HTTP goes through the Python library C(requests) when the host has it, else through ansible-core's
    own C(open_url); RV(http_client) says which.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
  - vllm_infra.profiling.vllm_api
attributes:
  check_mode:
    support: full
    details:
      - Reads C(/version) and C(/v1/models) once if the server answers, and returns RV(plan), the requests
        that would be sent. It sends neither C(/start_profile) nor any completion.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Every run captures a new session and writes new trace files.
options:
  stop_timeout:
    description:
      - Seconds to wait for C(/stop_profile) to answer. vLLM answers only once the traces are written,
        which takes minutes for a large model or with stack capture (vLLM's docs speak of about ten minutes
        for 100 requests of a 70B model).
    type: float
    default: 1800
  flush_timeout:
    description:
      - Seconds to wait, after C(/stop_profile) answered, until the new trace files in O(profile_dir) are complete.
      - When no new trace file appears at all within 60 seconds (or O(flush_timeout) if shorter), the module fails
        early, since vLLM answers C(/stop_profile) only after writing; O(profile_dir) is then not where the
        server writes.
    type: float
    default: 300
  profile:
    description:
      - Start the profiler before the workload and stop it after. When false, the module sends only the
        workload; O(profile_dir), O(profile_prefix), O(delay_iterations), O(max_iterations) and O(stop_stale)
        must then be left out.
    type: bool
    default: true
  profile_dir:
    description:
      - Directory on the host running this module where the server's traces land (the host side of the
        container's C(torch_profiler_dir) or C(VLLM_TORCH_PROFILER_DIR)). Only files written by this session
        are reported (the directory is listed before the start; a stale session stopped by O(stop_stale) is
        listed too).
      - When left out, the module does not wait for trace files and returns an empty RV(traces) (e.g. for
        the C(cuda) profiler kind, whose capture is Nsight Systems').
    type: path
  run_subdir:
    description:
      - Give this session a directory of its own, O(profile_dir)/O(run_subdir) (made with O(profile_dir)'s owner,
        group and mode when missing), and point the link C(current) in O(profile_dir) at it before the start.
        A server whose profiler directory is C(<its profile dir>/current) then writes this session's files
        there and nowhere else (the role's servers; P(vllm_infra.profiling.profiler_switch#filter) with
        C(run_link=true) builds that switch). RV(traces) are read from that directory.
      - The server keeps its definition (and keeps running) from one session to the next.
      - Same rule as O(profile_prefix) (a run id such as C(20261130T040500Z)). Needs O(profile_dir).
    type: str
  profile_prefix:
    description:
      - Prefix of this session's trace file names (vLLM 0.32 and later; older servers ignore it, with a warning).
      - 1-128 ASCII letters, digits, C(.), C(_), C(-), starting with a letter or digit.
    type: str
  delay_iterations:
    description: Engine steps to skip after the start before recording (vLLM 0.32 and later; an error before).
    type: int
  max_iterations:
    description: Engine steps to record at most (vLLM 0.32 and later; an error before).
    type: int
  stop_stale:
    description:
      - When a profiling session is already active (vLLM answers 409), stop it and start this one.
        When false, the module fails instead.
      - vLLM before 0.32 does not tell (a second start is silently ignored there).
    type: bool
    default: false
  fetch_dest:
    description:
      - Directory on the controller to copy this session's traces into (file names kept), in the same task;
        the module's action plugin does it after the capture, checking each copy against the SHA-1 the module
        returns in RV(traces). Not done in check mode or when the capture fails.
      - Left out, the traces stay on the host only.
    type: str
  model:
    description: Model name for the requests. Defaults to the first model the server serves.
    type: str
  prompt:
    description: One prompt (a string) or a list of prompts, used in turn.
    type: raw
    aliases: [prompts]
    default: What is the capital of France?
  max_tokens:
    description: Tokens to generate per request.
    type: int
    default: 10
  num_requests:
    description: Number of requests. Defaults to the number of prompts.
    type: int
  concurrency:
    description: Requests in flight at once (threads).
    type: int
    default: 1
  endpoint:
    description: C(completions) (C(/v1/completions)) or C(chat) (C(/v1/chat/completions)).
    type: str
    choices: [completions, chat]
    default: completions
  ignore_eos:
    description:
      - Ask vLLM to generate exactly O(max_tokens) tokens, ignoring the end-of-sequence token.
      - On by default so that the token count, and with it the number of engine steps in the trace, is the
        same on every run and every model; the module then fails when a request returns fewer tokens.
      - When false, the counts are reported and only an answer without any completion token fails.
    type: bool
    default: true
  extra_body:
    description:
      - More fields for every request body, such as sampling parameters (C(temperature), C(seed)).
      - The module's own fields (model, prompt or messages, max_tokens, ignore_eos, stream) take precedence.
    type: dict
    default: {}
notes:
  - vLLM's profiler endpoints are meant for development only; whoever reaches the port can start a profile
    and fill the disk. Publish the port on 127.0.0.1.
seealso:
  - name: vLLM profiling documentation
    description: How to turn on and read vLLM's torch profiler.
    link: https://docs.vllm.ai/en/latest/contributing/profiling.html
"""

EXAMPLES = r"""
- name: Capture 10 tokens of the default prompt (trace directory mounted from the host)
  vllm_infra.profiling.vllm_profiler_session:
    url: http://127.0.0.1:8000
    profile_dir: /srv/vllm/profiles
  register: capture

- name: Show where the traces are
  ansible.builtin.debug:
    msg: "{{ capture.traces | map(attribute='path') | list }}"

- name: Only the workload, no profiler calls (a smoke test, or under Nsight Systems' whole-run capture)
  vllm_infra.profiling.vllm_profiler_session:
    url: http://127.0.0.1:8000
    profile: false
    prompt: What is the capital of France?
    max_tokens: 50
    ignore_eos: false

- name: A heavier workload through the chat endpoint, stopping a forgotten session first
  vllm_infra.profiling.vllm_profiler_session:
    url: http://127.0.0.1:8000
    api_key: "{{ vllm_api_key }}"
    profile_dir: /srv/vllm/profiles
    profile_prefix: chat-run1
    prompt:
      - Summarise the history of Rome in one paragraph.
      - Write a haiku about GPUs.
    num_requests: 16
    concurrency: 4
    max_tokens: 128
    endpoint: chat
    stop_stale: true
    stop_timeout: 3600
"""

RETURN = r"""
vllm_version:
  description: Version the server reports on C(/version); V(null) in check mode when it does not answer.
  returned: always
  type: str
  sample: 0.32.0
model:
  description: Model the requests were (or would be) sent to.
  returned: always
  type: str
  sample: /models/tiny-qwen3
url:
  description: Base URL of the server.
  returned: always
  type: str
  sample: http://127.0.0.1:8000
http_client:
  description: HTTP library used, C(requests) or C(open_url).
  returned: always
  type: str
  sample: requests
profile_dir:
  description: The O(profile_dir) searched for new traces.
  returned: always
  type: str
  sample: /srv/vllm/profiles
run_dir:
  description:
    - The directory this session's files were (or, in check mode, would be) written to, O(profile_dir)/O(run_subdir),
      or O(profile_dir) without O(run_subdir); V(null) without O(profile_dir).
  returned: always
  type: str
  sample: /var/lib/vllm-profile/traces/20261130T040500Z
traces:
  description: Trace files written by this session, complete (on failure, whatever was found).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Absolute path on the host.
      type: str
      sample: /srv/vllm/profiles/rank0.1795823023642513601.pt.trace.json.gz
    name:
      description: File name.
      type: str
    size:
      description: Size in bytes.
      type: int
    kind:
      description:
        - C(frontend) for the API server's own trace (C(*.async_llm.*)); the worker's rank label
          (C(rank0), C(dp0_pp0_tp0_dcp0_ep0_rank0); C(<instance>-rank-0) of vLLM 0.11 to 0.15 reads as
          C(rank0)); C(graph_capture); or C(worker) when the name has no rank (vLLM before 0.11).
      type: str
      sample: rank0
    rank:
      description: Worker rank, V(null) for the frontend.
      type: int
    compressed:
      description: Whether the file is gzip'd.
      type: bool
    checksum:
      description: SHA-1 of the file, with O(fetch_dest).
      type: str
  sample:
    - path: /srv/vllm/profiles/rank0.1795823023642513601.pt.trace.json.gz
      name: rank0.1795823023642513601.pt.trace.json.gz
      size: 111386
      kind: rank0
      rank: 0
      compressed: true
tables:
  description:
    - Key-average tables written or rewritten by this session, beside the traces
      (C({prefix_}rank0.profiler_out.txt) from vLLM 0.16, C(profiler_out_0.txt) in 0.13 to 0.15).
    - vLLM 0.13 to 0.15 write the same name at every capture; fetch it before the next one.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path on the host.
      type: str
    name:
      description: File name.
      type: str
    size:
      description: Size in bytes.
      type: int
    rank:
      description: Worker rank the table belongs to, V(null) when the name carries none.
      type: int
    checksum:
      description: SHA-1 of the file, with O(fetch_dest).
      type: str
  sample:
    - path: /srv/vllm/profiles/rank0.profiler_out.txt
      name: rank0.profiler_out.txt
      size: 6943
      rank: 0
timings:
  description: Seconds spent in each phase (C(ready), C(start), C(workload), C(stop), C(flush), C(total)).
  returned: always
  type: dict
  sample: {ready: 0.004, start: 0.012, workload: 0.31, stop: 0.29, flush: 0.51, total: 1.14}
requests:
  description: One entry per request, in order.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: Position in the workload.
      type: int
    ok:
      description: Whether the request succeeded.
      type: bool
    latency:
      description: Seconds from sending the request to the full answer.
      type: float
    prompt_tokens:
      description: C(usage.prompt_tokens) of the answer.
      type: int
    completion_tokens:
      description: C(usage.completion_tokens) of the answer.
      type: int
    finish_reason:
      description: C(finish_reason) of the first choice.
      type: str
    error:
      description: Why the request failed or was not sent.
      type: str
      returned: on failure
workload:
  description: Totals over RV(requests).
  returned: always
  type: dict
  sample: {sent: 1, succeeded: 1, prompt_tokens: 7, completion_tokens: 10, latency_mean: 0.31, latency_max: 0.31}
plan:
  description:
    - What the module does or would do (the requests' bodies are in C(requests)).
    - C(start_profile) and C(stop_profile) are V(null) with O(profile=false).
  returned: always
  type: dict
  sample:
    start_profile: {path: /start_profile, body: null}
    endpoint: /v1/completions
    requests:
      - model: /models/tiny-qwen3
        prompt: What is the capital of France?
        max_tokens: 10
        ignore_eos: true
        stream: false
    concurrency: 1
    stop_profile: {path: /stop_profile}
stop_attempted:
  description: Whether C(/stop_profile) was sent.
  returned: always
  type: bool
fetched:
  description: The traces copied to the controller, with O(fetch_dest).
  returned: when O(fetch_dest) is set and the capture succeeded
  type: list
  elements: dict
  contains:
    path:
      description: The trace on the host.
      type: str
    dest:
      description: The copy on the controller.
      type: str
    checksum:
      description: SHA-1 of the copy (the same as the host's file).
      type: str
    via:
      description: C(connection) (copied by the connection) or C(slurp) (read by a module, under become).
      type: str
"""

import contextlib
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils._profiler import (
    NAME_RULE,
    RunDirError,
    TraceWaitTimeout,
    collect_outputs,
    prepare_run_dir,
    profiler_off_hint,
    snapshot,
    start_body_supported,
    valid_profile_prefix,
    wait_for_traces,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._vllm_api import (
    ENDPOINT_PATHS,
    VLLM_CONNECTION_ARGS,
    VllmApiError,
    VllmHttpError,
    VllmTimeoutError,
    build_payloads,
    client_from_params,
    run_workload,
    workload_problems,
    workload_summary,
)

# vLLM answers /stop_profile once its traces are written: nothing new after this long is a wrong directory.
APPEAR_TIMEOUT = 60
# vLLM answers /stop_profile once its traces are written, and each trace's end is checked: the files only have
# to look the same on two polls, so polls this far apart (not 0.5 s) keep the wait from dominating a small capture.
FLUSH_POLL_INTERVAL = 0.1


def workload_failure(problems):
    """The failure message for a workload's problems (the first five, and how many more)."""
    msg = f"workload failed: {'; '.join(problems[:5])}"
    if len(problems) > 5:
        msg += f" (and {len(problems) - 5} more)"
    return msg


class ProfilerSessionManager:
    """One capture: ready -> start -> workload -> stop (always) -> wait for the traces."""

    def __init__(self, module, client, clock=time.monotonic):
        self.module = module
        self.params = module.params
        self.client = client
        self.clock = clock
        self.prompts = self._prompts()
        self.version = None
        self.before = None
        self.model = self.params["model"]
        self.results = {
            "changed": False,
            "url": client.base,
            "http_client": client.transport.name,
            "vllm_version": None,
            "model": self.model,
            "profile_dir": self.params["profile_dir"],
            "run_dir": self.params["profile_dir"],
            "traces": [],
            "tables": [],
            "timings": {},
            "requests": [],
            "workload": workload_summary([]),
            "plan": {},
            "stop_attempted": False,
        }

    # ---------------------------------------------------------------- validation
    def _prompts(self):
        prompt = self.params["prompt"]
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p for p in prompts):
            self.module.fail_json(msg="prompt must be a non-empty string or a non-empty list of non-empty strings")
        return prompts

    def validate(self):
        p = self.params
        if not p["profile"]:
            # Without a session these have nothing to act on: say so rather than ignore them.
            unused = [
                name
                for name in (
                    "profile_dir",
                    "run_subdir",
                    "profile_prefix",
                    "delay_iterations",
                    "max_iterations",
                    "fetch_dest",
                )
                if p[name] is not None
            ] + (["stop_stale"] if p["stop_stale"] else [])
            if unused:
                self.module.fail_json(msg=f"profile=false sends no /start_profile: leave out {', '.join(unused)}")
        for name in ("max_tokens", "concurrency", "num_requests"):
            if p[name] is not None and p[name] < 1:
                self.module.fail_json(msg=f"{name} must be at least 1, got {p[name]}")
        for name in ("delay_iterations", "max_iterations"):
            if p[name] is not None and p[name] < 0:
                self.module.fail_json(msg=f"{name} must be 0 or more, got {p[name]}")
        if p["profile_prefix"] is not None and not valid_profile_prefix(p["profile_prefix"]):
            self.module.fail_json(msg=f"profile_prefix {p['profile_prefix']!r} is not accepted by vLLM: {NAME_RULE}")
        if p["run_subdir"] is not None and p["profile_dir"] is None:
            self.module.fail_json(msg="run_subdir is a directory inside profile_dir: set profile_dir too")
        if p["run_subdir"] is not None and not valid_profile_prefix(p["run_subdir"]):
            self.module.fail_json(msg=f"run_subdir {p['run_subdir']!r}: {NAME_RULE}")
        directory = p["profile_dir"]
        if directory is not None:
            if not os.path.isdir(directory):
                self.module.fail_json(msg=f"profile_dir {directory} is not a directory on this host", **self.results)
            if not os.access(directory, os.R_OK | os.X_OK):
                self.module.fail_json(msg=f"profile_dir {directory} is not readable by this user", **self.results)

    def start_body(self):
        """The /start_profile body this server understands (``None``: no body)."""
        p = self.params
        wanted = {key: p[key] for key in ("profile_prefix", "delay_iterations", "max_iterations") if p[key] is not None}
        if not wanted:
            return None
        if self.version is None or start_body_supported(self.version):
            return wanted
        limits = sorted(key for key in wanted if key != "profile_prefix")
        if limits:
            self.module.fail_json(
                msg=f"{' and '.join(limits)} per session need vLLM 0.32 or later; this server is {self.version}. "
                "Set them when starting the server instead (VLLM_PROFILER_DELAY_ITERS / VLLM_PROFILER_MAX_ITERS "
                "from 0.12, --profiler-config.delay_iterations / .max_iterations from 0.13)",
                **self.results,
            )
        self.module.warn(f"vLLM {self.version} ignores profile_prefix (it came with 0.32); traces keep vLLM's names")
        return None

    # ---------------------------------------------------------------- phases
    def _run_dir(self, check_mode=False):
        """Where this session's files land: a directory of its own (run_subdir) or profile_dir itself."""
        p = self.params
        if p["run_subdir"] is None:
            return p["profile_dir"]
        try:
            run_dir, changed = prepare_run_dir(p["profile_dir"], p["run_subdir"], check_mode=check_mode)
        except (RunDirError, OSError) as exc:
            self.fail(f"could not prepare this session's directory in {p['profile_dir']}: {exc}")
        self.results["run_dir"] = run_dir
        self.results["changed"] = self.results["changed"] or changed
        return run_dir

    def fail(self, msg):
        self.module.fail_json(msg=msg, **self.results)

    def _timed(self, name, started):
        self.results["timings"][name] = round(self.clock() - started, 6)

    def _read_server(self, timeout=None):
        self.version = self.client.version(timeout=timeout)
        self.results["vllm_version"] = self.version
        if self.model is None:
            models = self.client.models(timeout=timeout)
            if not models:
                self.fail(f"{self.client.base}/v1/models lists no model")
            self.model = models[0]
            self.results["model"] = self.model

    def plan(self):
        p = self.params
        num = p["num_requests"] or len(self.prompts)
        payloads = build_payloads(
            self.prompts,
            num,
            p["max_tokens"],
            p["endpoint"],
            self.model or "(served model)",
            ignore_eos=p["ignore_eos"],
            extra_body=p["extra_body"],
        )
        profiled = p["profile"]
        return {
            "start_profile": {"path": "/start_profile", "body": self.start_body()} if profiled else None,
            "endpoint": ENDPOINT_PATHS[p["endpoint"]],
            "requests": payloads,
            "concurrency": p["concurrency"],
            "stop_profile": {"path": "/stop_profile"} if profiled else None,
            "profile_dir": p["profile_dir"],
            "run_dir": self.results["run_dir"],
        }

    def check_mode_run(self):
        self._run_dir(check_mode=True)
        try:
            self._read_server(timeout=min(self.params["request_timeout"], 10.0))
        except VllmApiError as exc:
            self.module.warn(f"check mode: could not read the server ({exc}); the plan uses the options only")
        self.results["plan"] = self.plan()
        self.results["changed"] = self.params["profile"]  # a real run captures a session; completions change nothing
        return self.results

    def start(self):
        body = self.results["plan"]["start_profile"]["body"]
        started = self.clock()
        try:
            self.client.start_profile(body)
        except VllmHttpError as exc:
            if exc.status == 409 and self.params["stop_stale"]:
                self.module.warn(
                    f"a profiling session was already active on {self.client.base}: stopped it (stop_stale)"
                )
                self._stop_or_fail("stopping the stale session")
                if self.results["run_dir"]:  # the stale session's traces are not this session's
                    self.before = snapshot(self.results["run_dir"])
                self._start_once_more(body)
            elif exc.status == 409:
                self.fail(
                    f"a profiling session is already active on {self.client.base} (HTTP 409 from /start_profile). "
                    "Another capture may be running; if it is a leftover, set stop_stale: true or POST /stop_profile"
                )
            elif exc.status == 404:
                self.fail(
                    f"POST {self.client.base}/start_profile answered 404: the profiler is off on this server. "
                    + profiler_off_hint(self.version)
                )
            else:
                self.fail(f"could not start the profiler: {exc}")
        except VllmTimeoutError as exc:
            # A start that timed out may still take effect: stop it, best effort.
            self.results["changed"] = True
            self._stop_quietly()
            self.fail(f"could not start the profiler: {exc} (stop_profile sent in case the start took effect)")
        except VllmApiError as exc:
            self.fail(f"could not start the profiler: {exc}")
        self.results["changed"] = True
        self._timed("start", started)

    def _start_once_more(self, body):
        try:
            self.client.start_profile(body)
        except VllmApiError as exc:
            self.fail(f"could not start the profiler after stopping the stale session: {exc}")

    def _stop_or_fail(self, what):
        self.results["stop_attempted"] = True
        try:
            self.client.stop_profile(timeout=self.params["stop_timeout"])
        except VllmApiError as exc:
            self.fail(f"{what}: {self._stop_error(exc)}")

    def _stop_quietly(self):
        self.results["stop_attempted"] = True
        with contextlib.suppress(VllmApiError):
            self.client.stop_profile(timeout=self.params["stop_timeout"])

    def _stop_error(self, exc):
        if isinstance(exc, VllmTimeoutError):
            return (
                f"POST /stop_profile did not answer within stop_timeout={self.params['stop_timeout']:g}s; vLLM may "
                "still be writing the traces (large models and stack capture take minutes): raise stop_timeout"
            )
        return f"POST /stop_profile failed: {exc}"

    def workload(self):
        plan = self.results["plan"]
        started = self.clock()
        try:
            results = run_workload(
                self.client,
                self.params["endpoint"],
                plan["requests"],
                concurrency=self.params["concurrency"],
                timeout=self.params["request_timeout"],
                clock=self.clock,
            )
        except Exception as exc:  # a bug or an unexpected answer: still stop the profiler
            results = []
            self.results["workload_exception"] = f"{exc.__class__.__name__}: {exc}"
        self._timed("workload", started)
        self.results["requests"] = results
        self.results["workload"] = workload_summary(results)
        problems = workload_problems(results, self.params["max_tokens"], self.params["ignore_eos"])
        if "workload_exception" in self.results:
            problems.insert(0, self.results["workload_exception"])
        return problems

    def stop(self):
        self.results["stop_attempted"] = True
        started = self.clock()
        try:
            self.client.stop_profile(timeout=self.params["stop_timeout"])
            error = None
        except VllmApiError as exc:
            error = self._stop_error(exc)
        self._timed("stop", started)
        return error

    def workload_only(self, total):
        """profile=false: the workload and its checks, no profiler calls."""
        problems = self.workload()
        self._timed("total", total)
        if problems:
            self.fail(workload_failure(problems))
        return self.results

    def run(self):
        self.validate()
        total = self.clock()
        if self.module.check_mode:
            return self.check_mode_run()
        started = self.clock()
        try:
            self.client.wait_ready(self.params["ready_timeout"])
            self._timed("ready", started)
            self._read_server()
        except VllmApiError as exc:
            self.fail(str(exc))
        directory = self._run_dir()
        self.results["plan"] = self.plan()
        if not self.params["profile"]:
            return self.workload_only(total)
        # Files an earlier session left there (a run id used twice) are not this session's.
        self.before = snapshot(directory) if directory else None

        self.start()
        problems = []
        try:
            problems = self.workload()
        finally:
            stop_error = self.stop()  # always, also when the workload failed
        if problems or stop_error:
            if directory:
                self.results["traces"], self.results["tables"] = collect_outputs(directory, self.before)
            self._timed("total", total)
            if problems:
                msg = workload_failure(problems)
                msg += f". /stop_profile was sent{': ' + stop_error if stop_error else ' and answered'}"
                self.fail(msg)
            self.fail(stop_error)

        if directory:
            started = self.clock()
            try:
                self.results["traces"], self.results["tables"] = wait_for_traces(
                    directory,
                    self.before,
                    self.params["flush_timeout"],
                    appear_timeout=APPEAR_TIMEOUT,
                    interval=FLUSH_POLL_INTERVAL,
                )
            except TraceWaitTimeout as exc:
                self.results["traces"] = exc.traces
                self._timed("flush", started)
                self.fail(f"{exc} (flush_timeout)")
            self._timed("flush", started)
            if self.params["fetch_dest"]:
                # For the action plugin, which checks its copies against these (the traces were just read). The
                # tables too: without a checksum the action plugin reads a file through the slurp module, an
                # extra module run (~0.25 s) per table (measured: two tables, ~0.6 s of a ~1.7 s capture task).
                for output in self.results["traces"] + self.results["tables"]:
                    output["checksum"] = self.module.digest_from_file(output["path"], "sha1")
        self._timed("total", total)
        return self.results


def main():
    module = AnsibleModule(
        argument_spec={
            **VLLM_CONNECTION_ARGS,
            "stop_timeout": {"type": "float", "default": 1800},
            "flush_timeout": {"type": "float", "default": 300},
            "profile": {"type": "bool", "default": True},
            "profile_dir": {"type": "path"},
            "run_subdir": {"type": "str"},
            "fetch_dest": {"type": "str"},
            "profile_prefix": {"type": "str"},
            "delay_iterations": {"type": "int"},
            "max_iterations": {"type": "int"},
            "stop_stale": {"type": "bool", "default": False},
            "model": {"type": "str"},
            "prompt": {"type": "raw", "default": "What is the capital of France?", "aliases": ["prompts"]},
            "max_tokens": {"type": "int", "default": 10, "no_log": False},
            "num_requests": {"type": "int"},
            "concurrency": {"type": "int", "default": 1},
            "endpoint": {"type": "str", "choices": ["completions", "chat"], "default": "completions"},
            "ignore_eos": {"type": "bool", "default": True},
            "extra_body": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    module.exit_json(**ProfilerSessionManager(module, client_from_params(module.params)).run())


if __name__ == "__main__":
    main()
