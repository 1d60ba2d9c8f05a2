# SPDX-License-Identifier: GPL-3.0-or-later
"""The nsys_image_build module, run as Ansible runs it (a process reading its arguments from a file),
against real podman and the harness's real images.

Real Nsight Systems is installed in tests/integration/test_nsys_e2e.py (a ~250 MB download). Here, where
only the module's own logic is under test (entrypoint wrapping, labels, idempotency, base changes, push),
the install is a STAND-IN: `install.method: commands` writes a two-line `nsys` shell script that prints
its arguments. Everything else (podman inspect, build, labels, run, push) is real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from support import podman

pytestmark = pytest.mark.podman

REPO = Path(__file__).resolve().parents[4]
MODULE = "ansible_collections.vllm_infra.profiling.plugins.modules.nsys_image_build"
VLLM_TINY = "localhost/vllm-cpu-tiny:0.32.0"
DEBIAN = "localhost/vllm-infra-debian12:latest"
# The stand-in nsys: prints the arguments it was started with, one per line.
STANDIN_NSYS = (
    'printf \'#!/bin/sh\\necho stand-in-nsys\\nfor a in "$@"; do echo "$a"; done\\n\' > /usr/local/bin/nsys'
    " && chmod 0755 /usr/local/bin/nsys"
)
STANDIN_INSTALL = {"method": "commands", "commands": [STANDIN_NSYS]}


def run_module(tmp_path: Path, check_mode: bool = False, diff: bool = False, **args: t.Any) -> dict[str, t.Any]:
    args_file = tmp_path / "args.json"
    args_file.write_text(
        json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}})
    )
    env = podman.env()
    env["PYTHONPATH"] = str(REPO / ".build" / "collections")
    proc = subprocess.run(
        [sys.executable, "-m", MODULE, str(args_file)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    result["_raw"] = proc.stdout
    return result


def image_id(ref: str) -> str | None:
    proc = podman.run("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def labels(ref: str) -> dict[str, str]:
    return json.loads(podman.run("image", "inspect", "--format", "{{json .Config.Labels}}", ref).stdout)


@pytest.fixture
def images() -> t.Iterator[list[str]]:
    """Image references and ids this test made; removed afterwards (only those)."""
    made: list[str] = []
    yield made
    for ref in reversed(made):
        podman.run("rmi", "--force", ref, check=False)


def test_check_mode_wraps_the_vllm_entrypoint_and_restores_its_user(tmp_path: Path, images: list[str]) -> None:
    name = f"localhost/{podman.unique_name('nsys-check')}:latest"
    images.append(name)
    result = run_module(
        tmp_path,
        check_mode=True,
        diff=True,
        name=name,
        base_image=VLLM_TINY,
        profile={"trace": ["osrt", "nvtx"], "sample": "none", "report_dir": "/vllm-profiles"},
    )
    assert result["changed"] is True and result["built"] is True and result["reason"] == "image does not exist"
    assert result["image_id"] is None and image_id(name) is None  # check mode built nothing
    base = result["base_image"]
    assert base["entrypoint"] == ["/usr/local/bin/vllm-entrypoint"] and base["user"] == "1001"
    assert result["entrypoint"][:2] == ["nsys", "profile"]
    assert result["entrypoint"][-1] == "/usr/local/bin/vllm-entrypoint"
    assert "--trace=osrt,nvtx" in result["entrypoint"] and "--sample=none" in result["entrypoint"]
    assert result["cmd"] == base["cmd"]
    lines = result["containerfile"].splitlines()
    assert [line for line in lines if line.startswith("USER")] == ["USER root", "USER 1001"]
    assert result["diff"]["before"] == "" and result["diff"]["after"] == result["containerfile"]
    assert result["report_pattern"] == "/vllm-profiles/%q{VLLM_INFRA_NSYS_REPORT}"
    assert "vllm_infra.profiling.nsys.containerfile=<the Containerfile>" in result["command"]


def test_check_mode_on_a_base_without_entrypoint(tmp_path: Path) -> None:
    result = run_module(tmp_path, check_mode=True, name="localhost/never-built-nsys:x", base_image=DEBIAN)
    assert result["base_image"]["entrypoint"] == [] and result["cmd"] == ["/bin/bash"]
    assert result["entrypoint"][-1] == "--force-overwrite=true"
    assert "USER 1001" not in result["containerfile"] and result["containerfile"].count("USER ") == 1


def test_missing_base_image_fails_clearly(tmp_path: Path) -> None:
    result = run_module(tmp_path, name="localhost/x-nsys:1", base_image="localhost/vit-no-such-base:1")
    assert result["failed"] is True
    assert result["msg"] == (
        "base image localhost/vit-no-such-base:1 is not in local podman storage; pull or build it first "
        "(this module does not pull)"
    )


def test_failing_install_returns_the_build_log_tail(tmp_path: Path, images: list[str]) -> None:
    name = f"localhost/{podman.unique_name('nsys-fail')}:latest"
    images.append(name)
    result = run_module(
        tmp_path,
        name=name,
        base_image=DEBIAN,
        install={"method": "packages", "packages": ["nsight-systems-no-such-package"]},
    )
    assert result["failed"] is True
    assert result["msg"].startswith(f"podman build of {name} failed (exit ")
    assert "Unable to locate package nsight-systems-no-such-package" in result["build_log_tail"]
    assert len(result["build_log_tail"].splitlines()) <= 40
    assert "FROM localhost/vllm-infra-debian12:latest" in result["containerfile"]
    assert image_id(name) is None


def test_idempotent_build_force_base_change_and_push(tmp_path: Path, images: list[str]) -> None:
    base = f"localhost/{podman.unique_name('nsys-base')}:latest"
    name = f"localhost/{podman.unique_name('nsys-img')}:latest"
    images += [base, name]
    podman.run("tag", DEBIAN, base)
    args = {"name": name, "base_image": base, "install": STANDIN_INSTALL, "profile": {"trace": ["osrt"]}}

    predicted = run_module(tmp_path, check_mode=True, **args)
    assert predicted["changed"] is True and image_id(name) is None

    first = run_module(tmp_path, **args)
    assert first["changed"] is True and first["built"] is True, first["_raw"]
    assert first["image_id"] == image_id(name)
    got = labels(name)
    assert got["vllm_infra.profiling.nsys.hash"] == first["hash"] == predicted["hash"]
    assert got["vllm_infra.profiling.nsys.containerfile"] == first["containerfile"]
    assert got["vllm_infra.profiling.nsys.base"] == f"{base}@{image_id(base)}"
    # The image runs nsys in front of the base's command; podman keeps ENTRYPOINT + CMD semantics.
    ran = podman.run("run", "--rm", name).stdout.split()
    assert ran == ["stand-in-nsys", *first["entrypoint"][1:], "/bin/bash"]
    assert podman.run("image", "inspect", "--format", "{{.Config.StopSignal}}", name).stdout.strip() in ("SIGINT", "2")

    again = run_module(tmp_path, **args)
    assert (again["changed"], again["built"], again["reason"]) == (False, False, "up to date")
    assert again["image_id"] == first["image_id"]
    assert run_module(tmp_path, check_mode=True, **args)["changed"] is False

    flag = {**args, "profile": {"trace": ["osrt", "nvtx"]}}
    diffed = run_module(tmp_path, check_mode=True, diff=True, **flag)
    assert diffed["changed"] is True and diffed["reason"] == "Containerfile changed"
    assert diffed["diff"]["before"] == first["containerfile"] and "--trace=osrt,nvtx" in diffed["diff"]["after"]
    assert image_id(name) == first["image_id"]

    forced = run_module(tmp_path, force=True, **args)
    assert forced["built"] is True and forced["reason"] == "force"
    assert forced["changed"] == (forced["image_id"] != first["image_id"])

    # The same base reference, a different image behind it: rebuild.
    (tmp_path / "Containerfile").write_text(f"FROM {base}\nLABEL vit.base.revision=2\n")
    podman.run("build", "--tag", base, str(tmp_path))
    rebased = run_module(tmp_path, **args)
    assert rebased["changed"] is True and rebased["reason"] == "base image changed"
    assert rebased["base_image"]["id"] == image_id(base) != first["base_image"]["id"]
    assert labels(name)["vllm_infra.profiling.nsys.base"] == f"{base}@{image_id(base)}"

    # Push: only podman's auth file carries credentials; nothing of it shows in the result.
    secret = "vit-never-log-this-0123456789"
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {"registry.invalid": {"auth": secret}}}))
    archive = tmp_path / "pushed.tar"
    push = {"destination": f"oci-archive:{archive}", "authfile": str(authfile)}
    not_pushed = run_module(tmp_path, **args, push=push)
    assert (not_pushed["changed"], not_pushed["pushed"]) == (False, False)  # nothing built, no push
    pushed = run_module(tmp_path, **args, push={**push, "always": True})
    assert pushed["pushed"] is True and pushed["changed"] is True and pushed["built"] is False
    assert archive.stat().st_size > 1_000_000
    assert secret not in pushed["_raw"]
    for result in (first, rebased):
        images.append(result["image_id"])
    os.unlink(archive)
