# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
module: cdi_devices
short_description: List, generate and check Container Device Interface (CDI) specs for podman
version_added: 0.1.0
description:
  - Reads every CDI spec (C(.yaml), C(.json); C(.yml) too, with a warning, because podman ignores it) in
    O(spec_dirs) and returns the fully qualified device names podman can use, such as C(nvidia.com/gpu=0),
    C(nvidia.com/gpu=GPU-<uuid>), C(nvidia.com/gpu=all) and MIG devices such as C(nvidia.com/gpu=0:1).
  - With O(generate=true), runs C(nvidia-ctk cdi generate) when the spec at O(output) is missing or invalid,
    when it no longer fits the installed NVIDIA driver (it mounts C(libcuda.so.<version>) or
    C(libnvidia-ml.so.<version>) of another driver version, or a library it names is gone), or when
    O(force=true). The spec is generated into a temporary file and replaces O(output) only when its
    content differs, so RV(ignore:changed) means the file content changed.
  - Fails, naming the missing names and listing those that exist, when a device in O(required) is not available.
  - Compares each spec's C(cdiVersion) with the highest version the host's podman reads (podman 4.3-4.5 read up
    to 0.5.0, 4.6-5.0 up to 0.6.0, 5.1 up to 0.7.0, 5.2 and newer up to 0.8.0; 4.1-4.2 are taken to read up to
    0.4.0) and fails with a message that names both versions and the fix, instead of letting
    C(podman run --device) fail later with C(unresolvable CDI devices).
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
attributes:
  check_mode:
    support: full
    details:
      - When a spec would be generated, C(nvidia-ctk cdi generate) runs into a temporary file (removed afterwards)
        so that the prediction and the diff show the real new content; nothing under O(output) changes.
      - When C(nvidia-ctk) is not installed yet (for example the toolkit is installed in the same check run),
        the spec is predicted to change.
  diff_mode:
    support: full
    details:
      - Shows the spec file at O(output) before and after generation.
  idempotent:
    support: full
    details:
      - O(force=true) runs C(nvidia-ctk) every time but reports a change only when the generated content differs.
options:
  spec_dirs:
    description:
      - Directories to read CDI specs from, in podman's priority order (later wins). Subdirectories are not read.
    type: list
    elements: path
    default: [/etc/cdi, /var/run/cdi]
  generate:
    description:
      - Generate the spec at O(output) with C(nvidia-ctk cdi generate) when it is missing, invalid, stale,
        or O(force=true).
    type: bool
    default: false
  output:
    description:
      - Path of the generated spec. Its suffix (C(.yaml) or C(.json)) selects the format.
      - Should be inside one of O(spec_dirs) (podman reads only C(/etc/cdi) and C(/var/run/cdi) by default).
    type: path
    default: /etc/cdi/nvidia.yaml
  force:
    description:
      - Run C(nvidia-ctk cdi generate) even when the spec looks current. Only used with O(generate=true).
    type: bool
    default: false
  feature_flags:
    description:
      - C(nvidia-ctk cdi generate --feature-flag) values, for example C(no-additional-gids-for-device-nodes)
        (NVIDIA Container Toolkit 1.19.1 and newer), which keeps C(additionalGids) out of the spec so that it stays
        at cdiVersion 0.5.0 for podman older than 5.1.
    type: list
    elements: str
    default: []
  nvidia_ctk:
    description:
      - Path of C(nvidia-ctk). Default is C(nvidia-ctk) on E(PATH) or in C(/usr/bin), C(/usr/local/bin).
    type: path
  driver_version:
    description:
      - The host's NVIDIA driver version to compare the spec with, such as C(580.126.09).
      - Detected when omitted, from the installed C(libnvidia-ml.so.<version>)/C(libcuda.so.<version>) libraries
        (in the usual library dirs and wherever C(ldconfig -p) finds C(libcuda.so.1)) when exactly one version is
        installed, else from C(/sys/module/nvidia/version) or C(/proc/driver/nvidia/version).
    type: str
  required:
    description:
      - Fully qualified CDI device names that must be available, such as C(nvidia.com/gpu=all). The module fails,
        listing the available names, when one is missing.
    type: list
    elements: str
    default: []
  check_compat:
    description:
      - Check every readable spec's C(cdiVersion) against the host's podman and fail on a spec podman cannot read.
      - Skipped, with a note in RV(podman), when podman is not installed and O(podman_version) is not given.
    type: bool
    default: true
  podman:
    description:
      - Path of the podman binary whose version is checked. Default is C(podman) on E(PATH).
    type: path
  podman_version:
    description:
      - The podman version to check against, such as C(4.9.3), instead of running C(podman --version).
    type: str
notes:
  - The CDI library that podman vendors reads only C(.json) and C(.yaml) files directly in each spec dir; specs that do
    not parse, are not valid, or are newer than podman reads are skipped by podman, so their devices are not listed
    in RV(devices).
  - Since NVIDIA Container Toolkit 1.18 the C(nvidia-cdi-refresh) service writes C(/var/run/cdi/nvidia.yaml) at boot
    and on driver changes; a spec in C(/etc/cdi) is regenerated only by whoever wrote it, for example this module.
  - The podman compatibility table is kept in C(plugins/module_utils/_cdi.py) (C(PODMAN_CDI_SUPPORT)) with the evidence
    for each row.
seealso:
  - name: NVIDIA Container Toolkit CDI support
    description: Generating CDI specs with nvidia-ctk.
    link: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/cdi-support.html
  - name: CDI specification
    description: The spec format and its versions.
    link: https://github.com/cncf-tags/container-device-interface/blob/main/SPEC.md
"""

EXAMPLES = r"""
- name: Generate /etc/cdi/nvidia.yaml when needed and require all GPUs
  vllm_infra.profiling.cdi_devices:
    generate: true
    output: /etc/cdi/nvidia.yaml
    required:
      - nvidia.com/gpu=all
    nvidia_ctk: /usr/bin/nvidia-ctk

- name: List the CDI devices podman can use
  vllm_infra.profiling.cdi_devices:
  register: cdi

- name: Show them
  ansible.builtin.debug:
    var: cdi.devices

- name: Keep the spec readable by podman 4.9 with NVIDIA Container Toolkit 1.19.1 or newer
  vllm_infra.profiling.cdi_devices:
    generate: true
    feature_flags:
      - no-additional-gids-for-device-nodes
"""

RETURN = r"""
devices:
  description: Fully qualified device names podman can resolve, in spec order, without duplicates.
  returned: always
  type: list
  elements: str
  sample: [nvidia.com/gpu=0, nvidia.com/gpu=GPU-8f1f4d06-07fd-27a7-52d5-e58aa060d256, nvidia.com/gpu=all]
spec_files:
  description: Every spec file found in O(spec_dirs) (after generation; in check mode, as it would be).
  returned: always
  type: list
  elements: str
  sample: [/etc/cdi/nvidia.yaml]
specs:
  description: One entry per spec file.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
      sample: /etc/cdi/nvidia.yaml
    cdiVersion:
      description: The spec's C(cdiVersion).
      type: str
      sample: 0.5.0
    kind:
      description: The spec's C(kind).
      type: str
      sample: nvidia.com/gpu
    devices:
      description: Device names in the spec (without the kind).
      type: list
      elements: str
      sample: ["0", all]
    required_version:
      description: Lowest C(cdiVersion) the content needs by the CDI rules.
      type: str
      sample: 0.5.0
    driver_versions:
      description: NVIDIA driver versions the spec was generated for (from its library mounts and hooks).
      type: list
      elements: str
      sample: [580.126.09]
    read_by_podman:
      description: Whether podman reads this file (valid, C(.json)/C(.yaml), and a version the host's podman reads).
      type: bool
    errors:
      description: Why the spec is invalid, if it is.
      type: list
      elements: str
driver:
  description: The host's NVIDIA driver as seen by the staleness check.
  returned: when O(generate=true)
  type: dict
  contains:
    version:
      description: Driver version a fresh spec would name (O(driver_version) when given).
      type: str
    source:
      description: Where RV(driver.version) came from.
      type: str
    kernel_module_version:
      description: Version of the loaded C(nvidia) kernel module, if any.
      type: str
    library_versions:
      description: Versions of installed C(libcuda)/C(libnvidia-ml) libraries.
      type: list
      elements: str
    reboot_pending:
      description: True when the loaded kernel module and the installed libraries differ.
      type: bool
generate:
  description: What the generation step decided and ran.
  returned: when O(generate=true)
  type: dict
  contains:
    needed:
      description: Whether C(nvidia-ctk cdi generate) had to run.
      type: bool
    reasons:
      description: Why it had to run (missing, invalid, stale, or forced).
      type: list
      elements: str
    command:
      description: The C(nvidia-ctk) argv that ran (into a temporary file that then replaced O(output)).
      type: list
      elements: str
    content_changed:
      description: Whether the generated content differs from the previous O(output).
      type: bool
podman:
  description: The compatibility check.
  returned: always
  type: dict
  contains:
    checked:
      description: Whether the check ran.
      type: bool
    version:
      description: The podman version checked against.
      type: str
      sample: 4.3.1
    max_cdi_version:
      description: Highest C(cdiVersion) that podman version reads.
      type: str
      sample: 0.5.0
    evidence:
      description: Where that limit comes from.
      type: str
    note:
      description: Why the check was skipped, if it was.
      type: str
"""

import os
import shutil
import tempfile
import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _cdi
from ansible_collections.vllm_infra.profiling.plugins.module_utils._cli import ModuleCliClient
from ansible_collections.vllm_infra.profiling.plugins.module_utils._version import parse_version


class CdiDevicesManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.results: dict[str, t.Any] = {"changed": False}
        self.diff: dict[str, str] | None = None
        self.output_unknown = False  # check mode without nvidia-ctk: the new content cannot be known
        self.spec_dirs = [os.path.normpath(d) for d in self.params["spec_dirs"]]
        self.params["output"] = os.path.normpath(self.params["output"])

    # ------------------------------------------------------------------ reading
    def read_specs(self) -> list[dict[str, t.Any]]:
        return [_cdi.read_spec_file(path) for path in _cdi.spec_files(self.spec_dirs)]

    def host_driver(self) -> dict[str, t.Any]:
        ldcache: list[str] = []
        ldconfig = ModuleCliClient.find(self.module, "ldconfig", opt_dirs=["/sbin", "/usr/sbin"])
        if ldconfig is not None:
            listing = ldconfig.call("-p")
            ldcache = _cdi.ldcache_driver_libraries(listing.stdout) if listing.rc == 0 else []
        host = _cdi.detect_host_driver(ldcache_paths=ldcache)
        if self.params["driver_version"]:
            host.update(version=self.params["driver_version"], source="the driver_version option")
        return host

    # ------------------------------------------------------------------ generating
    def generate(self) -> dict[str, t.Any] | None:
        """Regenerate ``output`` when needed; returns the predicted/new parsed spec for ``output``."""
        output = self.params["output"]
        before = None
        if os.path.exists(output):
            with open(output, encoding="utf-8", errors="replace") as handle:
                before = handle.read()
        current = _cdi.parse_spec(before, output) if before is not None else None
        host = self.host_driver()
        reasons = ["force: true"] if self.params["force"] else _cdi.staleness(current, host)
        info: dict[str, t.Any] = {"needed": bool(reasons), "reasons": reasons, "command": [], "content_changed": False}
        self.results["driver"] = host
        self.results["generate"] = info
        if os.path.dirname(output) not in self.spec_dirs:
            self.module.warn(f"output {output} is not in spec_dirs ({', '.join(self.spec_dirs)}): it is not listed")
        if not reasons:
            return current

        ctk = ModuleCliClient.find(
            self.module, "nvidia-ctk", path=self.params["nvidia_ctk"], opt_dirs=["/usr/bin", "/usr/local/bin"]
        )
        if ctk is None:
            where = self.params["nvidia_ctk"] or "nvidia-ctk on PATH"
            if self.check_mode:
                self.module.warn(f"{where} not found: in check mode the spec at {output} is assumed to change")
                self.results["changed"] = info["content_changed"] = True
                self.output_unknown = True
                return current
            self.fail(
                f"cannot generate {output} ({'; '.join(reasons)}): {where} not found. Install "
                "nvidia-container-toolkit-base or set nvidia_ctk."
            )

        tmpdir = tempfile.mkdtemp(prefix="cdi-", dir=self.module.tmpdir)
        try:
            staged = os.path.join(tmpdir, os.path.basename(output))
            args = ["cdi", "generate", f"--output={staged}"]
            args += [f"--feature-flag={flag}" for flag in self.params["feature_flags"]]
            result = ctk.call(*args)
            info["command"] = result.argv
            if result.rc != 0 or not os.path.exists(staged):
                hint = ""
                if host.get("reboot_pending"):
                    hint = (
                        f" The loaded kernel module is {host['kernel_module_version']} but the installed libraries are "
                        f"{', '.join(host['library_versions'])}: reboot, then run again."
                    )
                self.fail(
                    f"{' '.join(result.argv)} failed (exit code {result.rc}): {result.output.strip()[-2000:]}{hint}",
                    rc=result.rc,
                    stdout=result.stdout,
                    stderr=result.stderr,
                )
            with open(staged, encoding="utf-8", errors="replace") as handle:
                after = handle.read()
            info["content_changed"] = after != before
            if info["content_changed"]:
                self.results["changed"] = True
                self.diff = {"before": before or "", "after": after, "before_header": output, "after_header": output}
                if not self.check_mode:
                    self.install(staged, output, existed=before is not None)
            return _cdi.parse_spec(after, output)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def install(self, staged: str, output: str, existed: bool) -> None:
        directory = os.path.dirname(output)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        self.module.atomic_move(staged, output)
        if not existed:
            os.chmod(output, 0o644)  # world-readable, as nvidia-ctk writes it since 1.16 (rootless podman reads it)

    # ------------------------------------------------------------------ checks
    def podman_version(self) -> tuple[tuple[int, ...] | None, str | None]:
        if self.params["podman_version"]:
            version = parse_version(self.params["podman_version"])
            if version is None:
                self.fail(f"podman_version {self.params['podman_version']!r} is not a version such as 4.9.3")
            return version, None
        podman = ModuleCliClient.find(self.module, "podman", path=self.params["podman"])
        if podman is None:
            return None, f"{self.params['podman'] or 'podman'} not found: compatibility not checked"
        version = podman.version()
        return version, None if version else f"cannot read the version of {podman.binary}: compatibility not checked"

    def check_compat(self, specs: list[dict[str, t.Any]]) -> list[str]:
        info: dict[str, t.Any] = {"checked": False}
        self.results["podman"] = info
        if not self.params["check_compat"]:
            info["note"] = "check_compat: false"
            return []
        version, note = self.podman_version()
        if version is None:
            info["note"] = note
            return []
        compat = _cdi.check_podman_compat(specs, version)
        info.update(
            checked=True,
            version=".".join(str(part) for part in version),
            max_cdi_version=compat["max_cdi_version"],
            evidence=compat["evidence"],
        )
        for warning in compat["warnings"]:
            self.module.warn(warning)
        for spec in specs:  # what this podman skips is not available to it
            if spec["path"] in compat["skipped"]:
                spec["read_by_podman"] = False
        return compat["errors"]

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, t.Any]:
        output = self.params["output"]
        yaml_files = [p for p in _cdi.spec_files(self.spec_dirs) if not p.endswith(".json")]
        if not _cdi.HAS_YAML and (yaml_files or (self.params["generate"] and not output.endswith(".json"))):
            self.module.fail_json(msg=missing_required_lib("PyYAML") + f" (to read {', '.join(yaml_files) or output})")
        predicted = self.generate() if self.params["generate"] else None
        specs = self.read_specs()
        if self.params["generate"] and os.path.dirname(output) in self.spec_dirs:
            # The spec at `output` as it is now or, in check mode, as it would be.
            specs = [spec for spec in specs if spec["path"] != output]
            if predicted is not None:
                specs.append(predicted)
            specs.sort(key=self.sort_key)
        for spec in specs:
            if spec["errors"]:
                self.module.warn(f"{spec['path']} is skipped by podman: {'; '.join(spec['errors'])}")
            elif not spec["path"].endswith(_cdi.PODMAN_SPEC_SUFFIXES):
                self.module.warn(f"{spec['path']}: podman reads only .json and .yaml CDI specs; rename it")
        compat_errors = self.check_compat(specs)
        devices = _cdi.available_devices(specs)
        keys = (
            "path",
            "cdiVersion",
            "kind",
            "devices",
            "required_version",
            "driver_versions",
            "read_by_podman",
            "errors",
        )
        self.results.update(
            devices=devices,
            spec_files=[spec["path"] for spec in specs],
            specs=[{key: spec[key] for key in keys} for spec in specs],
        )
        problems = list(compat_errors)
        missing = _cdi.missing_devices(self.params["required"], devices)
        if missing and self.output_unknown:
            self.module.warn(
                f"not checked in check mode, the spec at {output} is not generated yet: {', '.join(missing)}"
            )
        elif missing:
            problems.append(
                f"required CDI devices not available: {', '.join(missing)}. Available: {', '.join(devices) or 'none'}"
                f" (read from {', '.join(self.spec_dirs)})"
            )
        if problems:
            self.fail(" | ".join(problems))
        return self.results

    def sort_key(self, spec: dict[str, t.Any]) -> tuple[int, str]:
        directory = os.path.dirname(spec["path"])
        index = self.spec_dirs.index(directory) if directory in self.spec_dirs else len(self.spec_dirs)
        return (index, os.path.basename(spec["path"]))

    def fail(self, msg: str, **kwargs: t.Any) -> t.NoReturn:
        if self.diff is not None:
            kwargs["diff"] = self.diff
        self.module.fail_json(msg=msg, **self.results, **kwargs)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "spec_dirs": {"type": "list", "elements": "path", "default": ["/etc/cdi", "/var/run/cdi"]},
            "generate": {"type": "bool", "default": False},
            "output": {"type": "path", "default": "/etc/cdi/nvidia.yaml"},
            "force": {"type": "bool", "default": False},
            "feature_flags": {"type": "list", "elements": "str", "default": []},
            "nvidia_ctk": {"type": "path"},
            "driver_version": {"type": "str"},
            "required": {"type": "list", "elements": "str", "default": []},
            "check_compat": {"type": "bool", "default": True},
            "podman": {"type": "path"},
            "podman_version": {"type": "str"},
        },
        supports_check_mode=True,
    )
    manager = CdiDevicesManager(module)
    results = manager.run()
    if manager.diff is not None:
        results["diff"] = manager.diff
    module.exit_json(**results)


if __name__ == "__main__":
    main()
