# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/vllm-versions.md's matrix is generated from plugins/module_utils/_profiler.py, and the check
(tools/docs/vllm_versions.py --check, run by the `docs` quality gate) fails when it is stale."""

from __future__ import annotations

import sys

from support import ansible

sys.path.insert(0, str(ansible.REPO / "tools" / "docs"))
import vllm_versions  # tools/docs/vllm_versions.py


def test_the_matrix_is_up_to_date() -> None:
    assert vllm_versions.main(["--check"]) == 0


def test_the_check_fails_when_the_table_changes(monkeypatch, capsys) -> None:
    real = vllm_versions.load_profiler

    def changed():
        profiler = real()
        profiler.RELEASES = (*profiler.RELEASES, ("0.15.0", "run", "a release that never ran here"))
        return profiler

    monkeypatch.setattr(vllm_versions, "load_profiler", changed)
    assert vllm_versions.main(["--check"]) == 1
    out = capsys.readouterr()
    assert "+| 0.15.0 |" in out.out
    assert "docs/vllm-versions.md is out of date" in out.err


def test_the_matrix_shows_what_the_role_sets_per_era() -> None:
    rows = {
        line.split(" | ")[0].strip("| "): line
        for line in vllm_versions.DOC.read_text().splitlines()
        if line.startswith("| 0.")
    }
    assert "`VLLM_TORCH_PROFILER_WITH_STACK=0`" in rows["0.10.1.1"]
    assert "--profiler-config" not in rows["0.10.1.1"]
    assert "refused" in rows["0.9.2"]  # stacks cannot be switched off before 0.10.1
    assert "**run here**" in rows["0.14.1"] and "**run here**" in rows["0.32.0"]
    assert "`config`" in rows["0.16.0"]
