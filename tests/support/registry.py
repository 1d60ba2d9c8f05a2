# SPDX-License-Identifier: GPL-3.0-or-later
"""A REAL container registry for the tests: Debian's ``docker-registry`` package (the CNCF distribution
registry 2.8, the same server as docker.io/library/registry:2), started on this machine's loopback with
htpasswd (bcrypt) authentication and TLS from a CA made for the test, torn down afterwards.

What it stands for: registry.redhat.io or a site's mirror (Quay, Harbor, Nexus, distribution itself): a
token/basic-auth v2 registry behind a certificate that a private CA signed. Podman trusts the CA the way a
RHEL host is told to: ``/etc/containers/certs.d/<host:port>/ca.crt`` (containers-certs.d(5)); every podman
call then verifies the certificate (no --tls-verify=false anywhere).

The server, its key, its storage and the CA live in a temporary directory; only this registry's own
``certs.d/<127.0.0.1:port>`` directory is added to the machine's /etc/containers/certs.d, and removed again.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile
import typing as t
from pathlib import Path

from . import podman, servers

CERTS_D = Path("/etc/containers/certs.d")


@dataclasses.dataclass
class Registry:
    host: str  # host:port, as image references and certs.d name it
    username: str
    password: str
    ca: Path  # the CA certificate (PEM) to trust
    root: Path
    log: Path

    def ref(self, repository: str) -> str:
        return f"{self.host}/{repository}"

    def trust(self, certs_d: Path) -> Path:
        """Install the CA under CERTS_D-like directory ``certs_d`` (for example inside a stand-in host's tree)."""
        target = certs_d / self.host
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca, target / "ca.crt")
        return target

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""


def secret_forms(password: str, username: str) -> list[str]:
    """The password as it is, and as an auth file or a basic-auth header carries it (user:password, base64)."""
    return [password, base64.b64encode(f"{username}:{password}".encode()).decode()]


def _run(*argv: str | Path, cwd: Path | None = None) -> None:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{argv} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")


def make_ca_and_cert(directory: Path, ip: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for ``ip`` (and localhost) that it signed: (ca.crt, server.crt, key)."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        f"subjectAltName=IP:{ip},DNS:localhost\n"
    )
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=vllm-infra test registry CA", "-keyout", ca_key, "-out", ca_crt)  # fmt: skip
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ip}", "-keyout", key, "-out", csr)
    _run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "2", "-extfile", ext, "-out", crt)  # fmt: skip
    return ca_crt, crt, key


def _free_port() -> int:
    return podman.free_port()


@contextlib.contextmanager
def running(username: str = "fleet-operator", password: str | None = None) -> t.Iterator[Registry]:
    """Start the registry on 127.0.0.1:<free port> with htpasswd auth and TLS; trust its CA in certs.d."""
    if not shutil.which("docker-registry"):
        raise AssertionError("docker-registry is not installed: tools/setup.sh installs Debian's docker-registry")
    password = password or "pw-" + os.urandom(9).hex()
    root = Path(tempfile.mkdtemp(prefix="vit-registry-"))
    ca, crt, key = make_ca_and_cert(root)
    htpasswd = root / "htpasswd"
    # bcrypt: the only scheme distribution's htpasswd accepts. -i: the password on stdin, not in argv.
    proc = subprocess.run(
        ["htpasswd", "-B", "-i", "-c", str(htpasswd), username],
        input=password,
        text=True,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {root / "data"}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  tls:
    certificate: {crt}
    key: {key}
auth:
  htpasswd:
    realm: vllm-infra-test
    path: {htpasswd}
"""
    )
    host = f"127.0.0.1:{port}"
    log = root / "registry.log"
    trusted = None
    try:
        with servers.background(["docker-registry", "serve", str(config)], log) as server:
            servers.wait_answering("docker-registry", port, server, log)
            trusted = Registry(host, username, password, ca, root, log).trust(CERTS_D)
            yield Registry(host, username, password, ca, root, log)
    finally:
        if trusted is not None:
            shutil.rmtree(trusted, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
