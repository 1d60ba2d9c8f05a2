#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
module: dnf_module_info
short_description: Read a dnf module's streams, the enabled one, and what a stream offers
version_added: 0.1.0
description:
  - Runs C(dnf module list NAME) and returns the module's streams, the enabled stream and the default one.
  - With O(stream) (one of those streams), also runs C(dnf module info NAME:STREAM) and returns its artifacts and,
    with O(package), the versions of that package the stream offers.
  - Used by the P(vllm_infra.profiling.nvidia_driver#role) role before it enables or switches the driver's stream,
    since M(ansible.builtin.dnf) can install C(@module:stream) but cannot tell which stream is enabled.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
  - vllm_infra.profiling.attributes.INFO_MODULE
options:
  name:
    description: The module's name, e.g. C(nvidia-driver).
    type: str
    required: true
  stream:
    description: A stream to read the artifacts of (ignored when the module has no such stream).
    type: str
  package:
    description: A package whose versions among the stream's artifacts are returned in RV(versions).
    type: str
"""

EXAMPLES = r"""
- name: Read the driver module's streams and what open-dkms offers of nvidia-open
  vllm_infra.profiling.dnf_module_info:
    name: nvidia-driver
    stream: open-dkms
    package: nvidia-open
  register: driver_module
  # streams: [latest-dkms, open-dkms, ...], enabled: "", default: latest-dkms,
  # versions: [575.57.08-1.el9, 580.105.08-1.el9, 580.95.05-1.el9]
"""

RETURN = r"""
streams:
  description: The module's streams in the enabled repositories, in dnf's order; empty when none offers the module.
  returned: always
  type: list
  elements: str
  sample: [latest-dkms, open-dkms, 580-open]
enabled:
  description: The enabled stream, "" when none is.
  returned: always
  type: str
  sample: open-dkms
default:
  description: The default stream, "" when none is.
  returned: always
  type: str
  sample: latest-dkms
artifacts:
  description: The packages (NEVRA) of O(stream), when it is one of RV(streams).
  returned: always
  type: list
  elements: str
  sample: [nvidia-open-3:580.95.05-1.el9.noarch]
versions:
  description: Version-release of each O(package) among RV(artifacts) (epoch and arch dropped).
  returned: always
  type: list
  elements: str
  sample: [580.95.05-1.el9]
list_output:
  description: What C(dnf module list) said (stderr, else stdout), for a message when RV(streams) is empty.
  returned: always
  type: str
  sample: "Error: No matching Modules to list"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils._dnf import (
    package_versions,
    parse_artifacts,
    parse_module_list,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "stream": {"type": "str"},
            "package": {"type": "str"},
        },
        supports_check_mode=True,
    )
    name, stream, package = module.params["name"], module.params["stream"], module.params["package"]
    dnf = module.get_bin_path("dnf", required=True)
    # A module that no enabled repository offers makes dnf exit 1: that is an answer (no streams), not an error.
    _rc, out, err = module.run_command([dnf, "-y", "-q", "module", "list", name])
    result = {"changed": False, **parse_module_list(out, name), "artifacts": [], "versions": []}
    result["list_output"] = (err or out).strip()
    if stream and stream in result["streams"]:
        rc, out, err = module.run_command([dnf, "-y", "-q", "module", "info", f"{name}:{stream}"])
        if rc != 0:
            module.fail_json(msg=f"dnf module info {name}:{stream} failed: {(err or out).strip()}", **result)
        result["artifacts"] = parse_artifacts(out)
        if package:
            result["versions"] = package_versions(result["artifacts"], package)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
