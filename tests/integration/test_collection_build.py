# SPDX-License-Identifier: GPL-3.0-or-later
"""`ansible-galaxy collection build` makes a tarball that installs and is usable from a plain path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def clean_env(collections_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collections_path)
    return env


def test_build_and_install(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run(
        ["ansible-galaxy", "collection", "build", "--output-path", str(out), str(REPO)],
        check=True,
        capture_output=True,
        text=True,
    )
    (tarball,) = out.glob("vllm_infra-profiling-*.tar.gz")
    listing = subprocess.run(["tar", "tzf", str(tarball)], check=True, capture_output=True, text=True).stdout
    assert "plugins/modules/vllm_profiler_session.py" in listing
    assert "roles/vllm_profile/meta/argument_specs.yml" in listing
    for unwanted in (".venv/", ".build/", "tools/", "ansible.cfg", "captures/"):
        assert f"\n{unwanted}" not in f"\n{listing}", unwanted

    dest = tmp_path / "collections"
    env = clean_env(dest)
    subprocess.run(
        ["ansible-galaxy", "collection", "install", "--offline", "--no-deps", "-p", str(dest), str(tarball)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    installed = dest / "ansible_collections" / "vllm_infra" / "profiling"
    assert (installed / "MANIFEST.json").is_file()
    modules = subprocess.run(
        ["ansible-doc", "-l", "vllm_infra.profiling"], check=True, capture_output=True, text=True, cwd=tmp_path, env=env
    ).stdout
    assert "vllm_infra.profiling.vllm_profiler_session" in modules
    syntax = subprocess.run(
        ["ansible-playbook", "--syntax-check", "vllm_infra.profiling.profile_torch"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    assert str(installed / "playbooks" / "profile_torch.yml") in syntax.stdout
