# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
name: failure_reason
short_description: One line saying why a task failed, with the cause its tool printed
version_added: 0.1.0
description:
  - Takes a failed task's result (C(ansible_failed_result) in a C(rescue)) and returns its message followed by the
    line of its C(stderr) that names the cause, such as podman's C(Error:) line.
  - containers.podman's modules fail with C(Container X exited with code 125 when runed) and keep podman's words
    (C(address already in use), C(unresolvable CDI devices ...)) only in C(stderr).
author:
  - vllm_infra.profiling contributors (@vllm-infra)
positional: _input
options:
  _input:
    description: The failed task's result.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Record why the block failed
  ansible.builtin.set_fact:
    reason: "{{ ansible_failed_result | vllm_infra.profiling.failure_reason }}"
  # Container vllm-profile exited with code 126 when runed: unresolvable CDI devices nvidia.com/gpu=7
"""

RETURN = r"""
_value:
  description: The reason, one line.
  type: str
"""

from ansible_collections.vllm_infra.profiling.plugins.module_utils._podman import failure_reason  # noqa: E402


class FilterModule:
    """Why a task failed."""

    def filters(self):
        return {"failure_reason": lambda result: failure_reason(result if isinstance(result, dict) else {})}
