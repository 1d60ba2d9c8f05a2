# SPDX-License-Identifier: GPL-3.0-or-later
"""The image_archive module, run as Ansible runs it, against real podman: save, read, load, and the no-ops."""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from support import podman

pytestmark = pytest.mark.podman

REPO = Path(__file__).resolve().parents[4]
MODULE = "ansible_collections.vllm_infra.profiling.plugins.modules.image_archive"
DEBIAN = "localhost/vllm-infra-debian12:latest"


def run_module(tmp_path: Path, check_mode: bool = False, **args: t.Any) -> dict[str, t.Any]:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}))
    env = podman.env()
    env["PYTHONPATH"] = str(REPO / ".build" / "collections")
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, str(args_file)], check=False, capture_output=True, text=True, env=env
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_save_read_load_and_the_noops(tmp_path: Path) -> None:
    podman.ensure_image("vllm-infra-debian12")
    ref = f"localhost/{podman.unique_name('archive')}:1"
    image_id = podman.run("image", "inspect", "--format", "{{.Id}}", DEBIAN).stdout.strip()
    podman.run("tag", DEBIAN, ref)
    path = tmp_path / "images" / "a.tar"
    try:
        predicted = run_module(tmp_path, check_mode=True, path=str(path), state="saved", images=[ref])
        assert predicted["changed"] is True and predicted["saved"] is True and not path.exists()
        saved = run_module(tmp_path, path=str(path), state="saved", images=[ref])
        assert saved["changed"] is True and path.is_file()
        again = run_module(tmp_path, path=str(path), state="saved", images=[ref])
        assert again["changed"] is False and again["missing"] == []

        read = run_module(tmp_path, path=str(path), state="read")
        assert read["changed"] is False and read["images"] == [{"id": image_id, "names": [ref]}]

        present = run_module(tmp_path, path=str(path), state="loaded")
        assert present["changed"] is False and present["loaded"] is False  # the host has it: no load
        podman.run("rmi", ref)  # the tag only; the image stays under its other name
        would = run_module(tmp_path, check_mode=True, path=str(path), state="loaded")
        assert would["changed"] is True and would["missing"] == [ref]
        assert podman.run("image", "exists", ref, check=False).returncode == 1
        loaded = run_module(tmp_path, path=str(path), state="loaded")
        assert loaded["changed"] is True and loaded["loaded"] is True
        assert podman.run("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == image_id
    finally:
        podman.run("rmi", ref, check=False)


def test_failures_say_why(tmp_path: Path) -> None:
    missing = run_module(tmp_path, path=str(tmp_path / "none.tar"), state="loaded")
    assert missing["failed"] is True and "is not on this host" in missing["msg"]
    (tmp_path / "junk.tar").write_text("junk")
    junk = run_module(tmp_path, path=str(tmp_path / "junk.tar"), state="read")
    assert junk["failed"] is True and "cannot be read as an image archive" in junk["msg"]
    absent = run_module(tmp_path, path=str(tmp_path / "x.tar"), state="saved", images=["localhost/vit-no-such:1"])
    assert absent["failed"] is True and "not in this host's podman storage" in absent["msg"]
