#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: registry_image
short_description: Pull an image from its registry when the host lacks it, or lacks the wanted labels
version_added: 0.1.0
description:
  - Makes sure the host's podman has the image O(name). Pulls it when it is missing, or when the local image
    does not carry every label in O(labels) (for example the content hash that M(vllm_infra.profiling.nsys_image_build)
    puts on the nsys image, so that a host with the current image neither builds nor pulls).
  - After a pull, an image that still lacks the wanted labels fails the module, naming both values (the
    registry holds an image built from other inputs).
  - A failed pull fails with one sentence that names the registry and the fix (log in, trust its CA, push the
    image first), then podman's own error line.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
attributes:
  check_mode:
    support: full
    details:
      - Inspects the local image only; says whether a pull would run.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  name:
    description: The image reference, with its registry (C(registry.example.com/team/vllm-nsys:3.2.1)).
    type: str
    required: true
  labels:
    description: Labels the local image must carry; a missing or different one means pull.
    type: dict
    default: {}
  auth_file:
    description: podman's auth file (C(--authfile)); unset, podman's own lookup.
    type: path
  tls_verify:
    description: Verify the registry's TLS certificate.
    type: bool
    default: true
  cert_dir:
    description: A directory with the registry's CA certificate (C(--cert-dir)).
    type: path
  executable:
    description: The podman executable.
    type: str
    default: podman
seealso:
  - module: vllm_infra.profiling.registry_login
  - module: vllm_infra.profiling.nsys_image_build
"""

EXAMPLES = r"""
- name: The fleet's nsys image, unless this host has the current one
  vllm_infra.profiling.registry_image:
    name: registry.example.internal/vllm-profile/vllm-nsys:3.2.1
    labels:
      vllm_infra.profiling.nsys.hash: "{{ nsys_probe.hash }}"
    auth_file: /root/.config/containers/auth.json
"""

RETURN = r"""
pulled:
  description: Whether a pull ran (would run, in check mode).
  returned: success
  type: bool
image_id:
  description: The local image's ID afterwards (in check mode, before).
  returned: success
  type: str
reason:
  description: Why a pull ran or did not.
  returned: success
  type: str
  sample: image does not exist
registry:
  description: The registry the reference names.
  returned: always
  type: str
"""

import json
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _registry
from ansible_collections.vllm_infra.profiling.plugins.module_utils._cli import ModuleCliClient


class RegistryImage:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.podman = ModuleCliClient.require(module, module.params["executable"])
        self.registry = _registry.registry_of(module.params["name"])

    def inspect(self) -> dict[str, t.Any] | None:
        result = self.podman.call("image", "inspect", "--format", "json", self.params["name"])
        if result.rc != 0:
            return None
        data = json.loads(result.stdout or "[]")
        return data[0] if data else None

    def wrong_labels(self, image: dict[str, t.Any] | None) -> dict[str, str | None]:
        labels = ((image or {}).get("Config") or {}).get("Labels") or (image or {}).get("Labels") or {}
        return {key: labels.get(key) for key, value in self.params["labels"].items() if labels.get(key) != str(value)}

    def run(self) -> dict[str, t.Any]:
        p = self.params
        current = self.inspect()
        results: dict[str, t.Any] = {
            "changed": False,
            "pulled": False,
            "registry": self.registry,
            "image_id": (current or {}).get("Id"),
        }
        if current is None:
            reason = "image does not exist"
        elif self.wrong_labels(current):
            reason = "labels differ: " + ", ".join(f"{k}={v}" for k, v in self.wrong_labels(current).items())
        else:
            results["reason"] = "up to date"
            return results
        if self.registry == "localhost":
            # podman would try https://localhost/v2/ and fail with "connection refused": say what it means.
            self.module.fail_json(
                msg=f"{p['name']} is a local image name (localhost/...), never pulled from a registry, and this host "
                f"does not have it ({reason}): load it (vllm_profile_image_archive) or build it on the host first.",
                **results,
            )
        results.update(changed=True, pulled=True, reason=reason)
        if self.module.check_mode:
            return results
        argv = ["pull"]
        if p["auth_file"]:
            argv += ["--authfile", p["auth_file"]]
        if p["cert_dir"]:
            argv += ["--cert-dir", p["cert_dir"]]
        if not p["tls_verify"]:
            argv.append("--tls-verify=false")
        argv.append(p["name"])
        pulled = self.podman.call(*argv)
        if pulled.rc != 0:
            self.module.fail_json(
                msg=_registry.failure_sentence(
                    "pull", self.registry, pulled.stderr, ref=p["name"], auth_file=p["auth_file"] or ""
                ),
                rc=pulled.rc,
                registry=self.registry,
                kind=_registry.classify(pulled.stderr),
            )
        after = self.inspect()
        results["image_id"] = (after or {}).get("Id")
        results["changed"] = results["image_id"] != (current or {}).get("Id")
        still = self.wrong_labels(after)
        if still:
            wanted = ", ".join(f"{k}={p['labels'][k]}" for k in still)
            got = ", ".join(f"{k}={v}" for k, v in still.items())
            self.module.fail_json(
                msg=f"{p['name']} in {self.registry} is not the image this host needs: it carries {got}, this host "
                f"wants {wanted} (built from another base image or other options). Push the current image from the "
                "build host (it pushes after each build), or build on every host "
                "(vllm_profile_nsys_distribution: local).",
                **results,
            )
        return results


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            labels=dict(type="dict", default={}),
            auth_file=dict(type="path"),
            tls_verify=dict(type="bool", default=True),
            cert_dir=dict(type="path"),
            executable=dict(type="str", default="podman"),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**RegistryImage(module).run())


if __name__ == "__main__":
    main()
