# SPDX-License-Identifier: GPL-3.0-or-later
"""cdi_devices through the real `ansible` CLI, checked against what the real podman (4.3.1 here) does.

- A test CDI spec (cdiVersion 0.5.0; a device node that is /dev/null on the host, and an env var) is
  listed and required by the module, and podman applies that same spec to a container.
- The same spec at cdiVersion 0.6.0 is caught by the module's compatibility check, and podman
  indeed fails on it with "unresolvable CDI devices".
- Generation with a STAND-IN nvidia-ctk (tests/support/cdi_standin.py; it says so in its output):
  changed on the first run, not on the second, check mode predicts both, force regenerates.

Podman 4.3 has no --cdi-spec-dir: specs podman must read are written to /var/run/cdi under a unique
file name with a unique kind (vllm-infra-test.example.com/gpu-<hex>) and removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from support import ansible, podman
from support.cdi_standin import STANDIN_BANNER, calls, make_spec, write_standin

pytestmark = pytest.mark.podman

RUN_CDI = Path("/var/run/cdi")


def cdi_devices(args: dict[str, t.Any], *flags: str) -> dict[str, t.Any]:
    """`ansible localhost -m vllm_infra.profiling.cdi_devices -a JSON [flags]` -> the host's result."""
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "vllm_infra.profiling.cdi_devices",
            "-a",
            json.dumps(args),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            *flags,
        ],
        env=ansible.env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError) as exc:
        raise AssertionError(
            f"ansible failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        ) from exc


@pytest.fixture(scope="module")
def image() -> str:
    return podman.ensure_image("vllm-infra-debian12")


@pytest.fixture
def kind() -> str:
    return f"vllm-infra-test.example.com/gpu-{secrets.token_hex(4)}"


@contextlib.contextmanager
def spec_for_podman(text: str):
    """Put a spec where podman 4.3 reads it, under a unique name; always remove it."""
    RUN_CDI.mkdir(parents=True, exist_ok=True)
    path = RUN_CDI / f"{podman.unique_name('cdi')}.yaml"
    path.write_text(text)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def run_with_device(image: str, device: str) -> subprocess.CompletedProcess[str]:
    return podman.run(
        "run",
        "--rm",
        "--device",
        device,
        image,
        "sh",
        "-c",
        'echo "env=$VIT_CDI_TEST"; stat -c "%t:%T %F" /dev/vit-cdi-gpu0',
        check=False,
        timeout=120,
    )


def test_module_lists_what_podman_applies(tmp_path: Path, image: str, kind: str) -> None:
    token = secrets.token_hex(4)
    spec = make_spec(kind, env=f"VIT_CDI_TEST={token}")
    (tmp_path / "test.yaml").write_text(spec)

    result = cdi_devices({"spec_dirs": [str(tmp_path)], "required": [f"{kind}=gpu0"]})
    assert not result.get("failed"), result.get("msg")
    assert result["devices"] == [f"{kind}=gpu0"]
    assert result["podman"]["checked"] is True
    assert result["podman"]["version"] == podman.run("--version").stdout.split()[-1]
    assert result["podman"]["max_cdi_version"] == "0.5.0"

    missing = cdi_devices({"spec_dirs": [str(tmp_path)], "required": [f"{kind}=gpu0", f"{kind}=gpu1"]})
    assert missing["failed"] is True
    assert missing["msg"].startswith(f"required CDI devices not available: {kind}=gpu1. Available: {kind}=gpu0")

    with spec_for_podman(spec):
        proc = run_with_device(image, f"{kind}=gpu0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"env={token}", "1:3 character special file"]  # /dev/null is 1:3


def test_compat_check_catches_what_podman_rejects(tmp_path: Path, image: str, kind: str) -> None:
    spec = make_spec(kind, cdi_version="0.6.0")
    (tmp_path / "too-new.yaml").write_text(spec)

    result = cdi_devices({"spec_dirs": [str(tmp_path)], "required": [f"{kind}=gpu0"]})
    assert result["failed"] is True
    version = result["podman"]["version"]
    assert f"too-new.yaml has cdiVersion 0.6.0 (its content needs only 0.5.0), but podman {version} " in result["msg"]
    assert "reads CDI specs only up to cdiVersion 0.5.0" in result["msg"]
    assert "upgrade podman to 4.6 or newer" in result["msg"]
    assert result["devices"] == []

    # what the module predicts is what podman does with that file
    with spec_for_podman(spec):
        proc = run_with_device(image, f"{kind}=gpu0")
    assert proc.returncode != 0
    assert f"unresolvable CDI devices {kind}=gpu0" in proc.stderr


def test_generate_with_standin_nvidia_ctk(tmp_path: Path, kind: str) -> None:
    script, template, log = write_standin(tmp_path / "standin")
    template.write_text(make_spec(kind))
    spec_dir = tmp_path / "cdi"
    output = spec_dir / "nvidia.yaml"
    args = {
        "spec_dirs": [str(spec_dir)],
        "generate": True,
        "output": str(output),
        "nvidia_ctk": str(script),
        "required": [f"{kind}=gpu0"],
    }

    predicted = cdi_devices(args, "--check", "--diff")
    assert predicted["changed"] is True and not output.exists()
    assert predicted["diff"]["after"] == template.read_text()
    first = cdi_devices(args)
    assert first["changed"] is True and output.read_text() == template.read_text()
    assert first["devices"] == [f"{kind}=gpu0"]
    assert STANDIN_BANNER in (script.read_text())  # the stand-in is labelled as one

    assert cdi_devices(args, "--check")["changed"] is False
    second = cdi_devices(args)
    assert second["changed"] is False and second["generate"]["needed"] is False
    assert len(calls(log)) == 2

    output.write_text(output.read_text() + "# hand edit\n")
    assert cdi_devices(args)["changed"] is False
    assert cdi_devices({**args, "force": True}, "--check")["changed"] is True
    assert "# hand edit" in output.read_text()
    forced = cdi_devices({**args, "force": True})
    assert forced["changed"] is True and forced["generate"]["reasons"] == ["force: true"]
    assert output.read_text() == template.read_text()
    assert len(calls(log)) == 4
