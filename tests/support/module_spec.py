# SPDX-License-Identifier: GPL-3.0-or-later
"""A module's argument spec as its main() builds it (for docs-versus-spec tests)."""

from __future__ import annotations

import typing as t

import pytest


class _Captured(Exception):
    pass


def argument_spec(module: t.Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, t.Any]:
    """Run ``module.main()`` with AnsibleModule replaced by a stand-in that keeps the spec and stops."""
    captured: dict[str, t.Any] = {}

    def fake_module(argument_spec: dict[str, t.Any], **kw: t.Any) -> None:
        captured.update(argument_spec)
        raise _Captured

    monkeypatch.setattr(module, "AnsibleModule", fake_module)
    with pytest.raises(_Captured):
        module.main()
    return captured
