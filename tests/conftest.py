# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared pytest configuration for the collection's tests.

Tests that need podman or the vLLM image do not skip when those are missing:
they fail, so CI never goes green by skipping the real parts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# `from support import ...` works under plain pytest because tests/ is a rootdir conftest directory;
# ansible-test units imports the tests as ansible_collections.vllm_infra.profiling.tests.* packages
# and adds nothing to sys.path, so add tests/ here for both.
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))


# tools/test runs the integration tier in two processes (pytest -n 2 --dist loadfile): each test file runs whole
# in one of them, so its module fixtures (a vLLM server, a registry, a fleet) start once. (--dist loadgroup
# would let files share a process, but with pytest 9.2 / xdist 3.8 it spreads a group's tests over both
# processes, and their module fixtures start twice: measured.) Test files must therefore not change anything
# machine-wide that another file reads: test_cdi_devices_podman's specs in /var/run/cdi are unique names that
# no other test asks for.
# The longest files first, so that neither process is left with a long one at the end (seconds per file in the
# parallel fresh-clone run of 2026-11-30 at 51dd1b2, junit times; test_awx_runner.py measured alone since it took
# over the fleet file's capture; the rest follow in file order).
# tools/test passes --no-loadscope-reorder: xdist's default order is "most tests first", which ran the two
# molecule scenarios (then one file, ~470 s) and the fleet file near the end, the fleet file alone for its last
# ~3 minutes (measured). The scenarios are two files since, so that two processes run them side by side.
LONGEST_FIRST = {
    "test_molecule_host_prep_rhel9.py": 247,
    "test_molecule_host_prep_debian12.py": 205,
    "test_role_defaults.py": 204,
    "test_nsys_e2e.py": 158,
    "test_vllm_env_era.py": 119,
    "test_vllm_profile_role.py": 112,
    "test_podman5_host.py": 109,
    "test_registry.py": 82,
    "test_awx_runner.py": 80,
    "test_vllm_profiler_session_real.py": 51,
    "test_fleet.py": 50,
    "test_trace_summary_vllm.py": 42,
    "test_harness_vllm.py": 9,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A stable sort: file order within a weight, test order within a file.
    items.sort(key=lambda item: -LONGEST_FIRST.get(item.path.name, 0))


def pytest_configure(config: pytest.Config) -> None:
    # ansible-test units runs pytest with its own ini file (and --strict-markers): register the
    # markers of pyproject.toml here too.
    for marker in (
        "podman: needs podman and the harness images",
        "vllm: starts the real vLLM CPU server",
        "molecule: runs a molecule scenario",
    ):
        config.addinivalue_line("markers", marker)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _module_side_of_ansible():
    """Importing controller code (ansible.errors, filters) flips ansible's process-wide
    ``is_controller`` flag, after which in-process module tests lose their warnings. Every test
    starts on the module side; tests that need the controller import what they need themselves."""
    from ansible.module_utils import _internal  # noqa: PLC0415 - only where ansible is installed

    saved = _internal.is_controller
    _internal.is_controller = False
    yield
    _internal.is_controller = saved
