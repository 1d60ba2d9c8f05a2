#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nsys_image_build
short_description: Build an image that runs a vLLM image's own entrypoint under Nsight Systems
version_added: 0.1.0
description:
  - Builds, with podman, an image C(FROM) a base image (typically a vLLM serving image) that adds the
    Nsight Systems CLI and wraps B(the base image's own entrypoint and command) in
    C(nsys profile -o <report_dir>/<name> --trace-fork-before-exec=true --cuda-graph-trace=node ...).
    The entrypoint and command are read from the base image with C(podman image inspect), never assumed.
  - The install steps run as root; the base image's C(USER) is restored after them.
  - The report name comes from the container's environment variable C(VLLM_INFRA_NSYS_REPORT)
    (nsys expands C(%q{VLLM_INFRA_NSYS_REPORT}) in C(-o)), so one image serves every run.
    Reports are written as C(<report_dir>/<name>.nsys-rep) when nsys ends.
  - The image's C(STOPSIGNAL) is C(SIGINT), which ends the nsys session and writes the report.
    Run the container with C(--init) (podman's init forwards the signal to nsys) and a stop timeout
    long enough for the report to be written.
  - Idempotent. The image carries the label C(vllm_infra.profiling.nsys.hash), a SHA-256 of the generated
    Containerfile and of the base image's ID; nothing is built when the label matches,
    so a changed option B(or a changed base image) rebuilds, and an unchanged pair does not.
  - The label survives C(podman push), C(pull), C(save) and C(load), and the base image's ID is the same on
    every host that has it, so one host can build and push (O(push)) while the others pull the image
    (M(vllm_infra.profiling.registry_image) with the label in its O(vllm_infra.profiling.registry_image#module:labels))
    or load it (M(vllm_infra.profiling.image_archive)); run this module in check mode there to learn the hash.
  - Runs on the host that holds the images (the GPU host); does not pull the base image.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports whether a build (and a push) would happen; builds nothing.
  diff_mode:
    support: full
    details:
      - The diff is the Containerfile that the current image was built from against the one that would be built.
  idempotent:
    support: partial
    details:
      - Idempotent unless O(force=true), or O(push.always=true) with O(push.destination) set.
options:
  name:
    description:
      - Reference (name and tag) of the image to build, for example C(localhost/vllm-nsys:latest).
    type: str
    required: true
  base_image:
    description:
      - The image to profile, as known to local podman storage. It must already be there.
    type: str
    required: true
  install:
    description:
      - How Nsight Systems gets into the image. The commands run as root at build time.
    type: dict
    default: {}
    suboptions:
      method:
        description:
          - V(devtools_repo) for RHEL/UBI bases, as NVIDIA's installation guide does it - install C(dnf)
            with C(microdnf) when only that is there, install C(dnf-plugins-core), import NVIDIA's key, add
            C(https://developer.download.nvidia.com/devtools/repos/rhel<major>/<arch>/) and
            C(dnf install nsight-systems-cli).
          - V(apt_repo) for Ubuntu bases - NVIDIA's devtools apt repository (C(ubuntu<version>/<arch>)),
            key through C(signed-by). Other Debian-family bases need O(install.repo_url).
          - V(packages) installs O(install.packages) with whichever of C(apt-get), C(dnf), C(microdnf)
            the base has (for example Debian's non-free C(nsight-systems) packages).
          - V(commands) runs only O(install.pre_commands) and O(install.commands).
        type: str
        choices: [devtools_repo, apt_repo, packages, commands]
        default: devtools_repo
      package:
        description: The package that the repository methods install.
        type: str
        default: nsight-systems-cli
      version:
        description:
          - Pin the repository methods' package to this version (C(dnf install nsight-systems-cli-<version>),
            C(apt-get install nsight-systems-cli=<version>)).
        type: str
      packages:
        description: Packages for O(install.method=packages).
        type: list
        elements: str
        default: []
      pre_commands:
        description:
          - Shell commands run before the install (for example enabling a repository component).
            One line each.
        type: list
        elements: str
        default: []
      commands:
        description:
          - Shell commands run after the install, or the whole install with O(install.method=commands).
            One line each.
        type: list
        elements: str
        default: []
      repo_url:
        description: Repository URL for the repository methods, instead of the one derived from the base's OS.
        type: str
      key_url:
        description: URL of the repository signing key.
        type: str
        default: https://developer.download.nvidia.com/compute/cuda/repos/ubuntu1804/x86_64/7fa2af80.pub
  profile:
    description:
      - The C(nsys profile) options baked into the entrypoint.
    type: dict
    default: {}
    suboptions:
      report_dir:
        description:
          - Directory inside the container where the report is written; mount a host directory there.
            Created in the image, writable by any user.
        type: str
        default: /nsys
      trace:
        description: APIs to trace (C(--trace)). On a host without a GPU use C([osrt, nvtx]).
        type: list
        elements: str
        default: [cuda, nvtx, osrt]
      sample:
        description:
          - C(--sample). V(none) disables CPU sampling, which needs C(perf_event_open) (blocked by the
            default seccomp profile of containers). Unset leaves nsys's default.
        type: str
        choices: [none, process-tree, system-wide]
      cuda_graph_trace:
        description: C(--cuda-graph-trace); V(node) as vLLM's documentation recommends. Empty to leave it out.
        type: str
        default: node
      trace_fork_before_exec:
        description: C(--trace-fork-before-exec); vLLM's worker processes are forked.
        type: bool
        default: true
      capture_range:
        description:
          - C(--capture-range). V(cudaProfilerApi) captures only between cudaProfilerStart and cudaProfilerStop,
            which vLLM calls on C(/start_profile) and C(/stop_profile) when started with the C(cuda) profiler
            kind. B(GPU only) - without CUDA nsys writes no report in this mode.
        type: str
        choices: [none, cudaProfilerApi, nvtx]
      capture_range_end:
        description: C(--capture-range-end); defaults to V(repeat) when O(profile.capture_range) is set.
        type: str
      force_overwrite:
        description: C(--force-overwrite); a report of the same name is replaced.
        type: bool
        default: true
      extra_args:
        description: More C(nsys profile) arguments, placed after the others.
        type: list
        elements: str
        default: []
      nsys_path:
        description: The nsys executable in the image.
        type: str
        default: nsys
  build_volumes:
    description:
      - C(podman build --volume) mounts, for example a host directory on C(/var/cache/apt/archives) to keep
        the package downloads between builds. Not part of the hash.
    type: list
    elements: str
    default: []
  force:
    description: Build even when the label matches.
    type: bool
    default: false
  push:
    description:
      - Push the image after a build. Credentials come only from podman's auth file; none are logged.
    type: dict
    suboptions:
      destination:
        description:
          - Where to push, for example C(registry.example.com/perf/vllm-nsys:3.2.1) or C(oci-archive:/tmp/x.tar).
        type: str
        required: true
      authfile:
        description: podman's auth file (C(podman login --authfile)); default is podman's own.
        type: path
      tls_verify:
        description: Verify the registry's TLS certificate.
        type: bool
        default: true
      always:
        description: Push on every run, not only after a build.
        type: bool
        default: false
  executable:
    description: The podman executable.
    type: str
    default: podman
notes:
  - The capture-window variant (O(profile.capture_range=cudaProfilerApi)) needs a GPU to produce a report.
  - Old images that lost their tag to a rebuild stay in storage (C(podman image prune) removes them).
seealso:
  - module: vllm_infra.profiling.nsys_report
  - module: containers.podman.podman_image
"""

EXAMPLES = r"""
- name: The guide's RHEL image, with nsys from NVIDIA's devtools repository
  vllm_infra.profiling.nsys_image_build:
    name: localhost/vllm-cuda-rhel9-nsys:3.2.1
    base_image: registry.redhat.io/rhaiis/vllm-cuda-rhel9:3.2.1
    profile:
      report_dir: /captures
      sample: none

- name: Capture only between /start_profile and /stop_profile (GPU only)
  vllm_infra.profiling.nsys_image_build:
    name: localhost/vllm-cuda-rhel9-nsys-window:3.2.1
    base_image: registry.redhat.io/rhaiis/vllm-cuda-rhel9:3.2.1
    profile:
      capture_range: cudaProfilerApi
      capture_range_end: repeat

- name: A Debian base with Debian's non-free nsight-systems packages (CPU tests)
  vllm_infra.profiling.nsys_image_build:
    name: localhost/vllm-cpu-nsys:0.32.0
    base_image: localhost/vllm-cpu-tiny:0.32.0
    install:
      method: packages
      pre_commands:
        - sed -i 's/ main$/ main contrib non-free/' /etc/apt/sources.list
      packages: [nsight-systems, nsight-systems-target]
      commands:
        - ln -sfn ../../nsight-systems/host-linux-x64 /usr/lib/x86_64-linux-gnu/nsight-systems/host-linux-x64
    profile:
      trace: [osrt, nvtx]
      sample: none
    build_volumes:
      - /var/cache/vllm-nsys-apt:/var/cache/apt/archives

- name: Build and push to a registry, with the credentials of `podman login --authfile`
  vllm_infra.profiling.nsys_image_build:
    name: registry.example.com/perf/vllm-nsys:3.2.1
    base_image: registry.redhat.io/rhaiis/vllm-cuda-rhel9:3.2.1
    push:
      destination: registry.example.com/perf/vllm-nsys:3.2.1
      authfile: /root/.config/containers/auth.json
"""

RETURN = r"""
image_id:
  description: ID of the image (after the build; in check mode the current one, if any).
  returned: success
  type: str
built:
  description: Whether a build ran (would run, in check mode).
  returned: success
  type: bool
containerfile:
  description: The generated Containerfile.
  returned: always
  type: str
hash:
  description: Value of the label C(vllm_infra.profiling.nsys.hash) for these options and this base image.
  returned: success
  type: str
base_image:
  description: What was read from the base image.
  returned: success
  type: dict
  contains:
    ref:
      description: The base image reference.
      type: str
    id:
      description: Its image ID.
      type: str
    digest:
      description: Its manifest digest (empty for some local images).
      type: str
    user:
      description: Its USER, restored after the install.
      type: str
    entrypoint:
      description: Its entrypoint, now run under nsys.
      type: list
      elements: str
    cmd:
      description: Its command, kept as the image's CMD.
      type: list
      elements: str
entrypoint:
  description: ENTRYPOINT of the built image.
  returned: success
  type: list
  elements: str
cmd:
  description: CMD of the built image (the base image's).
  returned: success
  type: list
  elements: str
report_pattern:
  description: The C(-o) value; the container's C(VLLM_INFRA_NSYS_REPORT) names the report.
  returned: success
  type: str
  sample: /nsys/%q{VLLM_INFRA_NSYS_REPORT}
report_env:
  description: Name of the environment variable that names the report.
  returned: success
  type: str
  sample: VLLM_INFRA_NSYS_REPORT
reason:
  description: Why a build ran or did not.
  returned: success
  type: str
  sample: base image changed
command:
  description: The podman build command that ran (or would run).
  returned: success
  type: list
  elements: str
pushed:
  description: Whether the image was pushed (would be, in check mode).
  returned: success
  type: bool
build_log_tail:
  description: The last lines of the build's output.
  returned: failure of the build
  type: str
"""

import json
import os
import shutil
import tempfile
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _nsys, _registry
from ansible_collections.vllm_infra.profiling.plugins.module_utils._cli import ModuleCliClient

LABEL_CONTAINERFILE = "vllm_infra.profiling.nsys.containerfile"


class NsysImageBuilder:
    """Inspect the base and the target image, decide, build, push."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.podman = ModuleCliClient.require(module, module.params["executable"])
        self.results: dict[str, t.Any] = {"changed": False, "built": False, "pushed": False}

    def inspect(self, ref: str) -> dict[str, t.Any] | None:
        result = self.podman.call("image", "inspect", "--format", "json", ref)
        if result.rc != 0:
            if "image not known" in result.stderr or "no such image" in result.stderr.lower():
                return None
            self.module.fail_json(msg=f"podman image inspect {ref} failed: {result.stderr.strip()}", rc=result.rc)
        data = json.loads(result.stdout or "[]")
        return data[0] if data else None

    def build_argv(self, labels: dict[str, str], context: str) -> list[str]:
        argv = ["build", "--pull=never", "--layers", "--tag", self.params["name"]]
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        for volume in self.params["build_volumes"]:
            argv += ["--volume", volume]
        argv += ["--file", os.path.join(context, "Containerfile"), context]
        return argv

    def decide(self, current: dict[str, t.Any] | None, wanted_hash: str, base: _nsys.BaseImage) -> str | None:
        """Why a build is needed, or None."""
        if current is None:
            return "image does not exist"
        labels = (current.get("Config") or {}).get("Labels") or current.get("Labels") or {}
        if self.params["force"]:
            return "force"
        if labels.get(_nsys.LABEL_HASH) == wanted_hash:
            return None
        previous_base = labels.get(_nsys.LABEL_BASE, "")
        if previous_base and previous_base != f"{base.ref}@{base.id}":
            return "base image changed"
        return "Containerfile changed"

    def run(self) -> dict[str, t.Any]:
        p = self.params
        try:
            install = _nsys.install_from_params(p["install"] or {})
            profile = _nsys.profile_from_params(p["profile"] or {})
        except _nsys.NsysError as exc:
            self.module.fail_json(msg=str(exc))

        base_data = self.inspect(p["base_image"])
        if base_data is None and self.check_mode:
            # A host that has not pulled its base yet (check mode pulls nothing): a build would follow the pull.
            self.results.update(
                changed=True,
                built=True,
                pushed=bool(p["push"]),
                reason=f"base image {p['base_image']} is not on this host yet (it would be pulled or loaded first)",
                image_id=None,
                hash="",
                containerfile="",
            )
            return self.results
        if base_data is None:
            self.module.fail_json(
                msg=f"base image {p['base_image']} is not in local podman storage; pull or build it first "
                "(this module does not pull)",
                base_image=p["base_image"],
            )
        base = _nsys.BaseImage.from_inspect(p["base_image"], base_data)
        if not base.entrypoint and not base.cmd:
            self.module.warn(
                f"{base.ref} has neither ENTRYPOINT nor CMD: give the container a command to profile when running it"
            )
        containerfile = _nsys.render_containerfile(base, install, profile)
        labels = _nsys.build_labels(containerfile, base, profile)
        labels[LABEL_CONTAINERFILE] = containerfile
        entrypoint, cmd = _nsys.wrapped_entrypoint(profile, base)
        self.results.update(
            containerfile=containerfile,
            hash=labels[_nsys.LABEL_HASH],
            base_image=dict(
                ref=base.ref,
                id=base.id,
                digest=base.digest,
                user=base.user,
                entrypoint=list(base.entrypoint),
                cmd=list(base.cmd),
            ),
            entrypoint=entrypoint,
            cmd=cmd,
            report_pattern=profile.report_pattern,
            report_env=_nsys.REPORT_ENV,
        )

        current = self.inspect(p["name"])
        before_id = current.get("Id") if current else None
        reason = self.decide(current, labels[_nsys.LABEL_HASH], base)
        self.results["reason"] = reason or "up to date"
        self.results["image_id"] = before_id
        shown = {**labels, LABEL_CONTAINERFILE: "<the Containerfile>"}
        self.results["command"] = [self.podman.binary, *self.build_argv(shown, "<context>")]
        if self.module._diff:
            old_labels = ((current or {}).get("Config") or {}).get("Labels") or {}
            self.results["diff"] = {
                "before_header": f"{p['name']} ({old_labels.get(_nsys.LABEL_HASH, 'absent')})",
                "before": old_labels.get(LABEL_CONTAINERFILE, "") if current else "",
                "after_header": f"{p['name']} ({labels[_nsys.LABEL_HASH]})",
                "after": containerfile,
            }

        if reason is not None:
            self.results["built"] = True
            self.results["changed"] = True
            if not self.check_mode:
                self.build(labels, containerfile)
                after = self.inspect(p["name"])
                self.results["image_id"] = after.get("Id") if after else None
                self.results["changed"] = self.results["image_id"] != before_id

        push = p["push"]
        if push and (self.results["built"] or push["always"]):
            self.results["pushed"] = True
            self.results["changed"] = True
            if not self.check_mode:
                self.push(push)
        return self.results

    def build(self, labels: dict[str, str], containerfile: str) -> None:
        context = tempfile.mkdtemp(prefix="nsys-image-build-")
        try:
            with open(os.path.join(context, "Containerfile"), "w", encoding="utf-8") as handle:
                handle.write(containerfile)
            argv = self.build_argv(labels, context)
            result = self.podman.call(*argv)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        if result.rc != 0:
            log_tail = _nsys.tail(result.output, 40)
            last = log_tail.splitlines()[-1] if log_tail else ""
            self.module.fail_json(
                msg=f"podman build of {self.params['name']} failed (exit {result.rc}): {last}",
                rc=result.rc,
                build_log_tail=log_tail,
                containerfile=containerfile,
                command=self.results["command"],
            )

    def push(self, push: dict[str, t.Any]) -> None:
        argv = ["push"]
        if push.get("authfile"):
            argv += ["--authfile", push["authfile"]]
        if not push["tls_verify"]:
            argv.append("--tls-verify=false")
        argv += [self.params["name"], push["destination"]]
        result = self.podman.call(*argv)
        if result.rc != 0:
            self.module.fail_json(
                msg=_registry.failure_sentence(
                    "push",
                    _registry.registry_of(push["destination"]),
                    result.stderr,
                    ref=push["destination"],
                    auth_file=push.get("authfile") or "",
                ),
                rc=result.rc,
                image_id=self.results.get("image_id"),
                built=self.results["built"],
            )


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            base_image=dict(type="str", required=True),
            install=dict(
                type="dict",
                default={},
                options=dict(
                    method=dict(
                        type="str",
                        choices=["devtools_repo", "apt_repo", "packages", "commands"],
                        default="devtools_repo",
                    ),
                    package=dict(type="str", default="nsight-systems-cli"),
                    version=dict(type="str"),
                    packages=dict(type="list", elements="str", default=[]),
                    pre_commands=dict(type="list", elements="str", default=[]),
                    commands=dict(type="list", elements="str", default=[]),
                    repo_url=dict(type="str"),
                    key_url=dict(type="str", default=_nsys.DEFAULT_KEY_URL, no_log=False),
                ),
            ),
            profile=dict(
                type="dict",
                default={},
                options=dict(
                    report_dir=dict(type="str", default="/nsys"),
                    trace=dict(type="list", elements="str", default=["cuda", "nvtx", "osrt"]),
                    sample=dict(type="str", choices=["none", "process-tree", "system-wide"]),
                    cuda_graph_trace=dict(type="str", default="node"),
                    trace_fork_before_exec=dict(type="bool", default=True),
                    capture_range=dict(type="str", choices=["none", "cudaProfilerApi", "nvtx"]),
                    capture_range_end=dict(type="str"),
                    force_overwrite=dict(type="bool", default=True),
                    extra_args=dict(type="list", elements="str", default=[]),
                    nsys_path=dict(type="str", default="nsys"),
                ),
            ),
            build_volumes=dict(type="list", elements="str", default=[]),
            force=dict(type="bool", default=False),
            push=dict(
                type="dict",
                options=dict(
                    destination=dict(type="str", required=True),
                    authfile=dict(type="path"),
                    tls_verify=dict(type="bool", default=True),
                    always=dict(type="bool", default=False),
                ),
            ),
            executable=dict(type="str", default="podman"),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**NsysImageBuilder(module).run())


if __name__ == "__main__":
    main()
