# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the repository's execution environment (execution-environment.yml) with ansible-builder, for real.

Only what this machine forces is swapped, each through ansible-builder's own switches (the definition file is
the repository's, unchanged):

- the base image: ``--build-arg EE_BASE_IMAGE=localhost/vllm-infra-ee-base`` (tools/images/ee-base, Debian 13
  made with debootstrap) for quay.io/centos/centos:stream9, since no registry is reachable;
- its Python and package manager: ``PYCMD=/opt/ee-python/bin/python3`` (a venv of Debian 13's python3.13:
  Debian disables ensurepip for its system Python, which ansible-builder's pip_install runs), ``PYPKG=python3.13``
  (the real base gets python3.12 from dnf) and ``PKGMGR=/usr/local/bin/apt-as-dnf`` (apt-get behind dnf's
  ``install``/``clean``);
- where the dependency collections come from: Galaxy is unreachable, so containers.podman, ansible.posix,
  community.general (and its community.library_inventory_filtering_v1) are copied from this machine's
  ``ansible`` bundle into ``ee/collections/`` and listed in ``ee/requirements.yml`` after this collection's
  tarball, and ansible-galaxy runs ``--offline`` -- the documented air-gapped build (README, docs/awx/);
- pip's TLS: outbound HTTPS here is intercepted with a CA only this host trusts, so the host's CA bundle is
  mounted into the build's RUN steps (``--extra-build-cli-args -v ...``); nothing of it stays in the image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from . import ansible, podman

REPO = podman.REPO
# The dependency collections of galaxy.yml, and what they depend on in turn.
DEPENDENCIES = (
    ("containers", "podman"),
    ("ansible", "posix"),
    ("community", "general"),
    ("community", "library_inventory_filtering_v1"),
)
PYTHON = "/opt/ee-python/bin/python3"  # a venv of Debian 13's python3.13 (tools/images/ee-base)
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"


def bundle_collections() -> Path:
    """The ansible_collections directory of the ``ansible`` package this test runs with."""
    import ansible_collections  # noqa: PLC0415  (the pip bundle's namespace package)

    (path,) = {Path(p) for p in ansible_collections.__path__ if (Path(p) / "containers" / "podman").is_dir()}
    return path


def collection_version(path: Path) -> str:
    return json.loads((path / "MANIFEST.json").read_text())["collection_info"]["version"]


def build_dir(work: Path) -> dict[str, str]:
    """The build directory a user would have: the definition, ee/requirements.yml, ee/collections/.

    Returns the collections put there ({"ns.name": version}), this collection first."""
    shutil.copy(REPO / "execution-environment.yml", work)
    collections = work / "ee" / "collections"
    collections.mkdir(parents=True)
    proc = subprocess.run(
        ["ansible-galaxy", "collection", "build", "--force", "--output-path", str(collections), str(REPO)],
        env=ansible.env(),
        text=True,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    made = {"vllm_infra.profiling": version}
    requirements = yaml.safe_load((REPO / "ee" / "requirements.yml").read_text())
    site = bundle_collections()
    for namespace, name in DEPENDENCIES:
        src = site / namespace / name
        shutil.copytree(src, collections / f"{namespace}-{name}", ignore=shutil.ignore_patterns("__pycache__"))
        requirements["collections"].append({"name": f"/build/collections/{namespace}-{name}", "type": "dir"})
        made[f"{namespace}.{name}"] = collection_version(src)
    (work / "ee" / "requirements.yml").write_text(yaml.safe_dump(requirements, sort_keys=False))
    return made


def build(work: Path, tag: str, log: Path) -> float:
    """``ansible-builder build`` in ``work`` (see build_dir); the seconds it took. Output goes to ``log``."""
    base = podman.images.ensure("vllm-infra-ee-base")
    cmd = [
        "ansible-builder", "build", "-v3",
        "-f", str(work / "execution-environment.yml"),
        "-c", str(work / "context"),
        "-t", tag,
        "--build-arg", f"EE_BASE_IMAGE={base}",
        "--build-arg", f"PYCMD={PYTHON}",
        "--build-arg", "PYPKG=python3.13",
        "--build-arg", "PKGMGR=/usr/local/bin/apt-as-dnf",
        "--build-arg", "ANSIBLE_GALAXY_CLI_COLLECTION_OPTS=--offline",
        "--extra-build-cli-args", f"--volume {HOST_CA}:{HOST_CA}:ro",
    ]  # fmt: skip
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, env=ansible.env(), stdout=out, stderr=subprocess.STDOUT, text=True, check=False)
    took = time.monotonic() - start
    assert proc.returncode == 0, f"ansible-builder build failed ({proc.returncode}):\n{log.read_text()[-6000:]}"
    return took
