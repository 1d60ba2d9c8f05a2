# SPDX-License-Identifier: GPL-3.0-or-later
"""The `dnf module` parsers, over real dnf 4.14 output (tests/fixtures/dnf, see PROVENANCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils._dnf import (
    package_versions,
    parse_artifacts,
    parse_module_list,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "dnf"
STREAMS = ["latest-dkms", "open-dkms", "575-dkms", "575-open", "580-dkms", "580-open"]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.mark.parametrize(
    ("name", "enabled"),
    [
        ("module-list-none-enabled.txt", ""),
        ("module-list-open-dkms-enabled.txt", "open-dkms"),  # "open-dkms [e]"
        ("module-list-default-enabled.txt", "latest-dkms"),  # "latest-dkms [d][e]"
        ("module-list-disabled.txt", ""),  # "[x]" everywhere
    ],
)
def test_module_list(name: str, enabled: str) -> None:
    assert parse_module_list(fixture(name), "nvidia-driver") == {
        "streams": STREAMS,
        "enabled": enabled,
        "default": "latest-dkms",  # the profiles column's "default [d]" is not a stream flag
    }


def test_module_list_of_another_module_or_of_nothing() -> None:
    empty = {"streams": [], "enabled": "", "default": ""}
    assert parse_module_list(fixture("module-list-open-dkms-enabled.txt"), "nvidia") == empty
    assert parse_module_list(fixture("module-list-missing.stderr.txt"), "nvidia-driver") == empty
    assert parse_module_list("", "nvidia-driver") == empty


def test_a_stream_in_two_repositories_is_listed_once() -> None:
    text = fixture("module-list-open-dkms-enabled.txt")
    rows = text.replace("cuda-rhel9-x86_64", "cuda-rhel9-x86_64-mirror")
    assert parse_module_list(text + rows, "nvidia-driver")["streams"] == STREAMS


def test_artifacts_and_versions() -> None:
    artifacts = parse_artifacts(fixture("module-info-open-dkms.txt"))
    assert len(artifacts) == 9
    assert artifacts[0] == "kmod-nvidia-open-dkms-3:575.57.08-1.el9.noarch"
    assert artifacts[-1] == "nvidia-open-3:580.95.05-1.el9.noarch"
    assert package_versions(artifacts, "nvidia-open") == ["575.57.08-1.el9", "580.105.08-1.el9", "580.95.05-1.el9"]
    # A name that is the prefix of another package's name matches only its own artifacts.
    assert package_versions(artifacts, "nvidia-driver") == []
    assert package_versions(["nvidia-driver-cuda-580.95.05-1.el9.x86_64"], "nvidia-driver-cuda") == ["580.95.05-1.el9"]
    assert parse_artifacts("") == []
