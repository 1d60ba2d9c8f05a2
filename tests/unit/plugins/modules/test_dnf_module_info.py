# SPDX-License-Identifier: GPL-3.0-or-later
"""The dnf_module_info module, in-process, running this machine's real dnf 4.14 (RHEL 9's dnf stack) against the
stand-in rhel9 CUDA repository (tools/standin-repos). A `dnf` on PATH adds only where dnf looks: an empty
install root of the test's own, no system repositories, the stand-in repository and RHEL 9's platform id. What
differs from RHEL: the repository's packages are stand-ins (NVIDIA's names and versions), and gpgcheck is off.
The role runs it on the RHEL 9 stand-in host in molecule/host_prep_rhel9."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.vllm_infra.profiling.plugins.modules import dnf_module_info as M

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO / "tools" / "standin-repos"))
import build as standin_repos  # noqa: E402  (tools/standin-repos/build.py)

pytestmark = pytest.mark.skipif(shutil.which("dnf") is None, reason="needs dnf (tools/setup.sh installs it)")


@pytest.fixture
def dnf_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., subprocess.CompletedProcess[str]]:
    repo = standin_repos.ensure() / "compute" / "cuda" / "repos" / "rhel9" / "x86_64"
    root = tmp_path / "root"
    root.mkdir()
    argv = [
        shutil.which("dnf"), "--installroot", str(root), "--releasever", "9", "--setopt=reposdir=/dev/null",
        "--setopt=module_platform_id=platform:el9", "--nogpgcheck", "--disableplugin=*",
        f"--repofrompath=cuda-rhel9-x86_64,file://{repo}",
    ]  # fmt: skip
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "dnf"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(f"'{a}'" for a in argv) + ' "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")

    def dnf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(wrapper), "-y", "-q", *args], capture_output=True, text=True, check=True)

    return dnf


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> dict[str, t.Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        M.main()
    return json.loads(capsys.readouterr().out)


def test_streams_enabled_and_offered_versions(capsys, dnf_root) -> None:
    args = {"name": "nvidia-driver", "stream": "open-dkms", "package": "nvidia-open"}
    result = run(capsys, args)
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["streams"] == ["latest-dkms", "open-dkms", "575-dkms", "575-open", "580-dkms", "580-open"]
    assert (result["enabled"], result["default"]) == ("", "latest-dkms")
    assert result["versions"] == ["575.57.08-1.el9", "580.105.08-1.el9", "580.95.05-1.el9"]
    assert "nvidia-open-3:580.95.05-1.el9.noarch" in result["artifacts"]
    dnf_root("module", "enable", "nvidia-driver:open-dkms")
    assert run(capsys, args)["enabled"] == "open-dkms"


def test_a_module_no_repository_offers(capsys, dnf_root) -> None:
    result = run(capsys, {"name": "nvidia-nothing", "stream": "open-dkms"})
    assert not result.get("failed"), result
    assert (result["streams"], result["artifacts"], result["versions"]) == ([], [], [])
    assert result["list_output"] == "Error: No matching Modules to list"


def test_a_stream_the_module_lacks_reads_no_artifacts(capsys, dnf_root) -> None:
    result = run(capsys, {"name": "nvidia-driver", "stream": "999-open", "package": "nvidia-open"})
    assert not result.get("failed"), result
    assert len(result["streams"]) == 6 and result["artifacts"] == [] and result["versions"] == []
