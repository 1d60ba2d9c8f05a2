# SPDX-License-Identifier: GPL-3.0-or-later
"""The cdi_devices module run in-process (AnsibleModule with patched args) on temp spec dirs.

Specs are the real fixtures in tests/fixtures/cdi/ and small test specs; `nvidia-ctk` is the
STAND-IN from tests/support/cdi_standin.py (a real executable that copies a template spec), since
the real one needs an NVIDIA driver. Runs against real podman through Ansible are in
tests/integration/test_cdi_devices_podman.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ansible.module_utils
import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from support.cdi_standin import STANDIN_BANNER, calls, make_spec, write_standin

from ansible_collections.vllm_infra.profiling.plugins.modules import cdi_devices

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "cdi"
KIND = "vllm-infra-test.example.com/gpu"


def run(tmp_path: Path, capsys: pytest.CaptureFixture, check: bool = False, diff: bool = False, **args) -> dict:
    module_tmp = tmp_path / "module-tmp"
    module_tmp.mkdir(exist_ok=True)
    args.setdefault("podman_version", "5.4.2")
    internal = {"_ansible_check_mode": check, "_ansible_diff": diff, "_ansible_tmpdir": str(module_tmp)}
    with patch_module_args({**args, **internal}), pytest.raises(SystemExit):
        cdi_devices.main()
    result = json.loads(capsys.readouterr().out)
    assert not os.listdir(module_tmp), "the staging dir is removed"
    return result


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    etc, run_dir = tmp_path / "etc-cdi", tmp_path / "run-cdi"
    etc.mkdir()
    run_dir.mkdir()
    return etc, run_dir


def warnings(result: dict) -> str:
    """Warnings as one string (ansible-core 2.19+ modules emit them as structured events)."""
    return " ".join(w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", []))


def real(name: str) -> str:
    return (FIXTURES / name).read_text()


# --------------------------------------------------------------------------- reading


def test_lists_devices_from_real_specs(tmp_path, capsys, dirs) -> None:
    etc, run_dir = dirs
    (etc / "nvidia.yaml").write_text(real("v0.6.0_tesla-t4_g4dn_docker-docs.yaml.txt"))
    (etc / "wsl.json").write_text(json.dumps(yaml.safe_load(real("v0.3.0_wsl2_all-only_cdubs08.yaml.txt"))))
    (run_dir / "truncated.yaml").write_text(real("v0.5.0_ctk-1.12.0_tesla-p100_TRUNCATED-by-poster.yaml.txt"))
    (run_dir / "misnamed.yml").write_text(real("v0.7.0_tesla-t4_gcp_ctk-1.20.0_kwx4957-study.yaml.txt"))
    result = run(tmp_path, capsys, spec_dirs=[str(etc), str(run_dir)], required=["nvidia.com/gpu=all"])
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["devices"] == [
        "nvidia.com/gpu=0",
        "nvidia.com/gpu=GPU-6cf00fa7-59ac-16f2-3e83-d24ccdc56f84",
        "nvidia.com/gpu=all",
    ]
    assert [Path(p).name for p in result["spec_files"]] == ["nvidia.yaml", "wsl.json", "misnamed.yml", "truncated.yaml"]
    by_name = {Path(s["path"]).name: s for s in result["specs"]}
    assert by_name["nvidia.yaml"]["driver_versions"] == ["570.133.20"]
    assert by_name["truncated.yaml"]["read_by_podman"] is False
    assert by_name["misnamed.yml"]["read_by_podman"] is False
    warned = warnings(result)
    assert "truncated.yaml is skipped by podman: kind is missing" in warned
    assert "misnamed.yml: podman reads only .json and .yaml" in warned
    assert result["podman"]["checked"] is True and result["podman"]["max_cdi_version"] == "0.8.0"


def test_required_device_missing_lists_what_exists(tmp_path, capsys, dirs) -> None:
    etc, _ignored = dirs
    (etc / "nvidia.yaml").write_text(real("v0.7.0_tesla-t4_gcp_ctk-1.20.0_kwx4957-study.yaml.txt"))
    result = run(tmp_path, capsys, spec_dirs=[str(etc)], required=["nvidia.com/gpu=all", "nvidia.com/gpu=1"])
    assert result["failed"] is True
    assert result["msg"].startswith(
        "required CDI devices not available: nvidia.com/gpu=1. Available: nvidia.com/gpu=0, "
    )
    assert "nvidia.com/gpu=all" in result["msg"]
    assert result["devices"]  # the results come with the failure


def test_compat_failure_names_both_versions(tmp_path, capsys, dirs) -> None:
    etc, _ignored = dirs
    (etc / "nvidia.yaml").write_text(real("v0.7.0_tesla-t4_gcp_ctk-1.20.0_kwx4957-study.yaml.txt"))
    result = run(tmp_path, capsys, spec_dirs=[str(etc)], podman_version="4.9.3", required=["nvidia.com/gpu=all"])
    assert result["failed"] is True
    assert "has cdiVersion 0.7.0, but podman 4.9.3 reads CDI specs only up to cdiVersion 0.6.0" in result["msg"]
    assert "no-additional-gids-for-device-nodes" in result["msg"]
    # podman skips the file, so the required device is not available either
    assert "required CDI devices not available: nvidia.com/gpu=all" in result["msg"]
    assert result["devices"] == []
    # the check can be turned off
    off = run(tmp_path, capsys, spec_dirs=[str(etc)], podman_version="4.9.3", check_compat=False)
    assert not off.get("failed") and off["podman"] == {"checked": False, "note": "check_compat: false"}
    assert "nvidia.com/gpu=all" in off["devices"]


def test_podman_missing_skips_the_check(tmp_path, capsys, dirs) -> None:
    etc, _ignored = dirs
    (etc / "nvidia.yaml").write_text(real("v0.7.0_tesla-t4_gcp_ctk-1.20.0_kwx4957-study.yaml.txt"))
    result = run(tmp_path, capsys, spec_dirs=[str(etc)], podman_version=None, podman=str(tmp_path / "no-podman"))
    assert not result.get("failed")
    assert result["podman"]["checked"] is False
    assert "not found" in result["podman"]["note"]


def test_real_podman_version_is_read(tmp_path, capsys, dirs) -> None:
    """With no podman_version the module runs `podman --version` (podman 4.3.1 on these machines)."""
    etc, _ignored = dirs
    (etc / "nvidia.yaml").write_text(real("v0.6.0_tesla-t4_g4dn_docker-docs.yaml.txt"))
    result = run(tmp_path, capsys, spec_dirs=[str(etc)], podman_version=None)
    assert result["podman"]["checked"] is True
    assert result["podman"]["version"].startswith("4.")
    assert result["failed"] is True  # 0.6.0 is too new for podman 4.3 ... 4.5
    assert f"but podman {result['podman']['version']} reads CDI specs only up to cdiVersion 0.5.0" in result["msg"]


def test_bad_podman_version(tmp_path, capsys, dirs) -> None:
    result = run(tmp_path, capsys, spec_dirs=[str(dirs[0])], podman_version="latest")
    assert result["failed"] is True and "is not a version" in result["msg"]


# --------------------------------------------------------------------------- generating


@pytest.fixture
def ctk(tmp_path: Path):
    script, template, log = write_standin(tmp_path / "standin")
    template.write_text(make_spec(KIND))
    return script, template, log


def test_generate_check_real_check_real(tmp_path, capsys, dirs, ctk) -> None:
    etc, _ignored = dirs
    script, template, log = ctk
    output = etc / "nvidia.yaml"
    args = {"spec_dirs": [str(etc)], "generate": True, "output": str(output), "nvidia_ctk": str(script)}
    args["required"] = [f"{KIND}=gpu0"]

    first_check = run(tmp_path, capsys, check=True, diff=True, **args)
    assert first_check["changed"] is True
    assert not output.exists(), "check mode touches nothing"
    assert first_check["diff"]["before"] == "" and first_check["diff"]["after"] == template.read_text()
    assert first_check["devices"] == [f"{KIND}=gpu0"], "check mode reports the devices the spec would give"
    assert first_check["generate"]["reasons"] == ["the spec does not exist"]

    first = run(tmp_path, capsys, diff=True, **args)
    assert first["changed"] is True and output.read_text() == template.read_text()
    assert oct(output.stat().st_mode & 0o777) == "0o644"
    assert first["generate"]["command"][:3] == [str(script), "cdi", "generate"]
    assert (
        first["generate"]["command"][3].startswith("--output=")
        and first["generate"]["command"][3] != f"--output={output}"
    )
    assert first["devices"] == [f"{KIND}=gpu0"]

    second_check = run(tmp_path, capsys, check=True, **args)
    second = run(tmp_path, capsys, **args)
    assert second_check["changed"] is False and second["changed"] is False
    assert second["generate"] == {"needed": False, "reasons": [], "command": [], "content_changed": False}
    assert len(calls(log)) == 2, "nvidia-ctk ran for the check run and the real run of the first round only"


def test_force(tmp_path, capsys, dirs, ctk) -> None:
    etc, _ignored = dirs
    script, template, log = ctk
    output = etc / "nvidia.yaml"
    args = {"spec_dirs": [str(etc)], "generate": True, "output": str(output), "nvidia_ctk": str(script)}
    run(tmp_path, capsys, **args)
    mtime = output.stat().st_mtime_ns
    same = run(tmp_path, capsys, force=True, **args)
    assert same["generate"]["needed"] is True and same["generate"]["reasons"] == ["force: true"]
    assert same["changed"] is False, "same content: no change, and the file is not rewritten"
    assert output.stat().st_mtime_ns == mtime
    output.write_text(output.read_text() + "# edited by hand\n")
    assert run(tmp_path, capsys, **args)["changed"] is False, "a hand edit that keeps the spec valid is left alone"
    forced_check = run(tmp_path, capsys, check=True, force=True, **args)
    assert forced_check["changed"] is True and "# edited by hand" in output.read_text()
    forced = run(tmp_path, capsys, force=True, **args)
    assert forced["changed"] is True and output.read_text() == template.read_text()
    assert len(calls(log)) == 4


def test_regenerates_when_the_driver_changed(tmp_path, capsys, dirs, ctk) -> None:
    etc, _ignored = dirs
    script, template, _ignored = ctk
    libs = tmp_path / "driver-libs"
    libs.mkdir()
    (libs / "libcuda.so.580.95.05").write_text("")
    template.write_text(make_spec(KIND, driver_version="580.95.05", lib_dir=str(libs)))
    output = etc / "nvidia.yaml"
    args = {"spec_dirs": [str(etc)], "generate": True, "output": str(output), "nvidia_ctk": str(script)}
    assert run(tmp_path, capsys, driver_version="580.95.05", **args)["changed"] is True
    fits = run(tmp_path, capsys, driver_version="580.95.05", **args)
    assert fits["changed"] is False and fits["specs"][0]["driver_versions"] == ["580.95.05"]

    # "upgrade" the driver: the new libraries replace the old ones; nvidia-ctk now writes 590.44.01
    (libs / "libcuda.so.580.95.05").unlink()
    (libs / "libcuda.so.590.44.01").write_text("")
    template.write_text(make_spec(KIND, driver_version="590.44.01", lib_dir=str(libs)))
    stale_check = run(tmp_path, capsys, check=True, diff=True, driver_version="590.44.01", **args)
    assert stale_check["changed"] is True
    assert stale_check["generate"]["reasons"] == [
        "the spec names driver 580.95.05 but the host has driver 590.44.01 (from the driver_version option)",
        f"the spec mounts {libs}/libcuda.so.580.95.05, which no longer exists on the host",
    ]
    assert "libcuda.so.580.95.05" in stale_check["diff"]["before"]
    assert "libcuda.so.590.44.01" in stale_check["diff"]["after"]
    # without driver_version the missing library alone marks the spec stale (no driver on this machine)
    stale = run(tmp_path, capsys, **args)
    assert stale["changed"] is True and stale["generate"]["reasons"] == [
        f"the spec mounts {libs}/libcuda.so.580.95.05, which no longer exists on the host"
    ]
    assert run(tmp_path, capsys, driver_version="590.44.01", **args)["changed"] is False


def test_invalid_existing_spec_is_regenerated(tmp_path, capsys, dirs, ctk) -> None:
    etc, _ignored = dirs
    script = ctk[0]
    output = etc / "nvidia.yaml"
    output.write_text(real("v0.5.0_ctk-1.12.0_tesla-p100_TRUNCATED-by-poster.yaml.txt"))
    output.chmod(0o600)
    result = run(tmp_path, capsys, spec_dirs=[str(etc)], generate=True, output=str(output), nvidia_ctk=str(script))
    assert result["changed"] is True
    assert result["generate"]["reasons"][0].startswith("the spec is not valid: kind is missing")
    assert oct(output.stat().st_mode & 0o777) == "0o600", "an existing file keeps its mode"


def test_feature_flags_are_passed(tmp_path, capsys, dirs, ctk) -> None:
    etc, _ignored = dirs
    script, _ignored, log = ctk
    run(
        tmp_path,
        capsys,
        spec_dirs=[str(etc)],
        generate=True,
        output=str(etc / "nvidia.yaml"),
        nvidia_ctk=str(script),
        feature_flags=["no-additional-gids-for-device-nodes"],
    )
    (line,) = calls(log)
    assert line.endswith("--feature-flag=no-additional-gids-for-device-nodes")


def test_nvidia_ctk_missing(tmp_path, capsys, dirs) -> None:
    etc, _ignored = dirs
    args = {"spec_dirs": [str(etc)], "generate": True, "output": str(etc / "nvidia.yaml")}
    args["nvidia_ctk"] = str(tmp_path / "not-installed")
    args["required"] = ["nvidia.com/gpu=all"]
    # e.g. a role's check run on a fresh host: the toolkit is not installed yet
    predicted = run(tmp_path, capsys, check=True, **args)
    assert predicted["changed"] is True and not predicted.get("failed")
    assert "in check mode the spec at" in warnings(predicted)
    assert "not checked in check mode" in warnings(predicted)
    failed = run(tmp_path, capsys, **args)
    assert failed["failed"] is True
    assert "not found. Install nvidia-container-toolkit-base or set nvidia_ctk" in failed["msg"]
    assert not (etc / "nvidia.yaml").exists()


def test_nvidia_ctk_failure_is_reported(tmp_path, capsys, dirs, ctk) -> None:
    etc, _ignored = dirs
    script, template, _ignored = ctk
    template.unlink()  # the stand-in then fails like nvidia-ctk without NVML
    result = run(
        tmp_path, capsys, spec_dirs=[str(etc)], generate=True, output=str(etc / "x.yaml"), nvidia_ctk=str(script)
    )
    assert result["failed"] is True
    assert "failed (exit code 1)" in result["msg"] and STANDIN_BANNER in result["msg"]
    assert not (etc / "x.yaml").exists()


def test_output_outside_spec_dirs_warns(tmp_path, capsys, dirs, ctk) -> None:
    etc, _ignored = dirs
    script, _ignored, _ignored = ctk
    elsewhere = tmp_path / "elsewhere" / "nvidia.yaml"
    result = run(tmp_path, capsys, spec_dirs=[str(etc)], generate=True, output=str(elsewhere), nvidia_ctk=str(script))
    assert result["changed"] is True and elsewhere.exists(), "the missing parent dir is created"
    assert "is not in spec_dirs" in warnings(result)
    assert result["devices"] == []


def test_generated_spec_too_new_for_podman_fails_after_writing(tmp_path, capsys, dirs, ctk) -> None:
    """A toolkit that writes 0.7.0 on a podman 4.9 host: the module says so right away."""
    etc, _ignored = dirs
    script, template, _ignored = ctk
    template.write_text(real("v0.7.0_tesla-t4_gcp_ctk-1.20.0_kwx4957-study.yaml.txt"))
    args = {"spec_dirs": [str(etc)], "generate": True, "output": str(etc / "nvidia.yaml"), "nvidia_ctk": str(script)}
    predicted = run(tmp_path, capsys, check=True, podman_version="4.9.3", **args)
    assert predicted["failed"] is True and "podman 4.9.3" in predicted["msg"]
    assert not (etc / "nvidia.yaml").exists()


def test_without_pyyaml_the_module_says_so(tmp_path, dirs) -> None:
    """A Python without PyYAML (``-S``: no site-packages; only ansible's module_utils on the path)."""
    etc, _ignored = dirs
    (etc / "nvidia.yaml").write_text(real("v0.3.0_wsl2_all-only_cdubs08.yaml.txt"))
    lib = tmp_path / "lib"
    shutil.copytree(Path(ansible.module_utils.__file__).parent, lib / "ansible" / "module_utils")
    (lib / "ansible" / "__init__.py").write_text("")
    collections = Path(__file__).resolve().parents[4] / ".build" / "collections"
    code = (
        "import json, sys\n"
        "from ansible.module_utils.testing import patch_module_args\n"
        "from ansible_collections.vllm_infra.profiling.plugins.modules import cdi_devices\n"
        f"with patch_module_args({{'spec_dirs': [{str(etc)!r}], 'podman_version': '5.4.2'}}):\n"
        "    cdi_devices.main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={"PYTHONPATH": f"{lib}{os.pathsep}{collections}", "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )
    result = json.loads(proc.stdout)
    assert result["failed"] is True
    assert "PyYAML" in result["msg"] and "nvidia.yaml" in result["msg"]
