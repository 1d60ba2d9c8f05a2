# SPDX-License-Identifier: GPL-3.0-or-later
"""A local STAND-IN for vLLM's HTTP API, only for faults the real server cannot be made to produce.

Everything that a real vLLM can show (404 with the profiler off, 409, 401, connection refused, a
server killed mid-workload, real traces) is tested against the real vLLM CPU image instead
(tests/integration/). This server answers like vLLM 0.32 by default (same paths, bodies and error
shapes, read from vLLM's source) and lets a test replace any route: a stop that hangs, a 5xx, a
completion that returns fewer tokens, a trace written truncated or slowly.
"""

from __future__ import annotations

import contextlib
import json
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = tuple[int, t.Any]
Route = t.Callable[["Request"], Reply | None]


class Request(t.NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: t.Any


def vllm_error(status: int, message: str, kind: str) -> Reply:
    """vLLM's error body: {"error": {"message", "type", "param", "code"}}."""
    return status, {"error": {"message": message, "type": kind, "param": None, "code": status}}


class FaultServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port>; ``routes[(method, path)]`` may be replaced."""

    def __init__(self, version: str = "0.32.0", model: str = "/models/stand-in") -> None:
        self.version = version
        self.model = model
        self.calls: list[Request] = []
        self.active = False  # a profiling session, as vLLM 0.32 tracks it
        self.release = threading.Event()  # set on close: hanging handlers return
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/health"): lambda req: (200, ""),
            ("GET", "/version"): lambda req: (200, {"version": self.version}),
            ("GET", "/v1/models"): lambda req: (200, {"object": "list", "data": [{"id": self.model}]}),
            ("POST", "/start_profile"): self._start,
            ("POST", "/stop_profile"): self._stop,
            ("POST", "/v1/completions"): self._complete,
            ("POST", "/v1/chat/completions"): self._complete,
        }
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def paths(self) -> list[str]:
        return [f"{c.method} {c.path}" for c in self.calls]

    # vLLM 0.32 behaviour -------------------------------------------------------------
    def _start(self, req: Request) -> Reply:
        if self.active:
            return vllm_error(
                409,
                "A profiling session is already active. Call /stop_profile before starting another session.",
                "Conflict",
            )
        self.active = True
        return 200, ""

    def _stop(self, req: Request) -> Reply:
        self.active = False
        return 200, ""

    def _complete(self, req: Request) -> Reply:
        max_tokens = int(req.body.get("max_tokens") or 16)
        return 200, {
            "object": "text_completion",
            "model": req.body.get("model"),
            "choices": [{"index": 0, "text": "x" * max_tokens, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": max_tokens, "total_tokens": 7 + max_tokens},
        }

    # plumbing --------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: t.Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                req = Request(self.command, self.path, dict(self.headers.items()), body)
                outer.calls.append(req)
                route = outer.routes.get((self.command, self.path))
                reply = route(req) if route else vllm_error(404, "Not Found", "NotFoundError")
                if reply is None:  # the route dropped the connection
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, payload = reply
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

        return Handler

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
