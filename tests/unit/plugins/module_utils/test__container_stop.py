# SPDX-License-Identifier: GPL-3.0-or-later
"""The decision logic of the graceful stop (module container_stop): which signal is sent when, what ends it,
what is reported. The podman side runs for real in tests/integration/test_nsys_e2e.py (a real nsys container
stopped by SIGINT; a shell that traps SIGINT and SIGTERM, killed and removed; a container that had exited)."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils._container import (
    StopFailed,
    escalate,
    parse_running,
)

STEPS = (("SIGINT", 600.0), ("SIGTERM", 60.0))


class FakeContainer:
    """A container that exits after the n-th signal (``None``: never), on a clock that the waits advance."""

    def __init__(self, exits_after: int | None, running: bool = True, exit_code: str = "0", exit_delay: float = 1.5):
        self.exits_after = exits_after
        self.running = running
        self.exit_code = exit_code
        self.exit_delay = exit_delay
        self.now = 100.0
        self.log: list[str] = []

    def clock(self) -> float:
        return self.now

    def is_running(self) -> bool:
        return self.running

    def send(self, signal: str) -> None:
        self.log.append(signal)

    def wait(self, timeout: float) -> str | None:
        self.log.append(f"wait {timeout:g}")
        if self.exits_after is not None and len([e for e in self.log if e.startswith("SIG")]) >= self.exits_after:
            self.now += self.exit_delay
            self.running = False
            return self.exit_code
        self.now += timeout
        return None

    def remove(self) -> None:
        self.log.append("rm")
        self.running = False

    def stop(self, steps: t.Sequence[tuple[str, float]] = STEPS) -> dict[str, t.Any]:
        return escalate(
            list(steps),
            is_running=self.is_running,
            send=self.send,
            wait=self.wait,
            remove=self.remove,
            clock=self.clock,
        )


def test_sigint_is_enough() -> None:
    box = FakeContainer(exits_after=1)
    assert box.stop() == {
        "was_running": True,
        "signal": "SIGINT",
        "sent": ["SIGINT"],
        "seconds": 1.5,
        "exit_code": "0",
        "removed": False,
    }
    assert box.log == ["SIGINT", "wait 600"]


def test_sigterm_after_sigint_times_out() -> None:
    box = FakeContainer(exits_after=2, exit_code="143")
    result = box.stop()
    assert box.log == ["SIGINT", "wait 600", "SIGTERM", "wait 60"]
    assert (result["signal"], result["exit_code"], result["seconds"], result["removed"]) == (
        "SIGTERM",
        "143",
        601.5,
        False,
    )


def test_killed_and_removed_when_every_signal_is_ignored() -> None:
    box = FakeContainer(exits_after=None)
    result = box.stop([("SIGINT", 4.0), ("SIGTERM", 3.0)])
    assert box.log == ["SIGINT", "wait 4", "SIGTERM", "wait 3", "rm"]
    assert result == {
        "was_running": True,
        "signal": "SIGKILL",
        "sent": ["SIGINT", "SIGTERM"],
        "seconds": 7.0,
        "exit_code": "",
        "removed": True,
    }


def test_a_container_that_is_not_running_gets_nothing() -> None:
    box = FakeContainer(exits_after=1, running=False)
    result = box.stop()
    assert (result["was_running"], result["signal"], result["sent"], result["removed"]) == (False, "none", [], False)
    assert box.log == []


def test_a_signal_that_cannot_be_sent_stops_the_escalation() -> None:
    box = FakeContainer(exits_after=None)

    def refuse(signal: str) -> None:
        raise StopFailed(f"podman kill --signal {signal} x failed: Error: invalid signal")

    with pytest.raises(StopFailed, match="invalid signal"):
        escalate(STEPS, is_running=box.is_running, send=refuse, wait=box.wait, remove=box.remove, clock=box.clock)
    assert box.log == []  # neither a wait nor a removal after the failure


@pytest.mark.parametrize(
    ("out", "expected"),
    [("true 0\n", (True, "0")), ("false 137\n", (False, "137")), ("false 0", (False, "0")), ("", (False, ""))],
)
def test_parse_running(out: str, expected: tuple[bool, str]) -> None:
    assert parse_running(out) == expected
