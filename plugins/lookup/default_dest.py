# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
name: default_dest
short_description: The controller directory that captures land in by default
version_added: 0.1.0
description:
  - C(captures) in the directory C(ansible-playbook) runs in; under ansible-runner (AWX, Tower) in the job's artifacts
    directory (E(AWX_ISOLATED_DATA_DIR)).
  - Never the playbook's directory, which is inside the installed collection for
    C(ansible-playbook vllm_infra.profiling.profile_torch). (The C(pipe) lookup cannot tell, since it runs in the
    playbook's directory.)
author:
  - vllm_infra.profiling contributors (@vllm-infra)
options: {}
"""

EXAMPLES = r"""
- name: Where captures go unless vllm_profile_dest says otherwise
  ansible.builtin.debug:
    msg: "{{ lookup('vllm_infra.profiling.default_dest') }}"
"""

RETURN = r"""
_raw:
  description: The directory (absolute).
  type: list
  elements: path
"""

import os  # noqa: E402

from ansible.plugins.lookup import LookupBase  # noqa: E402

# ansible-runner sets this to the job's artifacts directory (ansible_runner/config/_base.py).
RUNNER_ARTIFACTS_ENV = "AWX_ISOLATED_DATA_DIR"


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        base = os.environ.get(RUNNER_ARTIFACTS_ENV) or os.getcwd()
        return [os.path.join(os.path.abspath(base), "captures")]
