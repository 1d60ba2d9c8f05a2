# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness's failure path: a vLLM container that cannot start is reported with its log and removed.

That the real image serves and profiles (a completion from vLLM on the CPU, a trace from vLLM's torch
profiler, driven by plain HTTP) is checked on the shared server of test_vllm_profiler_session_real.py:
one server start fewer.
"""

from __future__ import annotations

import re

import pytest
from support import podman
from support.vllm import vllm_container

pytestmark = [pytest.mark.podman, pytest.mark.vllm]


def test_failed_start_is_removed_with_its_log() -> None:
    """A server that cannot start (model path missing) fails with its log tail, and is removed."""
    with (
        pytest.raises(AssertionError, match=r"exited \(\d+\)") as excinfo,
        vllm_container(extra_args=["--model", "/models/does-not-exist"], prefix="harness-fail"),
    ):
        pass
    name = re.search(r"vLLM container (\S+) exited", str(excinfo.value)).group(1)
    assert "does-not-exist" in str(excinfo.value)
    assert podman.run("container", "exists", name, check=False).returncode == 1
