# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
name: userns_plan
short_description: The user namespace for a vLLM container, and who owns its host directories
version_added: 0.1.0
description:
  - C(auto) follows the guide (C(--userns=keep-id:uid=<image uid>)) wherever podman runs it, that is rootless
    podman, and root's podman from 4.5. Root's podman before 4.5 runs without a user namespace, and the result's
    C(note) says so.
  - An explicit value is kept; C(problem) says why it cannot run here, if it cannot.
  - The host directories the container writes to belong to the connecting user under rootless podman (with keep-id
    that user appears in the container as the image's user), and to the image's user under root's podman (whose
    keep-id maps root's id range one to one).
author:
  - vllm_infra.profiling contributors (@vllm-infra)
positional: _input
options:
  _input:
    description: The requested user namespace (C(auto), C(keep-id:uid=2000), C(""), ...).
    type: str
    required: true
  preflight:
    description: A M(vllm_infra.profiling.vllm_host_preflight) result.
    type: dict
    required: true
  image:
    description: A M(vllm_infra.profiling.vllm_image_info) result.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Run with the guide's user namespace wherever podman supports it
  containers.podman.podman_container:
    name: vllm
    image: "{{ image.id }}"
    userns: "{{ plan.userns or omit }}"
  vars:
    plan: "{{ 'auto' | vllm_infra.profiling.userns_plan(preflight=preflight, image=image) }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    userns:
      description: The C(--userns) value (empty for none).
      type: str
    keep_id:
      description: Whether it is a keep-id namespace.
      type: bool
    note:
      description: Why C(auto) did not give keep-id here (empty otherwise).
      type: str
    problem:
      description: Why an explicit value cannot run here (empty otherwise).
      type: str
    dir_owner:
      description: Numeric owner for the host directories.
      type: int
    dir_group:
      description: Numeric group for the host directories.
      type: int
    uid:
      description: The image's uid (owner of the secret files in the container).
      type: int
    gid:
      description: The image's gid.
      type: int
"""

from ansible.errors import AnsibleFilterError  # noqa: E402

from ansible_collections.vllm_infra.profiling.plugins.module_utils._podman import userns_plan  # noqa: E402


def userns_plan_filter(requested, preflight=None, image=None):
    if not isinstance(preflight, dict) or not isinstance(image, dict):
        raise AnsibleFilterError(
            "userns_plan: preflight and image must be the results of vllm_host_preflight and vllm_image_info"
        )
    try:
        return userns_plan(str(requested), preflight, image)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"userns_plan: {exc}") from exc


class FilterModule:
    """The container's user namespace and host directory owners."""

    def filters(self):
        return {"userns_plan": userns_plan_filter}
