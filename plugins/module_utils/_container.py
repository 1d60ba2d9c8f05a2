# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
#
# PRIVATE to the collection: no compatibility guarantees for other collections.
"""Small reads of a podman container's state, shared by the modules that watch one."""

from __future__ import annotations

import json
import typing as t


def parse_state(inspect_json: str) -> str | None:
    """The ``State.Status`` of the first container in ``podman container inspect`` output."""
    try:
        data = json.loads(inspect_json or "[]")
    except ValueError:
        return None
    if not data:
        return None
    return (data[0].get("State") or {}).get("Status")


def container_state(module: t.Any, podman: str, name: str) -> str:
    """``running``, ``exited``, ... or ``missing`` when no such container exists."""
    rc, out, _err = module.run_command([podman, "container", "inspect", name])
    if rc != 0:
        return "missing"
    return parse_state(out) or "unknown"


def container_log_tail(module: t.Any, podman: str, name: str, lines: int = 40) -> str:
    """The container's last log lines (stdout and stderr), or why they could not be read."""
    rc, out, err = module.run_command([podman, "logs", "--tail", str(lines), name])
    if rc != 0:
        return f"(no logs: {err.strip() or 'podman logs failed'})"
    return (out + err).rstrip()


# ------------------------------------------------------------------ graceful stop with escalation
class StopFailed(Exception):
    """A signal could not be sent, or the container could not be removed (podman's own words)."""


def parse_running(inspect_out: str) -> tuple[bool, str]:
    """``(running, exit code)`` from ``podman container inspect --format '{{.State.Running}} {{.State.ExitCode}}'``."""
    words = (inspect_out or "").split()
    return (bool(words) and words[0] == "true", words[1] if len(words) > 1 else "")


def escalate(
    steps: list[tuple[str, float]],
    *,
    is_running: t.Callable[[], bool],
    send: t.Callable[[str], None],
    wait: t.Callable[[float], str | None],
    remove: t.Callable[[], None],
    clock: t.Callable[[], float],
) -> dict[str, t.Any]:
    """Stop a container by sending each step's signal and waiting up to its timeout for the exit; when the
    last step's wait also ends without an exit, kill and remove it.

    ``wait(timeout)`` returns the exit code (a string; "" when podman no longer knows it) or ``None`` when the
    container still runs at the timeout. The result: ``was_running``; ``signal``, the one that ended it
    (``none`` when it was not running, ``SIGKILL`` when it had to be killed); ``sent``, the signals sent in
    order; ``seconds`` from the first signal to the exit (or to the removal); ``exit_code``; ``removed``.
    """
    result: dict[str, t.Any] = {
        "was_running": False,
        "signal": "none",
        "sent": [],
        "seconds": 0.0,
        "exit_code": "",
        "removed": False,
    }
    if not is_running():
        return result
    result["was_running"] = True
    started = clock()
    for signal, timeout in steps:
        send(signal)
        result["sent"].append(signal)
        code = wait(timeout)
        if code is not None:
            result.update(signal=signal, exit_code=code, seconds=round(clock() - started, 1))
            return result
    remove()
    result.update(signal="SIGKILL", removed=True, seconds=round(clock() - started, 1))
    return result
