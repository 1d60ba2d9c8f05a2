# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import json

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils._container import (
    container_log_tail,
    container_state,
    parse_state,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (json.dumps([{"State": {"Status": "running", "Running": True}}]), "running"),
        (json.dumps([{"State": {"Status": "exited", "ExitCode": 1}}]), "exited"),
        ("[]", None),
        ("", None),
        ("not json", None),
    ],
)
def test_parse_state(text: str, expected: str | None) -> None:
    assert parse_state(text) == expected


class FakeModule:
    """Stands in for AnsibleModule.run_command only: answers are given per test."""

    def __init__(self, rc: int, out: str, err: str = "") -> None:
        self.answer = (rc, out, err)
        self.calls: list[list[str]] = []

    def run_command(self, argv: list[str]):
        self.calls.append(argv)
        return self.answer


def test_missing_container_is_reported_as_missing() -> None:
    module = FakeModule(125, "", "Error: no such container vit-x")
    assert container_state(module, "podman", "vit-x") == "missing"
    assert module.calls == [["podman", "container", "inspect", "vit-x"]]


def test_log_tail_says_why_it_is_missing() -> None:
    module = FakeModule(125, "", "Error: no container with name or ID vit-x found")
    assert (
        container_log_tail(module, "podman", "vit-x", 5) == "(no logs: Error: no container with name or ID vit-x found)"
    )
    assert module.calls == [["podman", "logs", "--tail", "5", "vit-x"]]
