# SPDX-License-Identifier: GPL-3.0-or-later
"""Thin helpers around the real podman CLI for tests.

Other work may run podman on the same machine: every name made here is unique
(``unique_name``) and only those names are ever removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import typing as t
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "harness"))

import images  # noqa: E402  (tools/harness/images.py)

CONTAINERS_CONF = str(REPO / "tools" / "containers" / "containers.conf")


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.setdefault("CONTAINERS_CONF", CONTAINERS_CONF)
    return out


def unique_name(prefix: str) -> str:
    return f"vit-{prefix}-{secrets.token_hex(4)}"


def run(*args: str, check: bool = True, timeout: float = 600, **kw: t.Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["podman", *args], check=False, text=True, capture_output=True, env=env(), timeout=timeout, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {shlex.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def standin_host_vars(container: str) -> dict[str, t.Any]:
    """How Ansible reaches a stand-in host, a container on this machine that runs as root and has no sudo.

    Pipelining on, as ansible.cfg's [ssh_connection] has it for real hosts: one `podman exec` per task, as a
    real host gets one ssh exec. Without it the podman connection makes seven podman calls per task (echo ~,
    mkdir, mount, chmod, run, rm, umount): measured here, 20 tasks cost 17.9 CPU-s against 7.3 with it.
    """
    return {
        "ansible_connection": "containers.podman.podman",
        "ansible_host": container,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_pipelining": True,
        "ansible_become": False,
    }


def inspect(name: str) -> dict[str, t.Any]:
    return json.loads(run("inspect", name).stdout)[0]


def logs_tail(name: str, lines: int = 40) -> str:
    proc = run("logs", "--tail", str(lines), name, check=False)
    return proc.stdout + proc.stderr


def remove(name: str) -> None:
    run("rm", "--force", "--time", "5", name, check=False)


# Where the vllm_profile role keeps a root server's secret fingerprints (roles/vllm_profile/vars/main.yml).
ROLE_STATE_DIR = Path("/var/lib/vllm-profile/state")


def remove_role_server(name: str) -> None:
    """A server the vllm_profile role ran as root: its container, its podman secrets and their fingerprints
    (the role keeps the secrets for its next run; a test's server has none)."""
    remove(name)
    for suffix in ("hf-token", "api-key"):
        run("secret", "rm", f"{name}-{suffix}", check=False)
        (ROLE_STATE_DIR / f"{name}-{suffix}.sha256").unlink(missing_ok=True)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_image(name: str) -> str:
    os.environ.setdefault("CONTAINERS_CONF", CONTAINERS_CONF)
    return images.ensure(name)
