# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet of STAND-IN GPU hosts for the fleet tests and the prepare_hosts benchmark.

Each host is a privileged container of the host-preparation stand-in images (tools/images/rhel9-standin,
debian12-gpuhost) reached through the containers.podman.podman connection, serving the signed stand-in
package repositories (tools/standin-repos) on its own loopback, exactly as the molecule scenarios run them
(molecule/host_prep_*/molecule.yml); their prepare playbooks add the repositories and load the GPU-check image,
and molecule/resources/vars/standin.yml points the roles at them.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import typing as t
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from . import ansible, podman

REPO = podman.REPO
sys.path.insert(0, str(REPO / "tools" / "standin-repos"))

import build as standin_repos  # noqa: E402  (tools/standin-repos/build.py)

IMAGES = {"rhel9": "vllm-infra-rhel9-standin", "debian12": "vllm-infra-debian12-gpuhost"}
STANDIN_VARS = REPO / "molecule" / "resources" / "vars" / "standin.yml"
# Pipelining: one `podman exec` per module instead of mkdir, copy, exec and clean-up.
ENV = {"ANSIBLE_PIPELINING": "1"}


@contextlib.contextmanager
def hosts(kinds: t.Mapping[str, str]) -> t.Iterator[dict[str, str]]:
    """Start one stand-in host per inventory name (name -> "rhel9" | "debian12"); yield name -> container."""
    www = standin_repos.ensure()
    refs = {kind: podman.ensure_image(image) for kind, image in IMAGES.items() if kind in kinds.values()}
    names = {host: podman.unique_name(f"fleet-{host}") for host in kinds}
    try:
        for host, kind in kinds.items():
            podman.run(
                "run", "-d", "--init", "--privileged", "--name", names[host],
                "-v", f"{www}:/srv/standin-repos:ro",
                refs[kind],
                "python3", "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", "/srv/standin-repos",
            )  # fmt: skip
        yield names
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(podman.remove, names.values()))


def inventory(names: t.Mapping[str, str], host_vars: t.Mapping[str, dict[str, t.Any]] | None = None) -> dict:
    """An inventory of the stand-in hosts (group vllm_hosts), with the stand-in settings as group vars."""
    hostvars = {
        host: {**podman.standin_host_vars(container), **(host_vars or {}).get(host, {})}
        for host, container in names.items()
    }
    for host, extra in (host_vars or {}).items():
        hostvars.setdefault(host, extra)
    group_vars = yaml.safe_load(STANDIN_VARS.read_text())
    return {"all": {"children": {"vllm_hosts": {"hosts": hostvars, "vars": group_vars}}}}


def write_inventory(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def prepare(inventory_path: Path, kinds: t.Mapping[str, str]) -> None:
    """Run the molecule scenarios' prepare playbooks on the hosts of each kind (in parallel)."""

    def one(kind: str) -> subprocess.CompletedProcess[str]:
        limit = ",".join(host for host, k in kinds.items() if k == kind)
        playbook = str(REPO / "molecule" / f"host_prep_{kind}" / "prepare.yml")
        return ansible.run_playbook(playbook, None, "--limit", limit, inventory=inventory_path, **ENV)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for proc in pool.map(one, sorted(set(kinds.values()))):
            if proc.returncode != 0:
                raise AssertionError(f"stand-in prepare failed:\n{proc.stdout[-6000:]}")
