# SPDX-License-Identifier: GPL-3.0-or-later
"""registry_image and registry_login, run as Ansible runs them, against real podman, without a registry: the
decisions that need none (up to date, labels differ, local-only names, check mode). The pulls, pushes and logins
against a real registry are in tests/integration/test_registry.py."""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from support import podman

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _registry

pytestmark = pytest.mark.podman

REPO = Path(__file__).resolve().parents[4]
DEBIAN = "localhost/vllm-infra-debian12:latest"


def run_module(module: str, tmp_path: Path, check_mode: bool = False, **args: t.Any) -> dict[str, t.Any]:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}))
    env = podman.env()
    env["PYTHONPATH"] = str(REPO / ".build" / "collections")
    proc = subprocess.run(
        [sys.executable, "-m", f"ansible_collections.vllm_infra.profiling.plugins.modules.{module}", str(args_file)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_registry_image_decisions(tmp_path: Path) -> None:
    podman.ensure_image("vllm-infra-debian12")
    ref = f"127.0.0.1:9/{podman.unique_name('regimg')}:1"  # nothing listens on port 9
    podman.run("tag", DEBIAN, ref)
    try:
        same = run_module("registry_image", tmp_path, name=ref)
        assert same["changed"] is False and same["reason"] == "up to date" and same["registry"] == "127.0.0.1:9"
        wanted = {"vllm_infra.profiling.nsys.hash": "abc"}
        would = run_module("registry_image", tmp_path, check_mode=True, name=ref, labels=wanted)
        assert would["changed"] is True and would["pulled"] is True
        assert would["reason"] == "labels differ: vllm_infra.profiling.nsys.hash=None"
        refused = run_module("registry_image", tmp_path, name=ref, labels=wanted)
        assert refused["failed"] is True and refused["kind"] == "unreachable", refused
        assert refused["msg"].startswith(f"The pull of {ref} failed: 127.0.0.1:9 cannot be reached from this host")
    finally:
        podman.run("rmi", ref, check=False)
    local = run_module("registry_image", tmp_path, name="localhost/vit-never-there:1")
    assert local["failed"] is True and "is a local image name (localhost/...), never pulled" in local["msg"]


def test_registry_login_check_mode_compares_the_stored_entry(tmp_path: Path) -> None:
    auth = tmp_path / "auth.json"
    args = {"registry": "r.example:5000", "username": "op", "password": "s3cret", "auth_file": str(auth)}
    assert run_module("registry_login", tmp_path, check_mode=True, **args)["changed"] is True
    auth.write_text(json.dumps({"auths": {"r.example:5000": {"auth": _registry.encode_auth("op", "s3cret")}}}))
    same = run_module("registry_login", tmp_path, check_mode=True, **args)
    assert same["changed"] is False and "s3cret" not in json.dumps(same)
    other = run_module("registry_login", tmp_path, check_mode=True, **{**args, "password": "rotated"})
    assert other["changed"] is True
    refused = run_module("registry_login", tmp_path, **{**args, "registry": "127.0.0.1:9"})
    assert refused["failed"] is True and refused["msg"].startswith("The login failed: 127.0.0.1:9 cannot be reached")
    assert "s3cret" not in json.dumps(refused)
