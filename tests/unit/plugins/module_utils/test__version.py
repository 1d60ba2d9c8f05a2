# SPDX-License-Identifier: GPL-3.0-or-later
"""The one version parser (module_utils/_version.py), in its three uses: tool output (_cli), vLLM versions
(_profiler), CDI spec versions (_cdi)."""

from __future__ import annotations

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _cdi, _profiler
from ansible_collections.vllm_infra.profiling.plugins.module_utils._version import (
    parse_version,
    version_key,
    version_str,
)


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("podman version 4.3.1", (4, 3, 1)),
        ("podman version 5.2.0-dev", (5, 2, 0)),
        ("NVIDIA Container Toolkit CLI version 1.20.0\ncommit: 5505e2f94d9aaa08561490db974ba3cd676af20", (1, 20, 0)),
        ("NVIDIA Nsight Systems version 2022.4.2.50-32196742v0", (2022, 4, 2)),
        ("4.9", (4, 9)),
        ("v1.2.3", (1, 2, 3)),
        ("no version here", None),
        ("", None),
        (None, None),
    ],
)
def test_search_in_tool_output(text: str | None, version: tuple | None) -> None:
    assert parse_version(text) == version


def test_prefix_of_a_vllm_version() -> None:
    """vLLM's own spellings are in test__profiler.py (through _profiler.parse_version); here, what prefix means."""
    assert parse_version("0.10.1.1+rhai1", "prefix") == (0, 10, 1)
    assert parse_version(" 1.0", "prefix") == (1, 0)
    assert parse_version("rhaiis-3.2.1", "prefix") is None  # found by search, but not at the start
    assert parse_version("rhaiis-3.2.1") == (3, 2, 1)


@pytest.mark.parametrize(
    ("text", "version"),
    [("0.5.0", (0, 5, 0)), ("v1.0.0", (1, 0, 0)), (" 0.8.0\n", (0, 8, 0)), ("0.5", None), ("0.5.0-rc1", None)],
)
def test_exact_semver(text: str, version: tuple | None) -> None:
    assert parse_version(text, "exact") == version


def test_every_user_reads_versions_through_it() -> None:
    assert _profiler.parse_version("1.0") == (1, 0, 0)  # padded: compared against 3-part boundaries
    assert _cdi.semver("0.6.0") == (0, 6, 0) and _cdi.semver("0.6") is None and _cdi.semver(None) is None
    with pytest.raises(ValueError, match="how must be"):
        parse_version("1.2", "fuzzy")


def test_version_helpers() -> None:
    assert version_str((4, 3, 1)) == "4.3.1"
    assert version_str(None) is None
    assert version_key((5, 1)) == version_key((5, 1, 0)) < version_key((5, 1, 1))
