# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_facts
short_description: NVIDIA driver, CUDA and GPU facts from nvidia-smi
version_added: 0.1.0
description:
  - Runs C(nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total,mig.mode.current,pci.bus_id
    --format=csv,noheader,nounits), plain C(nvidia-smi) for the CUDA version in its banner (the classic
    C(Driver Version/CUDA Version) banner and the C(KMD Version/CUDA UMD Version) banner of the 610 and newer
    drivers), and C(nvidia-smi -L) for MIG devices, and returns them as facts prefixed with C(nvidia_).
  - A host without a working driver gives a clear result instead of a traceback
    (RV(ansible_facts.nvidia_driver_loaded=false) and RV(ansible_facts.nvidia_driver_message)), and fails only with
    O(fail_on_missing=true). A C(Driver/library version mismatch) (nvidia-smi exit code 18) is reported as
    RV(ansible_facts.nvidia_driver_state=version_mismatch) with RV(ansible_facts.nvidia_reboot_required=true).
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
  - vllm_infra.profiling.attributes.FACTS
  - vllm_infra.profiling.attributes.INFO_MODULE
options:
  nvidia_smi:
    description:
      - Path of C(nvidia-smi). Default is C(nvidia-smi) on E(PATH) or in C(/usr/bin).
    type: path
  fail_on_missing:
    description:
      - Fail when there is no usable NVIDIA driver (nvidia-smi missing, no driver loaded, a driver/library version
        mismatch, or nvidia-smi failing otherwise). By default such hosts just get
        RV(ansible_facts.nvidia_driver_loaded=false).
    type: bool
    default: false
seealso:
  - module: vllm_infra.profiling.cdi_devices
"""

EXAMPLES = r"""
- name: Gather GPU facts
  vllm_infra.profiling.gpu_facts:

- name: Show the driver and the GPUs
  ansible.builtin.debug:
    msg: "{{ nvidia_driver_version }} / CUDA {{ nvidia_cuda_version }}: {{ nvidia_gpus | map(attribute='name') }}"
  when: nvidia_driver_loaded

- name: Require a working driver after installing it
  vllm_infra.profiling.gpu_facts:
    fail_on_missing: true
"""

RETURN = r"""
ansible_facts:
  description: Facts about the NVIDIA driver and GPUs.
  returned: always
  type: dict
  contains:
    nvidia_driver_loaded:
      description: Whether nvidia-smi could talk to a loaded driver.
      type: bool
      sample: true
    nvidia_driver_state:
      description: C(ok), C(nvidia_smi_missing), C(no_driver), C(version_mismatch) or C(error).
      type: str
      sample: ok
    nvidia_driver_message:
      description: What is wrong when the state is not C(ok); empty otherwise.
      type: str
      sample: ""
    nvidia_reboot_required:
      description: True on a driver/library version mismatch (the libraries were upgraded under a loaded module).
      type: bool
      sample: false
    nvidia_driver_version:
      description: Driver version (from the query, else the banner).
      type: str
      sample: 580.159.04
    nvidia_cuda_version:
      description: Highest CUDA version the driver supports (the banner's C(CUDA Version) or C(CUDA UMD Version)).
      type: str
      sample: "13.0"
    nvidia_smi_version:
      description: Version in the banner's C(NVIDIA-SMI) field.
      type: str
      sample: 580.159.04
    nvidia_smi_path:
      description: The nvidia-smi that ran.
      type: str
      sample: /usr/bin/nvidia-smi
    nvidia_gpu_count:
      description: Number of GPUs.
      type: int
      sample: 1
    nvidia_gpus:
      description: One entry per GPU.
      type: list
      elements: dict
      contains:
        index:
          description: GPU index.
          type: int
          sample: 0
        name:
          description: Product name.
          type: str
          sample: NVIDIA H200
        uuid:
          description: GPU UUID (also a CDI device name with nvidia-ctk's default naming).
          type: str
          sample: GPU-7271b7f6-6341-8c0b-275d-7cfdc47af3b0
        driver_version:
          description: Driver version reported for this GPU.
          type: str
          sample: 580.159.04
        memory_total_mib:
          description: Total memory in MiB, or null when not reported.
          type: int
          sample: 143771
        mig_mode:
          description: C(Enabled), C(Disabled), or null when the GPU has no MIG.
          type: str
          sample: Disabled
        pci_bus_id:
          description: PCI bus id.
          type: str
          sample: 00000000:00:06.0
        mig_devices:
          description: MIG devices from C(nvidia-smi -L), each with C(index), C(profile) and C(uuid).
          type: list
          elements: dict
          sample: [{index: 0, profile: 1g.24gb, uuid: MIG-0b090ecd-97b3-5022-b410-353a54064db3}]
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _nvidia_smi
from ansible_collections.vllm_infra.profiling.plugins.module_utils._cli import ModuleCliClient


class GpuFactsManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.facts: dict[str, t.Any] = {
            "nvidia_driver_loaded": False,
            "nvidia_driver_state": "nvidia_smi_missing",
            "nvidia_driver_message": "",
            "nvidia_reboot_required": False,
            "nvidia_driver_version": None,
            "nvidia_cuda_version": None,
            "nvidia_smi_version": None,
            "nvidia_smi_path": None,
            "nvidia_gpu_count": 0,
            "nvidia_gpus": [],
        }

    def not_ok(self, state: str, message: str) -> dict[str, t.Any]:
        self.facts.update(nvidia_driver_state=state, nvidia_driver_message=message)
        self.facts["nvidia_reboot_required"] = state == "version_mismatch"
        if self.module.params["fail_on_missing"]:
            self.module.fail_json(msg=message, ansible_facts=self.facts)
        return self.facts

    def run(self) -> dict[str, t.Any]:
        path = self.module.params["nvidia_smi"]
        smi = ModuleCliClient.find(self.module, "nvidia-smi", path=path, opt_dirs=["/usr/bin"])
        if smi is None:
            where = path or "nvidia-smi on PATH or in /usr/bin"
            return self.not_ok("nvidia_smi_missing", f"{where} not found: no NVIDIA driver is installed")
        self.facts["nvidia_smi_path"] = smi.binary

        query = smi.call(*_nvidia_smi.QUERY_ARGS)
        failure = _nvidia_smi.classify_failure(query.rc, query.output)
        if failure:
            return self.not_ok(failure["kind"], failure["message"])
        gpus = _nvidia_smi.gpus_from_query(_nvidia_smi.parse_query_csv(query.stdout))

        banner = smi.call()
        versions = _nvidia_smi.parse_banner(banner.stdout) if banner.rc == 0 else {}
        listing = smi.call("-L")
        if listing.rc == 0:
            _nvidia_smi.merge_mig(gpus, _nvidia_smi.parse_list(listing.stdout))

        driver = next((gpu["driver_version"] for gpu in gpus if gpu["driver_version"]), None)
        self.facts.update(
            nvidia_driver_loaded=True,
            nvidia_driver_state="ok",
            nvidia_driver_version=driver or versions.get("driver_version"),
            nvidia_cuda_version=versions.get("cuda_version"),
            nvidia_smi_version=versions.get("nvidia_smi_version"),
            nvidia_gpu_count=len(gpus),
            nvidia_gpus=gpus,
        )
        return self.facts


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "nvidia_smi": {"type": "path"},
            "fail_on_missing": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    facts = GpuFactsManager(module).run()
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
