# SPDX-License-Identifier: GPL-3.0-or-later
"""The default controller destination: where ansible-playbook runs, or the runner's artifacts."""

from __future__ import annotations

from ansible_collections.vllm_infra.profiling.plugins.lookup.default_dest import LookupModule


def test_captures_under_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("AWX_ISOLATED_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert LookupModule().run([]) == [str(tmp_path / "captures")]


def test_captures_under_the_jobs_artifacts_with_ansible_runner(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AWX_ISOLATED_DATA_DIR", str(tmp_path / "artifacts" / "7"))
    assert LookupModule().run([]) == [str(tmp_path / "artifacts" / "7" / "captures")]
