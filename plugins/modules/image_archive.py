#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_archive
short_description: Save images to a podman archive, load them from one, or read which images one holds
version_added: 0.1.0
description:
  - For hosts without a registry (air-gapped) - C(podman save) on a host that has the images, the archive
    carried by the controller, C(podman load) on the others.
  - O(state=saved) writes O(path) with C(podman save) (docker-archive format) unless the archive there already
    holds the same image IDs under the same names.
  - O(state=loaded) runs C(podman load) unless the host already has every image of the archive, by name and
    image ID.
  - O(state=read) reads which images O(path) holds (IDs and names) from its C(manifest.json) without unpacking it
    and without podman; run it on the controller (C(delegate_to) localhost) to decide before copying a big archive.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
attributes:
  check_mode:
    support: full
    details:
      - Says whether a save or a load would run.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  path:
    description: The archive.
    type: path
    required: true
  state:
    description: V(saved), V(loaded) or V(read).
    type: str
    choices: [saved, loaded, read]
    default: loaded
  images:
    description: Image references to save (O(state=saved)); they keep their names in the archive.
    type: list
    elements: str
    default: []
  executable:
    description: The podman executable.
    type: str
    default: podman
seealso:
  - module: vllm_infra.profiling.registry_image
  - module: containers.podman.podman_load
"""

EXAMPLES = r"""
- name: Which images does the controller's archive hold?
  vllm_infra.profiling.image_archive:
    path: /srv/images/rhaiis-3.2.1.tar
    state: read
  delegate_to: localhost
  run_once: true
  register: archive

- name: Load it on a host that lacks it
  vllm_infra.profiling.image_archive:
    path: /var/tmp/rhaiis-3.2.1.tar
    state: loaded
"""

RETURN = r"""
images:
  description: The images in the archive.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Image ID (its config digest, without C(sha256:)).
      type: str
    names:
      description: Its names (tags) in the archive.
      type: list
      elements: str
missing:
  description:
    - Names the host lacked (with the archive's image ID) before a load; or that the archive lacked before a save.
  returned: success
  type: list
  elements: str
loaded:
  description: Whether C(podman load) ran (would run).
  returned: success
  type: bool
saved:
  description: Whether C(podman save) ran (would run).
  returned: success
  type: bool
"""

import json
import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _registry
from ansible_collections.vllm_infra.profiling.plugins.module_utils._cli import ModuleCliClient


class ImageArchive:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.podman: ModuleCliClient | None = None
        if module.params["state"] != "read":
            self.podman = ModuleCliClient.require(module, module.params["executable"])

    def read(self) -> list[dict[str, t.Any]]:
        try:
            return _registry.read_archive(self.params["path"])
        except _registry.RegistryError as exc:
            self.module.fail_json(msg=str(exc))
        return []

    @property
    def cli(self) -> ModuleCliClient:
        if self.podman is None:  # state=read never runs podman
            raise RuntimeError("podman is not used with state=read")
        return self.podman

    def local_ids(self, names: t.Iterable[str]) -> dict[str, str]:
        """Name -> image ID for the names the host has."""
        out = {}
        for name in names:
            result = self.cli.call("image", "inspect", "--format", "json", name)
            if result.rc == 0:
                data = json.loads(result.stdout or "[]")
                if data:
                    out[name] = str(data[0].get("Id", ""))
        return out

    def run(self) -> dict[str, t.Any]:
        p = self.params
        results: dict[str, t.Any] = {"changed": False, "loaded": False, "saved": False, "missing": []}
        if p["state"] == "read":
            results["images"] = self.read()
            return results
        if p["state"] == "loaded":
            if not os.path.isfile(p["path"]):
                self.module.fail_json(msg=f"the image archive {p['path']} is not on this host")
            images = self.read()
            names = [n for image in images for n in image["names"]]
            missing = _registry.archive_matches(images, self.local_ids(names))
            results.update(images=images, missing=missing)
            if not missing:
                return results
            results.update(changed=True, loaded=True)
            if not self.module.check_mode:
                loaded = self.cli.call("load", "--input", p["path"])
                if loaded.rc != 0:
                    self.module.fail_json(
                        msg=f"podman load of {p['path']} failed: {_registry.first_error_line(loaded.stderr)}",
                        rc=loaded.rc,
                    )
            return results
        # saved
        if not p["images"]:
            self.module.fail_json(msg="state=saved needs images")
        local = self.local_ids(p["images"])
        absent = [name for name in p["images"] if name not in local]
        if absent:
            self.module.fail_json(msg=f"cannot save {', '.join(absent)}: not in this host's podman storage")
        wanted = [{"id": local[name].removeprefix("sha256:"), "names": [name]} for name in p["images"]]
        if os.path.isfile(p["path"]):
            try:
                have = _registry.read_archive(p["path"])
            except _registry.RegistryError:
                have = []
            in_archive = {_registry.normalise_name(n): image["id"] for image in have for n in image["names"]}
            missing = [
                image["names"][0]
                for image in wanted
                if in_archive.get(_registry.normalise_name(image["names"][0])) != image["id"]
            ]
        else:
            missing = list(p["images"])
        results.update(images=wanted, missing=missing)
        if not missing:
            return results
        results.update(changed=True, saved=True)
        if not self.module.check_mode:
            directory = os.path.dirname(p["path"])
            if directory and not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700)
            partial = p["path"] + ".partial"
            if os.path.exists(partial):
                os.unlink(partial)
            saved = self.cli.call(
                "save", "--format", "docker-archive", "--multi-image-archive", "--output", partial, *p["images"]
            )
            if saved.rc != 0:
                self.module.fail_json(
                    msg=f"podman save of {', '.join(p['images'])} failed: {_registry.first_error_line(saved.stderr)}",
                    rc=saved.rc,
                )
            # A half-written archive never takes the final name.
            os.replace(partial, p["path"])
        return results


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["saved", "loaded", "read"], default="loaded"),
            images=dict(type="list", elements="str", default=[]),
            executable=dict(type="str", default="podman"),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**ImageArchive(module).run())


if __name__ == "__main__":
    main()
