# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
name: nsys_distribution
short_description: How the nsys image reaches a fleet's hosts
version_added: 0.1.0
description:
  - C(local) - every host builds its own nsys image. C(registry) - one host builds and pushes it, the others pull it.
    C(archive) - one host builds and saves it, the controller carries the archive to the others, which load it.
  - C(auto) is C(registry) when the nsys image is named in a registry (C(registry.example.com/team/vllm-nsys:tag))
    and C(local) for a C(localhost/) or unqualified name.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
positional: _input
options:
  _input:
    description: The setting, C(auto), C(local), C(registry) or C(archive).
    type: str
    required: true
  nsys_image:
    description: The nsys image's reference.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: registry, for an image named in a registry
  ansible.builtin.debug:
    msg: "{{ 'auto' | vllm_infra.profiling.nsys_distribution('registry.example.internal/perf/vllm-nsys:3.2.1') }}"
"""

RETURN = r"""
_value:
  description: C(local), C(registry) or C(archive).
  type: str
"""

from ansible.errors import AnsibleFilterError  # noqa: E402

from ansible_collections.vllm_infra.profiling.plugins.module_utils._registry import (  # noqa: E402
    RegistryError,
    nsys_distribution,
)


def nsys_distribution_filter(setting, nsys_image):
    try:
        return nsys_distribution(str(setting), str(nsys_image))
    except RegistryError as exc:
        raise AnsibleFilterError(f"nsys_distribution: {exc}") from exc


class FilterModule:
    """How the nsys image reaches the fleet."""

    def filters(self):
        return {"nsys_distribution": nsys_distribution_filter}
