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
