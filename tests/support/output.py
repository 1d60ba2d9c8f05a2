# SPDX-License-Identifier: GPL-3.0-or-later
"""Figures a test measures (wall times, sizes), kept in tests/output/<name>.json for the closing notes."""

from __future__ import annotations

import json
import typing as t

from .ansible import REPO

OUTPUT = REPO / "tests" / "output"


def record(name: str, **figures: t.Any) -> None:
    """Merge ``figures`` into tests/output/<name>.json and print them."""
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(figures)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(figures))
