# SPDX-License-Identifier: GPL-3.0-or-later
"""A server process a test starts on loopback (the registry, sshd): started in its own session with its output in
a log file, waited for until it answers, and stopped with its whole process group (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import typing as t
from pathlib import Path


@contextlib.contextmanager
def background(argv: t.Sequence[str], log: Path) -> t.Iterator[subprocess.Popen]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_answering(
    name: str, port: int, proc: subprocess.Popen, log: Path, *, banner: bytes = b"", timeout: float = 30
) -> None:
    """Until 127.0.0.1:port accepts a connection (and sends ``banner`` first, when given); fails with the log
    when the process exits or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            if not banner or conn.recv(64).startswith(banner):
                return
        time.sleep(0.2)
    raise AssertionError(f"{name} did not answer on 127.0.0.1:{port} in {timeout}s:\n{log.read_text()}")
