# SPDX-License-Identifier: GPL-3.0-or-later
"""The execution environment (EE) definition, checked with ansible-builder as far as this machine allows.

``ansible-builder create`` generates the real build context from execution-environment.yml; the image build
itself needs a container registry (the base image) and Galaxy (the dependency collections), neither of which is
reachable here, so it is documented (README, docs/awx/) and not run. What the build's stages would do with this
collection is run for real instead: the galaxy stage's ``ansible-galaxy collection install -r requirements.yml``
(dependencies left out) and the builder stage's introspection of meta/execution-environment.yml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support import ansible

REPO = ansible.REPO


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=ansible.env(), text=True, capture_output=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"{cmd} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    """The EE definition copied with its files, the collection built beside it, then `ansible-builder create`."""
    work = tmp_path_factory.mktemp("ee")
    shutil.copy(REPO / "execution-environment.yml", work)
    (work / "ee").mkdir()
    shutil.copy(REPO / "ee" / "requirements.yml", work / "ee")
    run("ansible-galaxy", "collection", "build", "--force", "--output-path", work / "ee" / "collections", REPO)
    run("ansible-builder", "create", "-f", work / "execution-environment.yml", "-c", work / "context", "-v3")
    listing = sorted(str(p.relative_to(work / "context")) for p in (work / "context").rglob("*") if p.is_file())
    print("\nansible-builder create context:\n  " + "\n  ".join(listing))
    return work / "context"


def test_definition_is_version_3_with_the_collection(context: Path) -> None:
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    containerfile = (context / "Containerfile").read_text()
    # ansible-core and ansible-runner for the EE's Python 3.12, the galaxy stage installing requirements.yml,
    # the introspection of the installed collections, and the final image's checks.
    assert 'ARG PYCMD="/usr/bin/python3.12"' in containerfile
    assert "ansible-core>=2.17,<2.22 ansible-runner" in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "introspect.py introspect" in containerfile
    assert "RUN /output/scripts/check_ansible $PYCMD" in containerfile


def test_requirements_point_at_the_tarball_in_the_context(context: Path) -> None:
    """The tarball ee/requirements.yml names is the one the build context carries, at galaxy.yml's version."""
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    (entry,) = requirements["collections"]
    assert entry["type"] == "file"
    assert entry["name"] == f"/build/collections/vllm_infra-profiling-{version}.tar.gz"
    assert (context / "_build" / "collections" / f"vllm_infra-profiling-{version}.tar.gz").is_file()


def test_galaxy_stage_installs_the_collection_and_introspection_finds_its_requirements(
    context: Path, tmp_path: Path
) -> None:
    """The galaxy stage's install (the image's /build is the context's _build/), then the builder's introspect."""
    build = context / "_build"
    requirements = (build / "requirements.yml").read_text().replace("/build/", f"{build}/")
    (tmp_path / "requirements.yml").write_text(requirements)
    installed = tmp_path / "collections"
    # --no-deps: containers.podman, ansible.posix and community.general come from Galaxy in a real build.
    run(
        "ansible-galaxy", "collection", "install", "--force", "--no-deps",
        "-r", tmp_path / "requirements.yml", "-p", installed,
    )  # fmt: skip
    meta = installed / "ansible_collections" / "vllm_infra" / "profiling" / "meta"
    assert (meta / "execution-environment.yml").is_file()
    out = run("ansible-builder", "introspect", "--sanitize", installed).stdout
    print(out)
    deps = yaml.safe_load(out.split("\n", 1)[1])
    python = [line.split("#")[0].strip() for line in deps["python"]]
    system = [line.split("#")[0].strip() for line in deps["system"]]
    # PyYAML is listed too, but ansible-builder drops it: ansible-core already brings it.
    assert python == ["requests>=2.25"]
    assert "openssh-clients [platform:rpm]" in system
    assert "openssh-client [platform:dpkg]" in system


def test_bindep_file_parses_and_selects_ssh_by_default(tmp_path: Path) -> None:
    """bindep (as the builder stage runs it) reads meta/ee-bindep.txt; podman only with its profile."""
    shutil.copy(REPO / "meta" / "ee-bindep.txt", tmp_path / "bindep.txt")
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bindep", "-l", "newline", "-f", "bindep.txt"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    listed = proc.stdout.split()
    assert proc.returncode in (0, 1), proc.stderr
    assert "openssh-client" in listed  # this machine is Debian: the dpkg entry
    assert "podman" not in listed
