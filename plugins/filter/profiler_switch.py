# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
name: profiler_switch
short_description: How to switch vLLM's profiler on, for a given vLLM version
version_added: 0.1.0
description:
  - Returns the environment variables and/or server arguments that start a vLLM server with its profiler on.
  - vLLM 0.5.5 to 0.12 read environment variables (C(VLLM_TORCH_PROFILER_DIR) and friends); 0.13 to 0.15
    accept both those and C(--profiler-config); from 0.16 only C(--profiler-config) works (the variables are
    ignored and C(/start_profile) answers 404).
  - Options left out keep vLLM's own defaults and are not emitted. An option that the version cannot set
    (for instance O(with_stack=false) before vLLM 0.10.1, where stacks are always recorded) is an error.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
positional: _input
options:
  _input:
    description: The vLLM version (C(0.12.2), C(v0.13.0), C(0.11.2.post2), C(0.10.1.1+rhai1)).
    type: str
    required: true
  profiler_dir:
    description:
      - Absolute directory inside the server where traces are written. Required for O(kind=torch).
    type: str
  kind:
    description:
      - C(torch) writes PyTorch-profiler traces; C(cuda) makes C(/start_profile) and C(/stop_profile) call
        cudaProfilerStart/Stop, for an Nsight Systems capture range (vLLM 0.11.1 and later).
    type: str
    choices: [torch, cuda]
    default: torch
  record_shapes:
    description: Record tensor shapes (vLLM 0.10.1 and later).
    type: bool
  with_memory:
    description: Profile memory (vLLM 0.10.1 and later).
    type: bool
  with_stack:
    description:
      - Record Python stacks (vLLM's default is on). Traces get about 30 times bigger and C(/stop_profile)
        about 30 times slower. Configurable from vLLM 0.10.1.
    type: bool
  with_flops:
    description: Estimate FLOPs (vLLM 0.10.1 and later).
    type: bool
  use_gzip:
    description: Write gzip'd traces (vLLM's default is on; configurable from vLLM 0.12).
    type: bool
  switch:
    description:
      - C(auto) uses environment variables before vLLM 0.13 and C(--profiler-config) from 0.13.
      - C(env) or C(config) force one; an error where the version lacks it.
    type: str
    choices: [auto, env, config]
    default: auto
  run_link:
    description:
      - Let the server write through the link C(current) in O(profiler_dir) (its profiler directory becomes
        C(<profiler_dir>/current)), which M(vllm_infra.profiling.vllm_profiler_session) points at a directory
        of its own for each capture (its option C(run_subdir)). The server keeps its definition across captures.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Server arguments for vLLM 0.32 (only --profiler-config works)
  ansible.builtin.debug:
    msg: "{{ '0.32.0' | vllm_infra.profiling.profiler_switch(profiler_dir='/profiles', with_stack=false) }}"
  # {"version": "0.32.0", "era": "config", "switch": "config", "env": {},
  #  "args": ["--profiler-config", "{\"profiler\":\"torch\",\"torch_profiler_dir\":\"/profiles\",
  #           \"torch_profiler_with_stack\":false}"], "config": {...}}

- name: Environment for an older image (vLLM 0.10.1.1, RHAIIS 3.2.1's era)
  ansible.builtin.set_fact:
    profiler_env: "{{ switch.env }}"
  vars:
    switch: "{{ '0.10.1.1' | vllm_infra.profiling.profiler_switch(profiler_dir='/profiles', record_shapes=true) }}"
  # {"VLLM_TORCH_PROFILER_DIR": "/profiles", "VLLM_TORCH_PROFILER_RECORD_SHAPES": "1"}

- name: Start the server with whichever switch its version needs
  containers.podman.podman_container:
    name: vllm
    image: "{{ vllm_image }}"
    env: "{{ vllm_env | combine(switch.env) }}"
    command: "{{ vllm_args + switch.args }}"
  vars:
    switch: "{{ vllm_version | vllm_infra.profiling.profiler_switch(profiler_dir='/profiles') }}"
"""

RETURN = r"""
_value:
  description: How to switch the profiler on.
  type: dict
  contains:
    version:
      description: The version as read (C(major.minor.patch)).
      type: str
    era:
      description: C(env) (before 0.13), C(transition) (0.13 to 0.15, both work) or C(config) (0.16 and later).
      type: str
    switch:
      description: The mechanism used, C(env) or C(config).
      type: str
    env:
      description: Environment variables to add to the server (values are strings).
      type: dict
    args:
      description: Arguments to append to the server's command line (C(--profiler-config) and its JSON).
      type: list
      elements: str
    config:
      description: The C(--profiler-config) object, V(null) with the C(env) switch.
      type: dict
"""

from ansible.errors import AnsibleFilterError  # noqa: E402

from ansible_collections.vllm_infra.profiling.plugins.module_utils._profiler import (  # noqa: E402
    ProfilerSwitchError,
    profiler_switch,
)


def profiler_switch_filter(version, profiler_dir=None, **options):
    """The filter's options are profiler_switch()'s keyword arguments (documented above)."""
    try:
        return profiler_switch(version, profiler_dir, **options)
    except TypeError as exc:  # an option the function does not take
        raise AnsibleFilterError(f"profiler_switch: {exc}") from exc
    except ProfilerSwitchError as exc:
        raise AnsibleFilterError(f"profiler_switch: {exc}") from exc


class FilterModule:
    """vLLM profiler switch by version."""

    def filters(self):
        return {"profiler_switch": profiler_switch_filter}
