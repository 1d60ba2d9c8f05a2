# SPDX-License-Identifier: GPL-3.0-or-later
"""A STAND-IN podman 5 GPU host: a bare Debian 13 container (tools/images/debian13-host) for the role's tests.

What it stands for: a fresh RHEL 9.5+ host, reached over Ansible, on which podman 5 is not installed yet (the
role installs it: ``vllm_profile_install_prerequisites``, as ``dnf install podman`` would). Debian 13's podman
is 5.4.2, the real thing.
What still differs from RHEL 9 is listed in tools/images/debian13-host/Containerfile (Debian userland, apt,
no SELinux, runc, cgroups v1, no GPU).

Each host is a privileged container of its own unique name, reached through the containers.podman.podman
connection (``inventory``), with

* a podman volume of its own as the inner graph root (overlay cannot stack on the container's overlay root);
* the OUTER podman's image store mounted read-only and listed as an ``additionalimagestores`` entry of the
  inner storage.conf: the harness's 2.5 GB vLLM image (localhost/vllm-cpu-tiny) is visible to the inner
  podman the moment podman is installed, without a copy. Where the outer store cannot serve (it is not an
  overlay store), ``make_available`` falls back to ``podman save | podman load``.

The container and its volume are removed afterwards; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shlex
import subprocess
import time
import typing as t
from pathlib import Path

from . import podman

IMAGE = "vllm-infra-debian13-host"
# Where the outer store is mounted inside the host (read-only).
OUTER_STORE = "/var/lib/outer-storage"
# Podman 5 warns about cgroups v1 on every command (this sandbox; RHEL 9 uses cgroups v2): quiet for our own
# commands. The role's commands (through the connection) still see it, as they would on a cgroups v1 host.
QUIET = {"PODMAN_IGNORE_CGROUPSV1_WARNING": "1"}


@dataclasses.dataclass
class Host:
    name: str
    volume: str
    outer_store: str | None  # the outer graph root mounted read-only, or None (save|load fallback)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def exec(
        self, *cmd: str, check: bool = True, timeout: float = 600, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env_args = [arg for key, value in QUIET.items() for arg in ("--env", f"{key}={value}")]
        interactive = ["--interactive"] if input is not None else []
        return podman.run("exec", *interactive, *env_args, self.name, *cmd, check=check, timeout=timeout, input=input)

    def sh(self, script: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.exec("/bin/sh", "-c", script, check=check, timeout=timeout)

    def podman(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """The INNER podman (the host's own)."""
        return self.exec("podman", *args, check=check, timeout=timeout)

    def inspect(self, container: str) -> dict[str, t.Any]:
        return json.loads(self.podman("container", "inspect", container).stdout)[0]

    def has_podman(self) -> bool:
        return self.sh("command -v podman", check=False).returncode == 0

    def make_available(self, ref: str) -> str:
        """Make an outer image visible to the inner podman; returns the method used (timed in ``timings``)."""
        started = time.monotonic()
        if self.podman("image", "exists", ref, check=False).returncode == 0:
            method = "additionalimagestores"
        else:
            save = subprocess.Popen(["podman", "save", ref], stdout=subprocess.PIPE, env=podman.env())
            load = subprocess.run(
                ["podman", "exec", "--interactive", self.name, "podman", "load"],
                stdin=save.stdout,
                capture_output=True,
                text=True,
                env=podman.env(),
                check=False,
            )
            if save.wait() != 0 or load.returncode != 0:
                raise AssertionError(f"podman save {ref} | podman load in {self.name} failed:\n{load.stderr}")
            method = "podman save | podman load"
        self.timings[f"available {ref} ({method})_s"] = time.monotonic() - started
        return method


def outer_overlay_store() -> str | None:
    """The outer podman's graph root when it is an overlay store (usable as an additional image store)."""
    info = json.loads(podman.run("info", "--format", "json").stdout)
    store = info.get("store", {})
    if store.get("graphDriverName") != "overlay":
        return None
    return store.get("graphRoot")


@contextlib.contextmanager
def host(prefix: str = "p5host", *, images: t.Sequence[str] = ("vllm-cpu-tiny",)) -> t.Iterator[Host]:
    """Start a bare podman 5 stand-in host (no podman installed); yield it; remove it and its volume.

    ``images`` (harness image names) are built when needed and are visible inside once podman is there.
    """
    ref = podman.ensure_image(IMAGE)
    for name in images:
        podman.ensure_image(name)
    name = podman.unique_name(prefix)
    volume = f"{name}-storage"
    store = outer_overlay_store()
    mounts = ["--volume", f"{volume}:/var/lib/containers/storage"]
    if store:
        mounts += ["--volume", f"{store}:{OUTER_STORE}:ro"]
    podman.run("volume", "create", volume)
    try:
        podman.run("run", "--detach", "--init", "--privileged", "--name", name, *mounts, ref)
        if store:
            line = f"additionalimagestores = [{json.dumps(OUTER_STORE)}]"
            # storage.conf ends with its [storage.options] table (tools/images/debian13-host/storage.conf).
            podman.run("exec", name, "/bin/sh", "-c", f"echo {shlex.quote(line)} >> /etc/containers/storage.conf")
        yield Host(name=name, volume=volume, outer_store=store)
    finally:
        podman.remove(name)
        podman.run("volume", "rm", "--force", volume, check=False)


def inventory(hosts: t.Mapping[str, Host], group_vars: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
    """Inventory group vllm_hosts: each stand-in host reached through the containers.podman.podman connection."""
    hostvars = {inventory_name: podman.standin_host_vars(h.name) for inventory_name, h in hosts.items()}
    return {"all": {"children": {"vllm_hosts": {"hosts": hostvars, "vars": dict(group_vars or {})}}}}


def write_inventory(path: Path, data: dict[str, t.Any]) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path
