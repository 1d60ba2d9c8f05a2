# SPDX-License-Identifier: GPL-3.0-or-later
"""A REAL OpenSSH server for the tests: Debian's ``sshd`` (openssh-server, installed by tools/setup.sh) started on
127.0.0.1:<free port> with its own host key, one authorized key made for the test, and its own config; torn down
afterwards.

What it stands for: the sshd of a GPU host that AWX (its execution environment) reaches over SSH as root with
a machine credential's key. What differs: it is this machine (Debian 12, podman 4.3.1), not a RHEL 9 host, and
its sessions get ``CONTAINERS_CONF`` (sshd's ``SetEnv``) because podman here runs containers only with the
project's containers.conf (runc, cgroupfs; /work/shared/notes/environment.md) -- a RHEL host's defaults need none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile
import typing as t
from pathlib import Path

from . import podman, servers

SSHD = "/usr/sbin/sshd"
# sshd's privilege separation directory, compiled in; the ssh service makes it at start (RuntimeDirectory).
PRIVSEP_DIR = Path("/run/sshd")


@dataclasses.dataclass
class Sshd:
    host: str
    port: int
    user: str
    private_key: Path  # the key AWX's machine credential holds
    host_public_key: str  # "ssh-ed25519 AAAA..." (for a known_hosts line)
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""


def _keygen(path: Path, comment: str) -> None:
    proc = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@contextlib.contextmanager
def running(session_env: t.Mapping[str, str] | None = None) -> t.Iterator[Sshd]:
    """sshd on 127.0.0.1:<free port>, root may log in with the test's key only; ``session_env`` via SetEnv."""
    if not os.access(SSHD, os.X_OK):
        raise AssertionError(f"{SSHD} is missing: tools/setup.sh installs Debian's openssh-server")
    if os.geteuid() != 0:
        raise AssertionError("the test's sshd logs in as root: run the tests as root (tools/test does)")
    root = Path(tempfile.mkdtemp(prefix="vit-sshd-"))
    host_key, client_key = root / "ssh_host_ed25519_key", root / "id_ed25519"
    _keygen(host_key, "vit-sshd host")
    _keygen(client_key, "vit-sshd client")
    authorized = root / "authorized_keys"
    shutil.copy(client_key.with_suffix(".pub"), authorized)
    port = podman.free_port()
    setenv = " ".join(f'"{k}={v}"' for k, v in (session_env or {}).items())
    config = root / "sshd_config"
    config.write_text(
        f"""ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {root / "sshd.pid"}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The key files lie in a 0700 directory under /tmp, whose mode (1777) StrictModes refuses.
StrictModes no
LogLevel VERBOSE
Subsystem sftp internal-sftp
{"SetEnv " + setenv if setenv else ""}
"""
    )
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, f"sshd -t: {check.stderr}"
    log = root / "sshd.log"
    try:
        # -D: stay in the foreground (this process's child), -e: log to stderr (the log file).
        with servers.background([SSHD, "-D", "-e", "-f", str(config)], log) as server:
            servers.wait_answering("sshd", port, server, log, banner=b"SSH-2.0-")
            yield Sshd("127.0.0.1", port, "root", client_key, host_key.with_suffix(".pub").read_text().strip(), log)
    finally:
        shutil.rmtree(root, ignore_errors=True)
