# SPDX-License-Identifier: GPL-3.0-or-later
"""Ordinary users for rootless-podman tests, made the way an administrator makes them.

What is the same as on the guide's RHEL 9 host: a login user with a home directory, subordinate uid/gid
ranges in /etc/subuid and /etc/subgid (or none, for the failure case), podman run as that user (Ansible's
``become_user`` through ``su``) with overlay storage and a runtime directory under /run/user/UID.
What stands in for this sandbox, not for RHEL: the user's containers.conf (runc, cgroupfs and ulimits
that this sandbox needs, as the project's own tools/containers/containers.conf does for root), /dev/net/tun
made 0666 (its usual mode; 0600 here), /run/user/UID made by hand (logind does it on a real host), and the
image loaded into the user's store with `podman save | podman load` (no registry here).
"""

from __future__ import annotations

import pwd
import subprocess
from pathlib import Path

from . import podman

CONTAINERS_CONF = (podman.REPO / "tools" / "containers" / "containers.conf").read_text()
STORAGE_CONF = '[storage]\ndriver = "overlay"\n'


def _sh(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), text=True, capture_output=True, check=kw.pop("check", True), **kw)


def ensure_user(name: str, subids: str | None) -> pwd.struct_passwd:
    """A user ``name`` with (``subids`` = "START-END") or without subordinate ids, ready for rootless podman."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _sh("useradd", "--create-home", "--shell", "/bin/bash", name)
        entry = pwd.getpwnam(name)
    for kind in ("subuid", "subgid"):
        path = Path(f"/etc/{kind}")
        lines = (
            [line for line in path.read_text().splitlines() if not line.startswith(f"{name}:")] if path.exists() else []
        )
        if subids:
            start, end = (int(x) for x in subids.split("-"))
            lines.append(f"{name}:{start}:{end - start + 1}")
        path.write_text("".join(f"{line}\n" for line in lines))
    home = Path(entry.pw_dir)
    config = home / ".config" / "containers"
    config.mkdir(parents=True, exist_ok=True)
    (config / "containers.conf").write_text(CONTAINERS_CONF)
    (config / "storage.conf").write_text(STORAGE_CONF)
    runtime = Path(f"/run/user/{entry.pw_uid}")
    runtime.mkdir(parents=True, exist_ok=True)
    for path in [runtime, home / ".config", config, config / "containers.conf", config / "storage.conf"]:
        _sh("chown", f"{entry.pw_uid}:{entry.pw_gid}", str(path))
    runtime.chmod(0o700)
    Path("/dev/net/tun").chmod(0o666)
    return entry


def as_user(name: str, command: str, **kw) -> subprocess.CompletedProcess[str]:
    """Run a shell command as ``name`` (through su, as Ansible's become does)."""
    uid = pwd.getpwnam(name).pw_uid
    return _sh("su", name, "-s", "/bin/sh", "-c", f"cd ~ && export XDG_RUNTIME_DIR=/run/user/{uid}; {command}", **kw)


def load_image(name: str, image: str) -> None:
    """Copy ``image`` from root's store into the user's, unless the user has that image id already."""
    image_id = podman.run("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    have = as_user(name, f"podman image inspect --format '{{{{.Id}}}}' {image}", check=False).stdout.strip()
    if have == image_id:
        return
    save = subprocess.Popen(["podman", "save", image], stdout=subprocess.PIPE, env=podman.env())
    try:
        load = as_user(name, "podman load", stdin=save.stdout, check=False)
    finally:
        save.stdout.close()
        save.wait()
    if load.returncode != 0:
        raise AssertionError(f"podman load as {name} failed:\n{load.stderr[-2000:]}")


def remove_containers(name: str, *containers: str) -> None:
    for container in containers:
        as_user(name, f"podman rm -f --ignore {container}", check=False)
