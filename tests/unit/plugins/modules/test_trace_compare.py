# SPDX-License-Identifier: GPL-3.0-or-later
"""The trace_compare module, run as Ansible runs a module, on two real 2-rank H200 captures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
TP2 = REPO / "tests" / "fixtures" / "traces" / "gpu-tp2"
MODULE = "ansible_collections.vllm_infra.profiling.plugins.modules.trace_compare"


def run_module(tmp_path: Path, check_mode: bool = False, **args: object) -> dict:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}))
    env = dict(os.environ, PYTHONPATH=str(REPO / ".build" / "collections"))
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, str(args_file)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_regression_fails_the_task_with_the_changed_figures(tmp_path: Path) -> None:
    res = run_module(tmp_path, baseline=str(TP2 / "eager"), candidate=str(TP2 / "candidate"))
    assert res["failed"] is True
    assert res["msg"] == "regression gate failed: compute time 10.956 ms -> 116.056 ms (+959.3%, limit +10%)"


def test_report_written_once_check_mode_writes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "cmp"
    args = dict(baseline=str(TP2 / "eager"), candidate=str(TP2 / "candidate"), dest=str(dest), fail_on_regression=False)
    checked = run_module(tmp_path, check_mode=True, **args)
    assert checked["changed"] is True and not dest.exists()
    first = run_module(tmp_path, **args)
    assert first["changed"] is True and not first.get("failed") and len(first["failures"]) == 1
    assert sorted(p.name for p in dest.iterdir()) == ["compare.json", "compare.md"]
    assert "**Gate FAILED: compute time" in (dest / "compare.md").read_text()
    assert run_module(tmp_path, **args)["changed"] is False


def test_bad_options_say_why(tmp_path: Path) -> None:
    res = run_module(tmp_path, baseline=str(TP2 / "eager"), candidate=str(TP2 / "eager"), thresholds={"p50": 1})
    assert res["failed"] and res["msg"].startswith("unknown thresholds p50; known: communication_share_pts")
    res = run_module(tmp_path, path=str(TP2), baseline_host="nope")
    assert res["failed"] and "no host directory 'nope'" in res["msg"]


def test_fleet_against_a_baseline_host_through_ansible_playbook(tmp_path: Path) -> None:
    """The call the fleet report makes: every host of a run against one host, reporting without failing."""
    root = tmp_path / "run"
    for host, capture in (("gpu-a", "eager"), ("gpu-b", "candidate")):
        shutil.copytree(TP2 / capture, root / host)
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        textwrap.dedent(
            f"""\
            - name: Compare the hosts of a run with one of them
              hosts: localhost
              gather_facts: false
              tasks:
                - name: Compare
                  vllm_infra.profiling.trace_compare:
                    path: {root}
                    baseline_host: gpu-a
                    fail_on_regression: false
                    dest: {root / "compare"}
                  register: __cmp
                - name: Check
                  ansible.builtin.assert:
                    that:
                      - __cmp is changed
                      - __cmp.comparison.hosts | map(attribute='host') | list == ['gpu-b']
                      - "__cmp.failures == ['gpu-b: compute time 10.956 ms -> 116.056 ms (+959.3%, limit +10%)']"
            """
        )
    )
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO / ".build" / "collections"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build" / "collections"),
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
    )
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         str(playbook)],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (root / "compare" / "compare.md").is_file()
