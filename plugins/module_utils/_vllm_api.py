# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: a small client for vLLM's HTTP API, and the capture workload.

Not a public API: names and signatures may change in any release.

HTTP library. The module runs on the host that serves vLLM, whose Python may or may not have
``requests``. ``backend='auto'`` takes ``requests`` when it imports (a connection kept alive per
worker thread, so a request's latency does not include a new TCP handshake; separate connect and
read timeouts) and otherwise ansible-core's ``open_url`` (always there: it travels with every
module). Both backends give the same answers and raise the same errors here; the module reports the
one it used as ``http_client``. Proxies from the environment are ignored unless ``use_proxy``:
vLLM is normally on the same host, and a proxy hop would be in every latency measured.

Timeouts are "seconds without an answer": vLLM sends nothing until a completion or a
``/stop_profile`` is done, so for those they bound the whole call.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

try:
    import requests
except ImportError:  # pragma: no cover - depends on the target host
    requests = None

HAS_REQUESTS = requests is not None

ENDPOINT_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
DEFAULT_PROMPT = "What is the capital of France?"


class VllmApiError(Exception):
    """A call to the vLLM server failed. ``reason``: connection, timeout, http or invalid."""

    reason = "error"

    def __init__(self, message, url=None, status=None, body=None):
        super().__init__(message)
        self.url = url
        self.status = status
        self.body = body


class VllmConnectionError(VllmApiError):
    reason = "connection"


class VllmTimeoutError(VllmApiError):
    reason = "timeout"


class VllmHttpError(VllmApiError):
    reason = "http"


class VllmInvalidResponse(VllmApiError):
    reason = "invalid"


def _describe_os_error(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is vLLM listening there?)"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return f"connection closed by the server ({exc.__class__.__name__}: {exc})"
    return f"{exc.__class__.__name__}: {exc}"


def _root_cause(exc):
    """Describe the socket-level error under a requests/urllib3 exception chain."""
    seen = exc
    while seen is not None:
        if isinstance(seen, (ConnectionRefusedError, ConnectionResetError, BrokenPipeError)):
            return _describe_os_error(seen)
        if isinstance(seen, http.client.RemoteDisconnected):
            return _describe_os_error(seen)
        seen = seen.__cause__ or seen.__context__
    if "refused" in str(exc):
        return "connection refused (is vLLM listening there?)"
    return str(exc)


class RequestsTransport:
    """HTTP through ``requests``: one session (kept-alive connection) per thread."""

    name = "requests"

    def __init__(self, use_proxy=False, validate_certs=True):
        if requests is None:
            raise VllmApiError("the Python library 'requests' is not installed on this host")
        self.use_proxy = use_proxy
        self.validate_certs = validate_certs
        self._local = threading.local()

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def request(self, method, url, headers, data, timeout):
        kwargs = {"headers": headers, "data": data, "timeout": timeout, "verify": self.validate_certs}
        if not self.use_proxy:
            kwargs["proxies"] = {"http": None, "https": None}
        try:
            resp = self._session().request(method, url, allow_redirects=False, **kwargs)
        except requests.exceptions.Timeout as exc:
            raise VllmTimeoutError(f"{method} {url}: no answer within {timeout:g}s", url=url) from exc
        except requests.exceptions.ConnectionError as exc:
            raise VllmConnectionError(f"{method} {url}: {_root_cause(exc)}", url=url) from exc
        except requests.exceptions.RequestException as exc:
            raise VllmApiError(f"{method} {url}: {exc}", url=url) from exc
        return resp.status_code, resp.text


class OpenUrlTransport:
    """HTTP through ansible-core's ``open_url`` (urllib): a new connection per request."""

    name = "open_url"

    def __init__(self, use_proxy=False, validate_certs=True):
        self.use_proxy = use_proxy
        self.validate_certs = validate_certs

    def request(self, method, url, headers, data, timeout):
        # Imported here: ansible.module_utils.urls costs ~0.06 s to import, and with requests present
        # (the usual case) it is never used.
        from ansible.module_utils.urls import open_url  # noqa: PLC0415

        try:
            resp = open_url(
                url,
                data=data,
                headers=headers,
                method=method,
                timeout=timeout,
                use_proxy=self.use_proxy,
                validate_certs=self.validate_certs,
                follow_redirects="none",
            )
            try:
                status = getattr(resp, "status", None) or resp.getcode()
                return status, resp.read().decode("utf-8", "replace")
            finally:
                resp.close()
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read().decode("utf-8", "replace")
            except Exception:  # the body may be gone with the connection
                body = ""
            return exc.code, body
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise VllmTimeoutError(f"{method} {url}: no answer within {timeout:g}s", url=url) from exc
            text = _describe_os_error(reason) if isinstance(reason, OSError) else str(reason)
            raise VllmConnectionError(f"{method} {url}: {text}", url=url) from exc
        except (socket.timeout, TimeoutError) as exc:  # noqa: UP041 - distinct classes on Python 3.9 targets
            raise VllmTimeoutError(f"{method} {url}: no answer within {timeout:g}s", url=url) from exc
        except (http.client.HTTPException, OSError) as exc:
            raise VllmConnectionError(f"{method} {url}: {_describe_os_error(exc)}", url=url) from exc


def make_transport(backend="auto", use_proxy=False, validate_certs=True):
    """``auto``: requests when importable, else open_url."""
    if backend == "auto":
        backend = "requests" if HAS_REQUESTS else "open_url"
    if backend == "requests":
        return RequestsTransport(use_proxy=use_proxy, validate_certs=validate_certs)
    if backend == "open_url":
        return OpenUrlTransport(use_proxy=use_proxy, validate_certs=validate_certs)
    raise ValueError(f"unknown HTTP backend {backend!r}")


def error_message(text):
    """The human part of a vLLM / FastAPI error body (``error.message``, ``detail``, ``error``)."""
    try:
        data = json.loads(text)
    except ValueError:
        return (text or "").strip()[:500] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if data.get("detail"):
            return str(data["detail"])
        if data.get("message"):
            return str(data["message"])
    return text.strip()[:500]


# The connection options every module that talks to vLLM takes (doc fragment vllm_infra.profiling.vllm_api).
VLLM_CONNECTION_ARGS = {
    "url": {"type": "str", "default": "http://127.0.0.1:8000"},
    "api_key": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "use_proxy": {"type": "bool", "default": False},
    "ready_timeout": {"type": "float", "default": 600, "aliases": ["wait_timeout"]},
    "request_timeout": {"type": "float", "default": 120},
}


def client_from_params(params, **kwargs):
    """A ``VllmClient`` for a module's ``VLLM_CONNECTION_ARGS``."""
    return VllmClient(
        params["url"],
        api_key=params["api_key"],
        timeout=params["request_timeout"],
        use_proxy=params["use_proxy"],
        validate_certs=params["validate_certs"],
        **kwargs,
    )


class VllmClient:
    """The endpoints of one vLLM server that a capture needs."""

    def __init__(
        self, url, *, api_key=None, timeout=120.0, backend="auto", use_proxy=False, validate_certs=True, transport=None
    ):
        self.base = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.transport = transport or make_transport(backend, use_proxy=use_proxy, validate_certs=validate_certs)

    def _headers(self, has_body):
        headers = {"Accept": "application/json"}
        if has_body:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def call(self, method, path, payload=None, timeout=None):
        """One request; the decoded JSON answer (``None`` for an empty body). Raises ``VllmApiError``."""
        url = self.base + path
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        status, text = self.transport.request(
            method, url, self._headers(data is not None), data, timeout or self.timeout
        )
        if not 200 <= status < 300:
            message = f"{method} {path} answered HTTP {status}: {error_message(text)}"
            if status == 401:
                message += " (the server requires an API key: set api_key to one of vLLM's --api-key values)"
            raise VllmHttpError(message, url=url, status=status, body=text)
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise VllmInvalidResponse(f"{method} {path}: answer is not JSON: {text[:200]!r}", url=url) from exc

    def wait_ready(self, timeout, interval=1.0, clock=time.monotonic, sleep=time.sleep):
        """Poll ``GET /health`` until it answers 200; the seconds it took.

        Connection errors, timeouts and 5xx (vLLM still loading) are retried until ``timeout``;
        any other answer is an error at once (not a vLLM server, or a proxy in the way).
        """
        start = clock()
        deadline = start + timeout
        last = None
        while True:
            remaining = deadline - clock()
            try:
                self.call("GET", "/health", timeout=max(1.0, min(self.timeout, remaining, 10.0)))
                return clock() - start
            except VllmHttpError as exc:
                if exc.status is not None and exc.status < 500:
                    raise
                last = exc
            except (VllmConnectionError, VllmTimeoutError) as exc:
                last = exc
            if clock() + interval > deadline:
                raise VllmTimeoutError(
                    f"vLLM at {self.base} not ready within {timeout:g}s (ready_timeout); last attempt: {last}",
                    url=self.base + "/health",
                )
            sleep(interval)

    def version(self, timeout=None):
        data = self.call("GET", "/version", timeout=timeout)
        if not isinstance(data, dict) or not data.get("version"):
            raise VllmInvalidResponse(f"GET /version: unexpected answer {data!r}", url=self.base + "/version")
        return str(data["version"])

    def models(self, timeout=None):
        data = self.call("GET", "/v1/models", timeout=timeout)
        try:
            return [str(entry["id"]) for entry in data["data"]]
        except (TypeError, KeyError) as exc:
            raise VllmInvalidResponse(f"GET /v1/models: unexpected answer {data!r}", url=self.base) from exc

    def start_profile(self, body=None, timeout=None):
        return self.call("POST", "/start_profile", payload=body, timeout=timeout)

    def stop_profile(self, timeout=None):
        return self.call("POST", "/stop_profile", timeout=timeout)


# --------------------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------------------


def build_payloads(prompts, num_requests, max_tokens, endpoint, model, *, ignore_eos=True, extra_body=None):
    """The JSON bodies of the workload's requests; prompts are used in turn.

    ``extra_body`` (sampling parameters such as ``temperature``) goes into every body; the
    module's own fields (model, prompt/messages, max_tokens, ignore_eos, stream) win over it.
    """
    if endpoint not in ENDPOINT_PATHS:
        raise ValueError(f"endpoint must be one of {', '.join(ENDPOINT_PATHS)}")
    if not prompts:
        raise ValueError("at least one prompt is needed")
    payloads = []
    for index in range(num_requests):
        prompt = prompts[index % len(prompts)]
        body = dict(extra_body or {})
        body["model"] = model
        if endpoint == "chat":
            body.pop("prompt", None)
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body.pop("messages", None)
            body["prompt"] = prompt
        body["max_tokens"] = max_tokens
        body["ignore_eos"] = bool(ignore_eos)
        body["stream"] = False
        payloads.append(body)
    return payloads


def run_workload(client, endpoint, payloads, *, concurrency=1, timeout=None, clock=time.monotonic):
    """Send the payloads, ``concurrency`` at a time; one result dict per payload, in order.

    After the first failure no further request is sent (they are reported as skipped): when the
    server has gone, each would otherwise wait for its own timeout.
    """
    path = ENDPOINT_PATHS[endpoint]
    abort = threading.Event()

    def one(index):
        if abort.is_set():
            return {"index": index, "ok": False, "skipped": True, "error": "not sent: an earlier request failed"}
        started = clock()
        try:
            data = client.call("POST", path, payloads[index], timeout=timeout)
        except VllmApiError as exc:
            abort.set()
            return {"index": index, "ok": False, "latency": round(clock() - started, 6), "error": str(exc)}
        latency = round(clock() - started, 6)
        usage = (data or {}).get("usage") or {}
        choices = (data or {}).get("choices") or [{}]
        return {
            "index": index,
            "ok": True,
            "latency": latency,
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "finish_reason": choices[0].get("finish_reason"),
        }

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, range(len(payloads))))


def workload_problems(results, max_tokens, ignore_eos=True):
    """What went wrong, as sentences (empty when all is well).

    With ``ignore_eos`` every request must return exactly ``max_tokens`` completion tokens:
    anything else means the server cut the generation short (max_model_len, an abort) and the
    trace would not show the steps asked for. Without it an empty answer is still a problem.
    """
    problems = []
    failed = [r for r in results if not r["ok"] and not r.get("skipped")]
    skipped = [r for r in results if r.get("skipped")]
    for res in failed:
        problems.append(f"request {res['index']} failed: {res['error']}")
    if skipped:
        problems.append(f"{len(skipped)} of {len(results)} requests not sent after the failure")
    for res in results:
        if res["ok"] and not res.get("completion_tokens"):
            # Even a model that stops at once returns its end-of-sequence token: nothing came back.
            problems.append(f"request {res['index']} returned no completion tokens (an empty answer)")
        elif ignore_eos and res["ok"] and res.get("completion_tokens") != max_tokens:
            problems.append(
                f"request {res['index']} returned {res.get('completion_tokens')} completion tokens, "
                f"expected {max_tokens} (finish_reason={res.get('finish_reason')})"
            )
    return problems


def workload_summary(results):
    done = [r for r in results if r["ok"]]
    latencies = [r["latency"] for r in done]
    return {
        "sent": len([r for r in results if not r.get("skipped")]),
        "succeeded": len(done),
        "prompt_tokens": sum(r.get("prompt_tokens") or 0 for r in done),
        "completion_tokens": sum(r.get("completion_tokens") or 0 for r in done),
        "latency_mean": round(sum(latencies) / len(latencies), 6) if latencies else None,
        "latency_max": max(latencies) if latencies else None,
    }
