# SPDX-License-Identifier: GPL-3.0-or-later
"""The gpu_facts module run in-process against a STAND-IN nvidia-smi that replays real captures.

There is no GPU here. The stand-in is a shell script that prints the real outputs in
tests/fixtures/nvidia-smi/ (PROVENANCE.md) for the command line it gets: the query CSV for
``--query-gpu=...``, the table for no arguments, the listing for ``-L``. Each capture set of the
form ``<prefix>query-gpu_noheader_nounits.csv`` + ``<prefix>nvidia-smi.txt`` + ``<prefix>nvidia-smi_-L.txt``
(the files tools/gpu/capture_gpu_fixtures.py writes on a real GPU machine, e.g. ``h200_580.159.04_``)
becomes a scenario, so new captures are tested as they are added.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _nvidia_smi
from ansible_collections.vllm_infra.profiling.plugins.modules import gpu_facts

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "nvidia-smi"
REPO = Path(__file__).resolve().parents[4]

REPLAY = """#!/bin/sh
# STAND-IN nvidia-smi (vllm_infra.profiling tests): replays real captures, see PROVENANCE.md
case "$1" in
  --query-gpu=*) file='{query}' ;;
  -L) file='{listing}' ;;
  "") file='{table}' ;;
  *) echo "stand-in nvidia-smi: unexpected arguments $*" >&2; exit 2 ;;
esac
cat "$file"
exit {rc}
"""


def replay(tmp_path: Path, query: str, table: str, listing: str, rc: int = 0) -> Path:
    script = tmp_path / "nvidia-smi"
    paths = {key: FIXTURES / name for key, name in (("query", query), ("table", table), ("listing", listing))}
    script.write_text(REPLAY.format(rc=rc, **paths))
    script.chmod(0o755)
    return script


def run(capsys: pytest.CaptureFixture, **args) -> dict:
    with patch_module_args({**args, "_ansible_check_mode": True}), pytest.raises(SystemExit):
        gpu_facts.main()
    return json.loads(capsys.readouterr().out)


def capture_sets() -> list[str]:
    prefixes = [
        p.name[: -len("query-gpu_noheader_nounits.csv")] for p in FIXTURES.glob("*query-gpu_noheader_nounits.csv")
    ]
    return sorted(
        prefix
        for prefix in prefixes
        if (FIXTURES / f"{prefix}nvidia-smi.txt").exists() and (FIXTURES / f"{prefix}nvidia-smi_-L.txt").exists()
    )


def test_capture_sets_found() -> None:
    assert "h200_580.159.04_" in capture_sets()


@pytest.mark.parametrize("prefix", capture_sets())
def test_facts_from_real_gpu_captures(tmp_path, capsys, prefix: str) -> None:
    smi = replay(
        tmp_path, f"{prefix}query-gpu_noheader_nounits.csv", f"{prefix}nvidia-smi.txt", f"{prefix}nvidia-smi_-L.txt"
    )
    result = run(capsys, nvidia_smi=str(smi))
    facts = result["ansible_facts"]
    assert result["changed"] is False
    assert facts["nvidia_driver_loaded"] is True and facts["nvidia_driver_state"] == "ok"
    banner = _nvidia_smi.parse_banner((FIXTURES / f"{prefix}nvidia-smi.txt").read_text())
    assert facts["nvidia_driver_version"] == banner["driver_version"]
    assert facts["nvidia_cuda_version"] == banner["cuda_version"]
    listed = _nvidia_smi.parse_list((FIXTURES / f"{prefix}nvidia-smi_-L.txt").read_text())
    assert facts["nvidia_gpu_count"] == len(listed) == len(facts["nvidia_gpus"])
    assert [g["uuid"] for g in facts["nvidia_gpus"]] == [g["uuid"] for g in listed]
    assert facts["nvidia_smi_path"] == str(smi)


def test_h200_facts(tmp_path, capsys) -> None:
    p = "h200_580.159.04_"
    smi = replay(tmp_path, f"{p}query-gpu_noheader_nounits.csv", f"{p}nvidia-smi.txt", f"{p}nvidia-smi_-L.txt")
    facts = run(capsys, nvidia_smi=str(smi))["ansible_facts"]
    assert facts["nvidia_driver_version"] == "580.159.04"
    assert facts["nvidia_cuda_version"] == "13.0"
    assert facts["nvidia_gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H200",
            "uuid": "GPU-7271b7f6-6341-8c0b-275d-7cfdc47af3b0",
            "driver_version": "580.159.04",
            "memory_total_mib": 143771,
            "mig_mode": "Disabled",
            "pci_bus_id": "00000000:00:06.0",
            "mig_devices": [],
        }
    ]


def test_mig_host_with_610_banner(tmp_path, capsys) -> None:
    """RTX PRO 6000 host (610.43.02): query CSV with header and units, -L with 4 MIG devices on GPU 4,
    and the 610+ KMD/CUDA UMD banner (captured in a pod on that host)."""
    smi = replay(
        tmp_path,
        "csv_query-gpu_index-name-uuid-driver-memtotal-migmode_rtxpro6000-bse_x8_mig-enabled.csv",
        "table_rtxpro6000-bse_in-pod_mig-1g.24gb_610.43.02_kmd-umd-banner.txt",
        "L_rtxpro6000-bse_x8_mig-on-gpu4.txt",
    )
    facts = run(capsys, nvidia_smi=str(smi))["ansible_facts"]
    assert (facts["nvidia_driver_version"], facts["nvidia_cuda_version"]) == ("610.43.02", "13.3")
    assert facts["nvidia_gpu_count"] == 8
    assert [len(g["mig_devices"]) for g in facts["nvidia_gpus"]] == [0, 0, 0, 0, 4, 0, 0, 0]
    assert {g["mig_mode"] for g in facts["nvidia_gpus"]} == {"Enabled"}


@pytest.mark.parametrize(
    "case",
    [
        ("error_no-driver_gcp-vm.txt", 9, "no_driver", "No NVIDIA driver is loaded"),
        ("error_driver-library-version-mismatch_535.161.txt", 18, "version_mismatch", "A reboot is likely needed"),
    ],
)
def test_broken_driver(tmp_path, capsys, case: tuple[str, int, str, str]) -> None:
    fixture, rc, state, words = case
    smi = replay(tmp_path, fixture, fixture, fixture, rc=rc)
    result = run(capsys, nvidia_smi=str(smi))
    facts = result["ansible_facts"]
    assert not result.get("failed")
    assert facts["nvidia_driver_loaded"] is False
    assert facts["nvidia_driver_state"] == state
    assert words in facts["nvidia_driver_message"]
    assert facts["nvidia_reboot_required"] is (state == "version_mismatch")
    assert facts["nvidia_gpus"] == [] and facts["nvidia_driver_version"] is None

    failed = run(capsys, nvidia_smi=str(smi), fail_on_missing=True)
    assert failed["failed"] is True and words in failed["msg"]


def test_no_nvidia_smi(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nvidia-smi is not installed here anyway
    facts = run(capsys)["ansible_facts"]
    assert facts["nvidia_driver_state"] == "nvidia_smi_missing"
    assert facts["nvidia_driver_loaded"] is False
    failed = run(capsys, nvidia_smi=str(tmp_path / "nvidia-smi"), fail_on_missing=True)
    assert failed["failed"] is True and "not found" in failed["msg"]


def test_through_ansible_facts_reach_hostvars(tmp_path) -> None:
    """One run through the real `ansible` CLI: the facts become host variables."""
    p = "h200_580.159.04_"
    smi = replay(tmp_path, f"{p}query-gpu_noheader_nounits.csv", f"{p}nvidia-smi.txt", f"{p}nvidia-smi_-L.txt")
    env = {
        # not PYTHONPATH: under ansible-test units it holds a module_utils-only `ansible` package
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build" / "collections"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
    }
    playbook = tmp_path / "facts.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - vllm_infra.profiling.gpu_facts: {{nvidia_smi: {smi}}}\n"
        "    - ansible.builtin.debug: {msg: '{{ nvidia_gpus[0].name }} {{ nvidia_cuda_version }}'}\n"
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    assert tasks[1]["hosts"]["localhost"]["msg"] == "NVIDIA H200 13.0"
