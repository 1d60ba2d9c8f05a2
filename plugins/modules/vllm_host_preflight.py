#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
module: vllm_host_preflight
short_description: Check that a host can run the vLLM server container, and say what to fix
version_added: 0.1.0
description:
  - Reads what a host's podman can do for the user the task runs as, before any container starts, and turns each
    problem into one sentence that names the fix.
  - "Checks: podman installed and its version; rootful or rootless (C(podman info)); the init binary podman uses for
    C(--init) (C(catatonit), from C(containers.conf) C(init_path) or podman's helper directories); for rootless
    podman, the user's subordinate uid and gid ranges (C(/etc/subuid), C(/etc/subgid)); whether an explicit
    C(keep-id) user namespace runs on this podman (root's podman needs 4.5 or newer); the CDI device names in
    O(devices) against the specs in O(cdi_spec_dirs) that this podman can read; the bind address and port free
    (or held by O(container) itself); the host directories writable (or creatable) with O(min_free_space) free;
    the SELinux mode."
  - With O(fail_on_problems=false) the module reports the problems and RV(missing_packages) without failing, so
    that a role can install what is missing and check again.
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
  - vllm_infra.profiling.attributes.INFO_MODULE
options:
  podman_executable:
    description: The podman binary (a name on E(PATH) or a path).
    type: str
    default: podman
  devices:
    description: CDI device names the container will be given (C(nvidia.com/gpu=all), C(nvidia.com/gpu=0)).
    type: list
    elements: str
    default: []
  cdi_spec_dirs:
    description: Directories podman reads CDI specs from.
    type: list
    elements: path
    default: [/etc/cdi, /var/run/cdi]
  bind_address:
    description: Host address the server's port is published on.
    type: str
    default: 127.0.0.1
  port:
    description: Host port the server's port is published on; V(0) skips the check.
    type: int
    default: 0
  container:
    description:
      - Name of the container that will publish O(port). When it exists and publishes that port, the port is taken by
        it and is not a problem (it is replaced when the container is recreated).
    type: str
  directories:
    description: Host directories the container writes to; each must be writable, or creatable, by this user.
    type: list
    elements: path
    default: []
  min_free_space:
    description: Free space each of O(directories) needs (V(2G), V(512M)); V(0) skips the check.
    type: str
    default: 1G
  userns:
    description:
      - The user namespace the container will run with. V(auto) is always possible; an explicit C(keep-id...) is a
        problem where this podman cannot run it (root's podman before 4.5).
    type: str
    default: auto
  init:
    description: Whether the container runs with C(--init), which needs podman's init binary.
    type: bool
    default: true
  packages:
    description: Package names the fix sentences and RV(missing_packages) use, per missing piece.
    type: dict
    default: {podman: [podman], init: [catatonit]}
  fail_on_problems:
    description: Fail when a problem is found. With V(false), return the problems (RV(problems)) instead.
    type: bool
    default: true
author:
  - vllm_infra.profiling contributors (@vllm-infra)
seealso:
  - module: vllm_infra.profiling.cdi_devices
  - module: vllm_infra.profiling.vllm_image_info
"""

EXAMPLES = r"""
- name: Check the host before launching vLLM
  vllm_infra.profiling.vllm_host_preflight:
    devices: [nvidia.com/gpu=all]
    port: 8000
    container: vllm-profile
    directories: [/var/lib/vllm-profile/cache, /var/lib/vllm-profile/traces]

- name: Find what is missing, without failing (then install it)
  vllm_infra.profiling.vllm_host_preflight:
    fail_on_problems: false
  register: preflight
"""

RETURN = r"""
problems:
  description: One sentence per problem, each naming the fix. Empty when the host is ready.
  returned: always
  type: list
  elements: str
  sample:
    - "podman's init binary (/usr/libexec/podman/catatonit) is missing, and containers run with --init: install
      catatonit, or set vllm_profile_install_prerequisites: true."
missing_packages:
  description: Packages (from O(packages)) whose absence caused a problem.
  returned: always
  type: list
  elements: str
  sample: [catatonit]
podman:
  description: What podman says of itself (empty when it is not installed).
  returned: always
  type: dict
  contains:
    path:
      description: The podman binary.
      type: str
    version:
      description: Podman's version.
      type: str
      sample: 5.4.2
    rootless:
      description: Whether podman runs rootless for this user.
      type: bool
    graph_driver:
      description: The storage driver (C(overlay), C(vfs)).
      type: str
    runtime:
      description: The OCI runtime.
      type: str
    keep_id:
      description: Whether C(--userns=keep-id:uid=N) runs here (V(false) with the reason in RV(podman.keep_id_note)).
      type: bool
    keep_id_note:
      description: Why keep-id does not run here, if it does not.
      type: str
user:
  description: The user the task runs as, with its subordinate id ranges (V([start, count]) pairs).
  returned: always
  type: dict
  sample: {name: vllm, uid: 1000, gid: 1000, home: /home/vllm, subuid: [[100000, 65536]], subgid: [[100000, 65536]]}
init:
  description: Podman's init binary.
  returned: always
  type: dict
  sample: {path: /usr/libexec/podman/catatonit, found: true, configured: false}
selinux:
  description: The SELinux mode (C(enforcing), C(permissive), C(disabled)).
  returned: always
  type: str
  sample: enforcing
cdi_devices:
  description: The CDI device names this podman can resolve (from specs of a cdiVersion it reads).
  returned: always
  type: list
  elements: str
"""

import json
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _cdi, _podman
from ansible_collections.vllm_infra.profiling.plugins.module_utils._cli import parse_version


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


class Preflight:
    """Runs the checks in the order a user would fix them: podman first, then what it needs."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.problems: list[str] = []
        self.missing: list[str] = []
        entry = pwd.getpwuid(os.getuid())
        self.user = {"name": entry.pw_name, "uid": entry.pw_uid, "gid": entry.pw_gid, "home": entry.pw_dir}
        self.podman: dict = {}
        self.version: tuple[int, ...] | None = None

    def problem(self, sentence: str, package_key: str | None = None) -> None:
        self.problems.append(sentence)
        if package_key:
            self.missing += [p for p in self.params["packages"].get(package_key) or [] if p not in self.missing]

    def packages_for(self, key: str, fallback: str) -> str:
        return " ".join(self.params["packages"].get(key) or [fallback])

    def check_podman(self) -> bool:
        path = self.module.get_bin_path(self.params["podman_executable"], required=False)
        if not path:
            self.problem(
                f"podman is not installed (no {self.params['podman_executable']} on PATH): install "
                f"{self.packages_for('podman', 'podman')}, or set vllm_profile_install_prerequisites: true.",
                "podman",
            )
            return False
        rc, out, err = self.module.run_command([path, "info", "--format", "json"])
        if rc != 0:
            self.problem(
                f"podman info fails for user {self.user['name']}: {_podman.error_line(err or out)}. "
                "Fix podman for this user first (podman info must work)."
            )
            return False
        info = json.loads(out)
        host = info.get("host") or {}
        security = host.get("security") or {}
        self.version = parse_version((info.get("version") or {}).get("Version"))
        self.podman = {
            "path": path,
            "version": (info.get("version") or {}).get("Version", ""),
            "rootless": bool(security.get("rootless")),
            "graph_driver": (info.get("store") or {}).get("graphDriverName", ""),
            "runtime": (host.get("ociRuntime") or {}).get("name", ""),
            "selinux_enabled": bool(security.get("selinuxEnabled")),
        }
        supported, why = _podman.keep_id_support(self.version or (0,), self.podman["rootless"])
        self.podman["keep_id"] = supported
        self.podman["keep_id_note"] = why
        return True

    def check_userns(self) -> None:
        userns = self.params["userns"]
        if userns == "auto" or self.version is None:
            return
        resolved = _podman.resolve_userns(userns, self.version, self.podman["rootless"], 0, 0)
        if resolved["problem"]:
            self.problem(resolved["problem"])

    def check_init(self) -> dict:
        texts = [
            _read(path) or ""
            for path in _podman.containers_conf_files(self.podman.get("rootless", False), os.environ, self.user["home"])
        ]
        init = _podman.init_binary(texts)
        if self.params["init"] and not init["found"]:
            where = f"{init['path']}, set by init_path in containers.conf" if init["configured"] else init["path"]
            self.problem(
                f"podman's init binary ({where}) is missing, and the server runs with --init so that it stops cleanly: "
                f"install {self.packages_for('init', 'catatonit')}, or set vllm_profile_install_prerequisites: true.",
                None if init["configured"] else "init",
            )
        return init

    def check_subids(self) -> None:
        if not self.podman.get("rootless"):
            return
        name, uid = self.user["name"], self.user["uid"]
        for kind in ("subuid", "subgid"):
            ranges = _podman.subid_ranges(_read(f"/etc/{kind}") or "", name, uid)
            self.user[kind] = [list(r) for r in ranges]
            if not ranges:
                self.problem(
                    f"user {name} has no subordinate {kind[3:]} range in /etc/{kind}, which rootless podman needs to "
                    f"run an image as a non-root user: add one (usermod --add-subuids 100000-165535 "
                    f"--add-subgids 100000-165535 {name}), then run podman system migrate as {name}."
                )
                return

    def check_cdi(self) -> list[str]:
        specs = []
        for path in _cdi.spec_files(self.params["cdi_spec_dirs"]):
            try:
                specs.append(_cdi.read_spec_file(path))
            except (OSError, ValueError):
                continue
        readable = specs
        if self.version:
            max_version, _evidence = _cdi.podman_max_spec_version(self.version)
            if max_version:
                limit = _cdi.semver(max_version)
                readable = [s for s in specs if (_cdi.semver(s.get("cdiVersion")) or (999, 0, 0)) <= limit]
        available = _cdi.available_devices(readable)
        missing = _cdi.missing_devices(self.params["devices"], available)
        if missing:
            unreadable = sorted(set(_cdi.available_devices(specs)) & set(missing))
            dirs = " or ".join(self.params["cdi_spec_dirs"])
            if unreadable:
                self.problem(
                    f"CDI device(s) {', '.join(unreadable)} are defined only in specs of a cdiVersion podman "
                    f"{self.podman.get('version')} cannot read: regenerate the spec for this podman "
                    "(module cdi_devices reports the fix), or upgrade podman."
                )
            rest = [d for d in missing if d not in unreadable]
            if rest:
                known = ", ".join(available) if available else f"no CDI specs in {dirs}"
                self.problem(
                    f"CDI device(s) {', '.join(rest)} unknown to podman (known: {known}): check "
                    "vllm_profile_devices, or generate the spec (role container_toolkit, or nvidia-ctk cdi generate "
                    "--output=/etc/cdi/nvidia.yaml)."
                )
        return available

    def own_container_ports(self) -> set[int]:
        if not (self.params["container"] and self.podman):
            return set()
        rc, out, _err = self.module.run_command([self.podman["path"], "container", "inspect", self.params["container"]])
        if rc != 0:
            return set()
        data = json.loads(out or "[]")
        return _podman.published_host_ports(data[0]) if data else set()

    def check_port(self) -> None:
        port, address = self.params["port"], self.params["bind_address"]
        if not port or port in self.own_container_ports():
            return
        why = _podman.port_in_use(address, port)
        if why:
            self.problem(
                f"{address}:{port} cannot be used for the server ({why}): stop what listens there "
                "(ss -ltnp), or choose another vllm_profile_port."
            )

    def check_directories(self) -> None:
        need = _podman.parse_size(self.params["min_free_space"])
        for directory in self.params["directories"]:
            base = _podman.existing_ancestor(directory)
            if not os.access(base, os.W_OK | os.X_OK):
                what = (
                    "is not writable"
                    if base == os.path.abspath(directory)
                    else f"cannot be created ({base} is not writable)"
                )
                self.problem(
                    f"{directory} {what} by user {self.user['name']}: choose a directory this user owns, or run "
                    "the role as root (become)."
                )
                continue
            stat = os.statvfs(base)
            free = stat.f_bavail * stat.f_frsize
            if need and free < need:
                self.problem(
                    f"{directory} has {_podman.human_size(free)} free, less than the {self.params['min_free_space']} "
                    "asked for (min_free_space): free some space or choose another directory."
                )

    def selinux_mode(self) -> str:
        enforce = _read("/sys/fs/selinux/enforce")
        if enforce is None:
            return "disabled"
        return "enforcing" if enforce.strip() == "1" else "permissive"

    def run(self) -> dict:
        init: dict = {}
        devices: list[str] = []
        if self.check_podman():
            self.check_userns()
            init = self.check_init()
            self.check_subids()
            devices = self.check_cdi()
        elif self.params["init"]:
            # podman and its init binary usually come together: name both, so one install fixes both.
            init = self.check_init()
        self.check_port()
        self.check_directories()
        return {
            "changed": False,
            "problems": self.problems,
            "missing_packages": self.missing,
            "podman": self.podman,
            "user": self.user,
            "init": init,
            "selinux": self.selinux_mode(),
            "cdi_devices": devices,
        }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "podman_executable": {"type": "str", "default": "podman"},
            "devices": {"type": "list", "elements": "str", "default": []},
            "cdi_spec_dirs": {"type": "list", "elements": "path", "default": ["/etc/cdi", "/var/run/cdi"]},
            "bind_address": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "default": 0},
            "container": {"type": "str"},
            "directories": {"type": "list", "elements": "path", "default": []},
            "min_free_space": {"type": "str", "default": "1G"},
            "userns": {"type": "str", "default": "auto"},
            "init": {"type": "bool", "default": True},
            "packages": {"type": "dict", "default": {"podman": ["podman"], "init": ["catatonit"]}},
            "fail_on_problems": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        _podman.parse_size(module.params["min_free_space"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    result = Preflight(module).run()
    if result["problems"] and module.params["fail_on_problems"]:
        module.fail_json(msg=" ".join(result["problems"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
