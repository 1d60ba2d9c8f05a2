# SPDX-License-Identifier: GPL-3.0-or-later
"""The host_prep_rhel9 molecule scenario on the RHEL 9 stand-in (dnf, module streams; also the RHEL 10
versionlock path), run for real: converge, idempotence, verify, the lifecycle as its side effect. What is real
and what stands in: tests/support/molecule.py."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from support import molecule

pytestmark = pytest.mark.molecule


def test_molecule_scenario(tmp_path: Path, record_property: t.Callable[[str, t.Any], None]) -> None:
    molecule.check_scenario("host_prep_rhel9", tmp_path, record_property)
