# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for module_utils/_nvidia_smi.py on every nvidia-smi fixture.

Files in tests/fixtures/nvidia-smi/ are real outputs (PROVENANCE.md). Besides the expectations
written out below for known files, every file is picked up by name pattern, so captures added later
(such as ``h100_*``) are parsed and checked for the invariants of their kind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _nvidia_smi as smi

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "nvidia-smi"


def files(pattern: str) -> list[str]:
    return sorted(p.name for p in FIXTURES.glob(pattern))


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


QUERY_CSVS = sorted(set(files("*query-gpu*.csv")) - set(files("csv_noheader_query-gpu_*")))
BANNERS = sorted(set(files("table_*.txt")) | set(files("*_nvidia-smi.txt")))
LISTINGS = sorted(set(files("L_*.txt")) | set(files("*_nvidia-smi_-L.txt")))


def test_fixture_discovery() -> None:
    # the fixture set this file was written against; more may come (they are then tested generically)
    assert {"h200_580.159.04_query-gpu.csv", "h200_580.159.04_query-gpu_noheader_nounits.csv"} <= set(QUERY_CSVS)
    assert len(BANNERS) >= 5
    assert len(LISTINGS) >= 4


# --------------------------------------------------------------------------- --query-gpu CSV


@pytest.mark.parametrize("name", QUERY_CSVS)
def test_query_csv_invariants(name: str) -> None:
    rows = smi.parse_query_csv(text(name))
    assert rows
    gpus = smi.gpus_from_query(rows)
    assert [gpu["index"] for gpu in gpus] == list(range(len(gpus)))
    for gpu in gpus:
        assert re.match(r"^GPU-[0-9a-f-]+$", gpu["uuid"])
        assert re.match(r"^\d{3}\.\d+(\.\d+)?$", gpu["driver_version"])
        assert gpu["memory_total_mib"] > 1000
        assert gpu["mig_mode"] in {"Enabled", "Disabled", None}
        assert gpu["name"].startswith(("NVIDIA", "Tesla", "Quadro"))


def test_query_with_header_and_units_equals_noheader_nounits() -> None:
    """The two real H200 captures: the same query with and without header/units parse identically."""
    with_header = smi.parse_query_csv(text("h200_580.159.04_query-gpu.csv"))
    plain = smi.parse_query_csv(text("h200_580.159.04_query-gpu_noheader_nounits.csv"))
    assert with_header == plain
    assert smi.gpus_from_query(plain) == [
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


def test_query_header_names_its_own_columns() -> None:
    """The RTX PRO 6000 capture queried six fields (no pci.bus_id): the header decides the columns."""
    gpus = smi.gpus_from_query(
        smi.parse_query_csv(
            text("csv_query-gpu_index-name-uuid-driver-memtotal-migmode_rtxpro6000-bse_x8_mig-enabled.csv")
        )
    )
    assert len(gpus) == 8
    assert {gpu["name"] for gpu in gpus} == {"NVIDIA RTX PRO 6000 Blackwell Server Edition"}
    assert {gpu["memory_total_mib"] for gpu in gpus} == {97887}
    assert {gpu["mig_mode"] for gpu in gpus} == {"Enabled"}
    assert {gpu["pci_bus_id"] for gpu in gpus} == {None}
    assert gpus[7]["uuid"] == "GPU-f4c61521-240a-da09-2787-e576034e197e"


@pytest.mark.parametrize(
    ("name", "fields", "expected"),
    [
        (
            "csv_noheader_query-gpu_mig.mode.current_a100-sxm4-40gb_i0.csv",
            ["mig.mode.current"],
            [{"mig.mode.current": "Enabled"}],
        ),
        (
            "csv_noheader_query-gpu_name-pci.device_id_h100-nvl.csv",
            ["name", "pci.device_id"],
            [{"name": "NVIDIA H100 NVL", "pci.device_id": "0x232110DE"}],
        ),
    ],
)
def test_query_noheader_other_fields(name: str, fields: list[str], expected: list[dict]) -> None:
    assert smi.parse_query_csv(text(name), fields) == expected


def test_query_missing_values_and_units() -> None:
    # Constructed row (not a capture): how nvidia-smi prints fields a GPU lacks, with units on.
    row = "0, Tesla T4, GPU-00000000-0000-0000-0000-000000000000, 615.71.09, 15360 MiB, [N/A], 00000000:00:04.0\n"
    (gpu,) = smi.gpus_from_query(smi.parse_query_csv(row))
    assert gpu["mig_mode"] is None
    assert gpu["memory_total_mib"] == 15360
    # a name containing ", " would add a column; it is joined back into the name
    (odd,) = smi.parse_query_csv("1, Some, GPU, GPU-1, 1.0, 10, [Not Supported], 00:01\n")
    assert odd["name"] == "Some, GPU"
    assert odd["pci.bus_id"] == "00:01"
    assert smi.parse_query_csv("\n") == []


# --------------------------------------------------------------------------- banner

BANNER_CASES = {
    "table_a100-sxm4-40gb_i0_mig-enabled_580.126.09_shared-memory-usage.txt": ("580.126.09", "13.0", "classic"),
    "table_h100-sxm-80gb-hbm3_x8_565.57.01.txt": ("565.57.01", "12.7", "classic"),
    "table_rtxpro6000-bse_in-pod_mig-1g.24gb_610.43.02_kmd-umd-banner.txt": ("610.43.02", "13.3", "kmd-umd"),
    "table_tesla-t4_615.71.09_kmd-umd-banner.txt": ("615.71.09", "13.4", "kmd-umd"),
    "h200_580.159.04_nvidia-smi.txt": ("580.159.04", "13.0", "classic"),
}


@pytest.mark.parametrize("name", BANNERS)
def test_banner(name: str) -> None:
    parsed = smi.parse_banner(text(name))
    assert re.match(r"^\d{3}\.\d+(\.\d+)?$", parsed["driver_version"])
    assert re.match(r"^\d+\.\d+$", parsed["cuda_version"])
    assert parsed["nvidia_smi_version"] == parsed["driver_version"]
    if name in BANNER_CASES:
        assert (parsed["driver_version"], parsed["cuda_version"], parsed["banner_style"]) == BANNER_CASES[name]


def test_q_output_has_the_same_versions() -> None:
    parsed = smi.parse_banner(text("h200_580.159.04_nvidia-smi_-q_-d_MEMORY.txt"))
    assert (parsed["driver_version"], parsed["cuda_version"]) == ("580.159.04", "13.0")


def test_banner_of_failure_is_empty() -> None:
    assert smi.parse_banner(text("error_no-driver_gcp-vm.txt"))["driver_version"] is None


# --------------------------------------------------------------------------- -L

LIST_CASES = {
    "L_a100-sxm4-40gb_x8_mig-mixed-ci-profiles.txt": (8, {0: ["4g.20gb", "1c.2g.10gb", "1c.2g.10gb", "1g.5gb"]}),
    "L_a100-sxm4-80gb_x4_mig.txt": (4, {0: ["1g.20gb"] * 4}),
    "L_rtxpro6000-bse_x8_mig-on-gpu4.txt": (8, {4: ["1g.24gb"] * 4}),
    "h200_580.159.04_nvidia-smi_-L.txt": (1, {}),
}


@pytest.mark.parametrize("name", LISTINGS)
def test_list(name: str) -> None:
    gpus = smi.parse_list(text(name))
    assert [gpu["index"] for gpu in gpus] == list(range(len(gpus)))
    assert all(gpu["uuid"].startswith("GPU-") for gpu in gpus)
    for gpu in gpus:
        assert [mig["index"] for mig in gpu["mig_devices"]] == list(range(len(gpu["mig_devices"])))
        assert all(mig["uuid"].startswith("MIG-") for mig in gpu["mig_devices"])
    if name in LIST_CASES:
        count, profiles = LIST_CASES[name]
        assert len(gpus) == count
        assert {
            gpu["index"]: [m["profile"] for m in gpu["mig_devices"]] for gpu in gpus if gpu["mig_devices"]
        } == profiles
    # every line of the file is understood
    assert sum(1 + len(gpu["mig_devices"]) for gpu in gpus) == len(text(name).strip().splitlines())


def test_merge_mig_from_real_outputs() -> None:
    """The RTX PRO 6000 host: query CSV and -L of the same 8 GPUs; MIG devices land on GPU 4."""
    gpus = smi.gpus_from_query(
        smi.parse_query_csv(
            text("csv_query-gpu_index-name-uuid-driver-memtotal-migmode_rtxpro6000-bse_x8_mig-enabled.csv")
        )
    )
    smi.merge_mig(gpus, smi.parse_list(text("L_rtxpro6000-bse_x8_mig-on-gpu4.txt")))
    assert [len(gpu["mig_devices"]) for gpu in gpus] == [0, 0, 0, 0, 4, 0, 0, 0]
    assert gpus[4]["mig_devices"][0] == {
        "index": 0,
        "profile": "1g.24gb",
        "uuid": "MIG-0b090ecd-97b3-5022-b410-353a54064db3",
    }


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("name", "rc", "kind", "words"),
    [
        ("error_no-driver_gcp-vm.txt", 9, "no_driver", "couldn't communicate with the NVIDIA driver"),
        ("error_driver-library-version-mismatch_535.161.txt", 18, "version_mismatch", "reboot is likely needed"),
        # the mismatch text alone is enough (some wrappers lose the exit code)
        ("error_driver-library-version-mismatch_535.161.txt", 0, "version_mismatch", "NVML library 535.161"),
    ],
)
def test_classify_failure(name: str, rc: int, kind: str, words: str) -> None:
    failure = smi.classify_failure(rc, text(name))
    assert failure["kind"] == kind
    assert words in failure["message"]


@pytest.mark.parametrize("name", [*QUERY_CSVS, *BANNERS, *LISTINGS])
def test_real_successful_output_is_not_a_failure(name: str) -> None:
    assert smi.classify_failure(0, text(name)) is None


def test_other_failure() -> None:
    failure = smi.classify_failure(15, "Unable to determine the device handle for GPU0000:00:06.0: Unknown Error")
    assert failure["kind"] == "error"
    assert "exit code 15" in failure["message"]
