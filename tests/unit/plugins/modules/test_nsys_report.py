# SPDX-License-Identifier: GPL-3.0-or-later
"""The nsys_report module's report-completion wait, run as Ansible runs a module. `nsys stats` itself runs
against a real report made by real nsys in tests/integration/test_nsys_e2e.py."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
MODULE = "ansible_collections.vllm_infra.profiling.plugins.modules.nsys_report"


def run_module(tmp_path: Path, check_mode: bool = False, **args: t.Any) -> dict[str, t.Any]:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}))
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, str(args_file)],
        check=False,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / ".build" / "collections"), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_waits_until_the_report_is_complete(tmp_path: Path) -> None:
    report = tmp_path / "nsys-run1.nsys-rep"
    last_write: list[float] = []

    def write() -> None:
        with open(report, "ab") as handle:
            for _ignored in range(6):
                handle.write(b"\0" * 65536)
                handle.flush()
                last_write[:] = [time.monotonic()]
                time.sleep(0.15)

    thread = threading.Thread(target=write)
    thread.start()
    result = run_module(tmp_path, path=str(report), stats=False, settle=0.5, wait_timeout=20)
    returned = time.monotonic()
    thread.join()
    assert result["changed"] is False and not result.get("failed")
    # The whole report, and not before it had stopped growing for `settle` seconds. Timed from the last write,
    # not from the module's start: on a loaded machine the module's interpreter can start after the writer is done.
    assert result["report"] == {"path": str(report), "size": 6 * 65536, "waited": result["report"]["waited"]}
    assert returned - last_write[0] >= 0.5
    assert result["report"]["waited"] >= 0.5


def test_no_report_fails_with_the_reason(tmp_path: Path) -> None:
    result = run_module(tmp_path, path=str(tmp_path / "absent.nsys-rep"), stats=False, wait_timeout=0.5)
    assert result["failed"] is True
    assert result["msg"] == f"no report was written: {tmp_path}/absent.nsys-rep does not exist after 0.5s"
    (tmp_path / "left.qdstrm").write_bytes(b"qdstrm")
    result = run_module(tmp_path, path=str(tmp_path / "left.nsys-rep"), stats=False, wait_timeout=0.5)
    assert "only" in result["msg"] and "left.qdstrm" in result["msg"]


def test_stats_need_an_nsys(tmp_path: Path) -> None:
    result = run_module(tmp_path, path=str(tmp_path / "r.nsys-rep"))
    assert result["failed"] is True and "nsys_image, nsys_binary" in result["msg"]
    both = run_module(tmp_path, path=str(tmp_path / "r.nsys-rep"), nsys_image="x", nsys_binary="/usr/bin/true")
    assert "mutually exclusive" in both["msg"]


def test_check_mode_predicts_the_summaries_and_writes_nothing(tmp_path: Path) -> None:
    report = tmp_path / "r.nsys-rep"
    report.write_bytes(b"report")
    result = run_module(tmp_path, check_mode=True, path=str(report), nsys_image="localhost/none:x", settle=0.1)
    assert result["changed"] is True and result["manifest"] == str(tmp_path / "r_nsys_stats.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["args.json", "r.nsys-rep"]
