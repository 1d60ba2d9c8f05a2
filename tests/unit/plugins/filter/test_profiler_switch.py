# SPDX-License-Identifier: GPL-3.0-or-later
"""The vllm_infra.profiling.profiler_switch filter: in-process, and resolved by its FQCN in real Ansible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

import pytest
from ansible.module_utils import _internal as ansible_internal


@pytest.fixture
def profiler_switch(monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., dict[str, t.Any]]:
    """The filter, imported inside the test: importing a controller plugin (ansible.errors) flags the whole
    process as the controller, and later in-process module tests would then lose their warnings to the
    controller's display. The flag is put back after the test."""
    monkeypatch.setattr(ansible_internal, "is_controller", ansible_internal.is_controller)
    from ansible_collections.vllm_infra.profiling.plugins.filter.profiler_switch import FilterModule  # noqa: PLC0415

    return FilterModule().filters()["profiler_switch"]


def test_env_era(profiler_switch) -> None:
    assert profiler_switch("0.12.2", "/profiles", record_shapes=True, with_stack=False) == {
        "version": "0.12.2",
        "era": "env",
        "switch": "env",
        "env": {
            "VLLM_TORCH_PROFILER_DIR": "/profiles",
            "VLLM_TORCH_PROFILER_RECORD_SHAPES": "1",
            "VLLM_TORCH_PROFILER_WITH_STACK": "0",
        },
        "args": [],
        "config": None,
    }


def test_config_era(profiler_switch) -> None:
    result = profiler_switch("0.32.0", profiler_dir="/profiles", with_stack=False)
    assert result["env"] == {}
    assert result["args"] == [
        "--profiler-config",
        '{"profiler":"torch","torch_profiler_dir":"/profiles","torch_profiler_with_stack":false}',
    ]


def test_errors_are_filter_errors(profiler_switch) -> None:
    from ansible.errors import AnsibleFilterError  # noqa: PLC0415

    with pytest.raises(AnsibleFilterError, match=r"profiler_switch: vLLM 0\.16\.0 ignores the VLLM_TORCH_"):
        profiler_switch("0.16.0", "/profiles", switch="env")


def test_resolved_by_fqcn_in_ansible() -> None:
    """Real ansible-core renders the filter by its fully-qualified name (collection from tools/setup.sh)."""
    expr = (
        "{{ ['0.12.2' | vllm_infra.profiling.profiler_switch(profiler_dir='/p', record_shapes=true),"
        " '0.32.0' | vllm_infra.profiling.profiler_switch('/p', with_stack=false),"
        " '0.13.0' | vllm_infra.profiling.profiler_switch(kind='cuda')] }}"
    )
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", "-m", "ansible.builtin.debug",
         "-a", json.dumps({"msg": expr})],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    msg = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert msg[0]["env"] == {"VLLM_TORCH_PROFILER_DIR": "/p", "VLLM_TORCH_PROFILER_RECORD_SHAPES": "1"}
    assert json.loads(msg[1]["args"][1]) == {
        "profiler": "torch",
        "torch_profiler_dir": "/p",
        "torch_profiler_with_stack": False,
    }
    assert msg[2]["args"] == ["--profiler-config", '{"profiler":"cuda"}']
