# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for module_utils/_cli.py: the module-bound client running real
executables (small shell scripts written by the tests). Version parsing: test__version.py."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.vllm_infra.profiling.plugins.module_utils._cli import (
    CliClientBase,
    ModuleCliClient,
)


def test_base_client_needs_an_executor() -> None:
    client = CliClientBase("/bin/true", ["--global"])
    assert client.argv("a", "b") == ["/bin/true", "--global", "a", "b"]
    with pytest.raises(NotImplementedError):
        client.call("x")


def _script(path: Path, body: str, executable: bool = True) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def module():
    with patch_module_args({}):
        yield AnsibleModule(argument_spec={})


def test_find_runs_and_reads_version(module, tmp_path: Path) -> None:
    tool = _script(
        tmp_path / "tool",
        'if [ "$1" = --version ]; then echo "tool version 1.19.1"; exit 0; fi\necho "out:$*"; echo "err" >&2; exit 3\n',
    )
    client = ModuleCliClient.find(module, "tool", path=str(tool))
    assert client is not None and client.binary == str(tool)
    result = client.call("a", "b c")
    assert (result.argv, result.rc, result.stdout, result.stderr) == (
        [str(tool), "a", "b c"],
        3,
        "out:a b c\n",
        "err\n",
    )
    assert result.output == "out:a b c\n\nerr\n"
    assert client.version() == (1, 19, 1)


def test_find_on_path(module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path / "vit-cli-probe", "echo hi\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    client = ModuleCliClient.find(module, "vit-cli-probe")
    assert client is not None and client.call().stdout == "hi\n"
    assert ModuleCliClient.find(module, "vit-cli-no-such-tool") is None


def test_find_refuses_missing_or_not_executable(module, tmp_path: Path) -> None:
    assert ModuleCliClient.find(module, "tool", path=str(tmp_path / "absent")) is None
    plain = _script(tmp_path / "plain", "echo\n", executable=False)
    assert ModuleCliClient.find(module, "tool", path=str(plain)) is None


def test_version_unreadable(module, tmp_path: Path) -> None:
    client = ModuleCliClient.find(module, "t", path=str(_script(tmp_path / "t", "exit 1\n")))
    assert client.version() is None


def test_call_checked_fails_the_module(module, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    client = ModuleCliClient.find(module, "t", path=str(_script(tmp_path / "t", 'echo "broken" >&2; exit 7\n')))
    with pytest.raises(SystemExit):
        client.call_checked("go")
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True
    assert result["rc"] == 7
    assert "failed with exit code 7: broken" in result["msg"]
