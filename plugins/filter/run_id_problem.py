# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
name: run_id_problem
short_description: Why a run id cannot name a capture run (empty when it can)
version_added: 0.1.0
description:
  - A run id names the run's directory on each host and on the controller (C(<dest>/<run_id>/<host>/)) and, from
    vLLM 0.32, the profile prefix of the trace files. This filter returns why O(_input) cannot be one, or an empty
    string when it can.
  - The rule is vLLM 0.32's for a profile prefix, which module M(vllm_infra.profiling.vllm_profiler_session) applies
    to its O(vllm_infra.profiling.vllm_profiler_session#module:run_subdir) and
    O(vllm_infra.profiling.vllm_profiler_session#module:profile_prefix) - 1 to 128 ASCII letters, digits, C(.),
    C(_) or C(-), starting with a letter or a digit. So C(..), C(a/b) and an empty id are refused.
  - Role C(vllm_infra.profiling.vllm_profile) checks its run id with it before anything starts on the host.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
positional: _input
options:
  _input:
    description: The run id.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the run id before the server starts
  ansible.builtin.assert:
    that: vllm_profile_run_id | vllm_infra.profiling.run_id_problem == ''
    fail_msg: "vllm_profile_run_id {{ vllm_profile_run_id | vllm_infra.profiling.run_id_problem }}"
  # vllm_profile_run_id '../runs' cannot name the run's directories and trace files: use 1-128 ASCII letters, ...
"""

RETURN = r"""
_value:
  description: Why the run id cannot be used, one line; empty when it can.
  type: str
"""

from ansible_collections.vllm_infra.profiling.plugins.module_utils._profiler import run_id_problem  # noqa: E402


class FilterModule:
    """Why a run id cannot name a run."""

    def filters(self):
        return {"run_id_problem": run_id_problem}
