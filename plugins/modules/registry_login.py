#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: registry_login
short_description: Log podman in to a container registry, with the password on stdin
version_added: 0.1.0
description:
  - Runs C(podman login --password-stdin) for the user that runs the module, so the credentials land in
    that user's auth file (root's and a rootless user's differ) and the password is never on a command line,
    in the module's output or in any file other than the auth file (mode 0600).
  - The login is checked against the registry on every run (a password that was changed fails here, before
    any image is pulled); C(changed) is true only when the auth file's entry for the registry changed.
  - A failed login fails with one sentence that names the registry and the fix, then podman's own error line.
  - Unlike M(containers.podman.podman_login), the password never appears in C(/proc/<pid>/cmdline), check
    mode is supported, and C(changed) compares only this registry's entry.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
attributes:
  check_mode:
    support: full
    details:
      - Compares the stored entry with the given credentials; contacts nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  registry:
    description: The registry, C(host[:port]), as image references name it (C(registry.redhat.io)).
    type: str
    required: true
  username:
    description: The user (or a registry service account's name).
    type: str
    required: true
  password:
    description: Its password or token. Never logged.
    type: str
    required: true
  auth_file:
    description:
      - podman's auth file (C(--authfile)); created with mode 0600, its directory 0700. Unset, podman's own
        default (C(${XDG_RUNTIME_DIR}/containers/auth.json), root C(/run/containers/0/auth.json), both on tmpfs).
    type: path
  tls_verify:
    description: Verify the registry's TLS certificate (its CA from C(/etc/containers/certs.d/<registry>/)).
    type: bool
    default: true
  cert_dir:
    description: A directory with the registry's CA certificate (C(--cert-dir)), instead of C(certs.d).
    type: path
  executable:
    description: The podman executable.
    type: str
    default: podman
seealso:
  - module: vllm_infra.profiling.registry_image
  - module: containers.podman.podman_login
"""

EXAMPLES = r"""
- name: Log in to the guide's registry (a Red Hat registry service account)
  vllm_infra.profiling.registry_login:
    registry: registry.redhat.io
    username: "{{ vault_rh_registry_user }}"
    password: "{{ vault_rh_registry_token }}"
    auth_file: /root/.config/containers/auth.json
"""

RETURN = r"""
registry:
  description: The registry.
  returned: always
  type: str
auth_file:
  description: The auth file written (empty for podman's default).
  returned: always
  type: str
logged_in_as:
  description: The user now stored for the registry.
  returned: success
  type: str
"""

import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _registry
from ansible_collections.vllm_infra.profiling.plugins.module_utils._cli import ModuleCliClient


class RegistryLogin:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.podman = ModuleCliClient.require(module, module.params["executable"])

    def auth_file_read(self) -> str:
        """The file podman writes: the given one, else podman's default for this user."""
        if self.params["auth_file"]:
            return self.params["auth_file"]
        if os.environ.get("REGISTRY_AUTH_FILE"):
            return os.environ["REGISTRY_AUTH_FILE"]
        if os.geteuid() == 0:
            return "/run/containers/0/auth.json"
        runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
        return os.path.join(runtime, "containers", "auth.json")

    def stored(self) -> str | None:
        path = self.auth_file_read()
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return _registry.auth_entry(handle.read(), self.params["registry"])

    def run(self) -> dict[str, t.Any]:
        p = self.params
        wanted = _registry.encode_auth(p["username"], p["password"])
        before = self.stored()
        results: dict[str, t.Any] = {
            "changed": before != wanted,
            "registry": p["registry"],
            "auth_file": p["auth_file"] or "",
        }
        if self.module.check_mode:
            return results
        argv = ["login", "--username", p["username"], "--password-stdin"]
        if p["auth_file"]:
            directory = os.path.dirname(p["auth_file"])
            if not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700)
            argv += ["--authfile", p["auth_file"]]
        if p["cert_dir"]:
            argv += ["--cert-dir", p["cert_dir"]]
        if not p["tls_verify"]:
            argv.append("--tls-verify=false")
        argv.append(p["registry"])
        # The password goes in on stdin only; run_command's data is not logged.
        rc, _out, err = self.module.run_command(
            self.podman.argv(*argv), data=p["password"], binary_data=True, check_rc=False
        )
        if rc != 0:
            self.module.fail_json(
                msg=_registry.failure_sentence("login", p["registry"], err, auth_file=p["auth_file"] or ""),
                rc=rc,
                registry=p["registry"],
                kind=_registry.classify(err),
            )
        if p["auth_file"]:
            os.chmod(p["auth_file"], 0o600)
        results["changed"] = self.stored() != before
        results["logged_in_as"] = p["username"]
        return results


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            registry=dict(type="str", required=True),
            username=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True),
            auth_file=dict(type="path"),
            tls_verify=dict(type="bool", default=True),
            cert_dir=dict(type="path"),
            executable=dict(type="str", default="podman"),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**RegistryLogin(module).run())


if __name__ == "__main__":
    main()
