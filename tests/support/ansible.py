# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the collection's playbooks the way a user does: ansible-playbook in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import typing as t
from pathlib import Path

from . import podman

REPO = podman.REPO
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def env(**extra: str) -> dict[str, str]:
    out = podman.env()
    out.update(
        {
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build" / "collections"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
    )
    # Not PYTHONPATH: under ansible-test units it holds a module_utils-only `ansible` package, and
    # ansible-playbook finds this collection through ANSIBLE_COLLECTIONS_PATH anyway.
    out.pop("PYTHONPATH", None)
    out.update(extra)
    return out


def run_playbook(
    playbook: str,
    extra_vars: t.Mapping[str, t.Any] | None = None,
    *args: str,
    inventory: str | Path = REPO / "playbooks" / "inventory" / "localhost.yml",
    check: bool = False,
    timeout: float = 900,
    cwd: str | Path = REPO,
    **env_extra: str,
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook PLAYBOOK -i INVENTORY -e @vars.json ARGS; never raises on failure unless check.

    ``cwd`` is where ansible-playbook runs (the default controller destination is ``<cwd>/captures``);
    a relative PLAYBOOK is taken from the repository."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(dict(extra_vars or {}), fh)
        vars_file = fh.name
    try:
        proc = subprocess.run(
            ["ansible-playbook", str(REPO / playbook), "-i", str(inventory), "-e", f"@{vars_file}", *args],
            cwd=cwd,
            env=env(**env_extra),
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    finally:
        os.unlink(vars_file)
    if check and proc.returncode != 0:
        raise AssertionError(f"ansible-playbook {playbook} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counts per host: {'localhost': {'ok': 12, 'changed': 3, ...}}."""
    return {
        host: {"ok": int(ok), "changed": int(ch), "unreachable": int(un), "failed": int(fa)}
        for host, ok, ch, un, fa in RECAP.findall(output)
    }
