#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
module: vllm_image_info
short_description: The user and vLLM version of a vLLM container image
version_added: 0.1.0
description:
  - Reads a local image's id, entrypoint and C(Config.User) (C(podman image inspect)), then resolves the user to a
    numeric uid and gid and reads the image's vLLM version by running the image's own C(python3) once, without
    network, as the image's user (C(podman run --rm --network=none)).
  - The image's user decides how the server's container is run (the C(keep-id) uid, who owns the host directories and
    the secret files). vLLM's own images and the guide's Red Hat AI Inference Server image run as uid 2000, gid 0.
  - What was read is remembered per image id in O(cache_dir), so a later run on the same image starts no container.
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
  - vllm_infra.profiling.attributes.INFO_MODULE
notes:
  - In check mode the image is still run once (a removed, network-less container) when nothing is remembered for
    it, but nothing is remembered.
options:
  image:
    description: The image (name or id); it must be on the host.
    type: str
    required: true
  user:
    description:
      - The user the container will run as (C(--user)), instead of the image's own C(Config.User).
    type: str
    default: ""
  vllm_version:
    description: The image's vLLM version, when known; then it is not read from the image.
    type: str
    default: ""
  cache_dir:
    description: Directory where what was read is remembered per image id (empty to remember nothing).
    type: path
  podman_executable:
    description: The podman binary (a name on E(PATH) or a path).
    type: str
    default: podman
author:
  - vllm_infra.profiling contributors (@vllm-infra)
seealso:
  - module: vllm_infra.profiling.vllm_host_preflight
"""

EXAMPLES = r"""
- name: Read the image's user and vLLM version
  vllm_infra.profiling.vllm_image_info:
    image: registry.redhat.io/rhaiis/vllm-cuda-rhel9:3.2.1
    cache_dir: /var/lib/vllm-profile/state
  register: image

- name: Show them
  ansible.builtin.debug:
    msg: "vLLM {{ image.vllm_version }} runs as {{ image.uid }}:{{ image.gid }}"
"""

RETURN = r"""
id:
  description: The image id.
  returned: success
  type: str
uid:
  description: The numeric uid the image's processes run as.
  returned: success
  type: int
  sample: 2000
gid:
  description: The numeric gid the image's processes run as.
  returned: success
  type: int
  sample: 0
user:
  description: The user as the image (or O(user)) names it.
  returned: success
  type: str
  sample: "2000"
vllm_version:
  description: The image's vLLM version (C(vllm.__version__)).
  returned: success
  type: str
  sample: 0.10.1.1
entrypoint:
  description: The image's entrypoint.
  returned: success
  type: list
  elements: str
  sample: [python3, -m, vllm.entrypoints.openai.api_server]
cached:
  description: Whether the user and version came from O(cache_dir) (no container was run).
  returned: success
  type: bool
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils._podman import error_line, numeric_user

# Printed by the image's python3: its uid/gid, then vLLM's version (if asked), as one JSON line.
# Printed by the image's python3: its uid/gid, then vLLM's version (if asked), as one JSON line.
# The version is read from vllm/_version.py (setuptools-scm's file) without importing vllm, which
# takes a minute on a busy host; importing is the fallback for builds without that file.
PROBE = """
import importlib.util, json, os, sys
out = {"uid": os.getuid(), "gid": os.getgid()}
if sys.argv[1:] == ["version"]:
    try:
        spec = importlib.util.find_spec("vllm")
        if spec is None:
            raise ImportError("No module named 'vllm'")
        found = {}
        path = os.path.join(list(spec.submodule_search_locations)[0], "_version.py")
        if os.path.isfile(path):
            with open(path) as handle:
                exec(compile(handle.read(), path, "exec"), found)
        if not found.get("__version__"):
            import vllm
            found["__version__"] = vllm.__version__
        out["vllm_version"] = str(found["__version__"])
    except Exception as exc:
        out["vllm_error"] = "%s: %s" % (type(exc).__name__, exc)
print("VLLM_IMAGE_INFO " + json.dumps(out))
"""
MARKER = "VLLM_IMAGE_INFO "


def parse_probe(stdout: str) -> dict | None:
    """The probe's JSON line (the image may print banners around it)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    return None


class ImageReader:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.podman = module.get_bin_path(self.params["podman_executable"], required=True)

    def inspect(self) -> dict:
        rc, out, err = self.module.run_command([self.podman, "image", "inspect", self.params["image"]])
        if rc != 0:
            self.module.fail_json(
                msg=f"Image {self.params['image']} is not on this host ({error_line(err)}): pull or load it first."
            )
        return json.loads(out)[0]

    def cache_path(self, image_id: str) -> str | None:
        if not self.params["cache_dir"]:
            return None
        key = image_id + (f"-user-{self.params['user']}" if self.params["user"] else "")
        return os.path.join(self.params["cache_dir"], f"image-{key}.json")

    def probe(self, image_id: str, want_version: bool) -> dict:
        argv = [self.podman, "run", "--rm", "--network=none", "--entrypoint=python3"]
        if self.params["user"]:
            argv.append(f"--user={self.params['user']}")
        argv += [image_id, "-c", PROBE] + (["version"] if want_version else [])
        rc, out, err = self.module.run_command(argv)
        found = parse_probe(out) if rc == 0 else None
        if found is None:
            self.module.fail_json(
                msg=f"Could not run image {self.params['image']} to read its user and vLLM version: "
                f"{error_line(err or out) or f'exit code {rc}'}",
                cmd=argv[:-2],
                rc=rc,
                stderr=err,
            )
        if want_version and not found.get("vllm_version"):
            self.module.fail_json(
                msg=f"Image {self.params['image']} has no importable vllm ({found.get('vllm_error')}): "
                "set vllm_profile_vllm_version, or check the image."
            )
        return found

    def run(self) -> dict:
        image = self.inspect()
        config = image.get("Config") or {}
        user = self.params["user"] or config.get("User") or ""
        result = {
            "changed": False,
            "id": image["Id"],
            "user": user,
            "entrypoint": config.get("Entrypoint") or [],
            "cached": False,
        }
        known = {"vllm_version": self.params["vllm_version"]} if self.params["vllm_version"] else {}
        numeric = numeric_user(user)
        if numeric is not None:
            known.update(uid=numeric[0], gid=numeric[1])
        path = self.cache_path(image["Id"])
        if len(known) < 3 and path and os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                known = {**json.load(handle), **known}
            result["cached"] = True
        if len(known) < 3:
            found = self.probe(image["Id"], want_version="vllm_version" not in known)
            known = {**found, **known}
            known.pop("vllm_error", None)
            if path and not self.module.check_mode:
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                with open(path, "w", encoding="utf-8") as handle:
                    json.dump(known, handle)
        result.update(uid=int(known["uid"]), gid=int(known["gid"]), vllm_version=known["vllm_version"])
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "image": {"type": "str", "required": True},
            "user": {"type": "str", "default": ""},
            "vllm_version": {"type": "str", "default": ""},
            "cache_dir": {"type": "path"},
            "podman_executable": {"type": "str", "default": "podman"},
        },
        supports_check_mode=True,
    )
    module.exit_json(**ImageReader(module).run())


if __name__ == "__main__":
    main()
