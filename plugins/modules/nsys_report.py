#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nsys_report
short_description: Wait for an Nsight Systems report to be complete and summarise it with nsys stats
version_added: 0.1.0
description:
  - Waits until a C(.nsys-rep) file exists, is not empty and has stopped growing (nsys writes it in place
    after the profiled process ends), then runs C(nsys stats) to write CSV summaries next to it.
  - The summaries are asked for by meaning (V(kernels), V(cuda_api), V(nvtx), V(osrt)) and mapped to the
    report names of the installed nsys, read from C(nsys stats --help-reports) - 2022.x calls them
    C(gpukernsum), C(cudaapisum), C(nvtxsum), C(osrtsum); later releases C(cuda_gpu_kern_sum),
    C(cuda_api_sum), C(nvtx_sum), C(osrt_sum). Any literal report name is accepted too.
  - nsys runs from an image (O(nsys_image), typically the one M(vllm_infra.profiling.nsys_image_build) made,
    through C(podman run) with the report's directory mounted at the same path) or from the host (O(nsys_binary)).
  - Writes C(<report>_<summary>.csv) for each summary with data and C(<report>_nsys_stats.json), a manifest
    of what was run. A summary without data (for example kernels in a capture without CUDA) writes no CSV;
    the manifest says why.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
attributes:
  check_mode:
    support: full
    details:
      - Waits for the report (reading only) and predicts whether the summaries would be written.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Nothing is rerun while the manifest matches the report's size and time and the summaries asked for.
options:
  path:
    description: The C(.nsys-rep) file.
    type: path
    required: true
  wait_timeout:
    description: Seconds to wait for the report to exist and stop changing.
    type: float
    default: 120
  settle:
    description: Seconds the report's size and time must stay the same to count as complete.
    type: float
    default: 2
  stats:
    description: Run C(nsys stats). With V(false) the module only waits for the report.
    type: bool
    default: true
  reports:
    description:
      - Summaries to write. V(kernels), V(cuda_api), V(nvtx), V(osrt) map to the installed version's names;
        anything else is passed as a report name. Those this nsys does not know are listed in RV(missing).
    type: list
    elements: str
    default: [kernels, cuda_api, nvtx, osrt]
  nsys_image:
    description: Run nsys from this image with podman (C(--network none), as root, SELinux labels untouched).
    type: str
  nsys_binary:
    description: Run this nsys on the host instead.
    type: path
  keep_sqlite:
    description: Keep the SQLite export C(nsys stats) makes (often several times the report's size).
    type: bool
    default: false
  force:
    description: Rewrite the summaries even when the manifest matches.
    type: bool
    default: false
  executable:
    description: The podman executable (with O(nsys_image)).
    type: str
    default: podman
notes:
  - With rootful podman the files are given the owner of the report.
seealso:
  - module: vllm_infra.profiling.nsys_image_build
"""

EXAMPLES = r"""
- name: Wait for the report and summarise it with the image's nsys
  vllm_infra.profiling.nsys_report:
    path: /var/lib/vllm-profile/run1/nsys-run1.nsys-rep
    nsys_image: localhost/vllm-nsys:latest
  register: nsys

- name: Only wait for the report to be complete
  vllm_infra.profiling.nsys_report:
    path: /var/lib/vllm-profile/run1/nsys-run1.nsys-rep
    stats: false
    wait_timeout: 600
"""

RETURN = r"""
report:
  description: The report.
  returned: success
  type: dict
  contains:
    path:
      description: Its path.
      type: str
    size:
      description: Its size in bytes.
      type: int
    waited:
      description: Seconds spent waiting for it to be complete.
      type: float
nsys_version:
  description: Version of the nsys that made the summaries.
  returned: when the summaries were (re)written
  type: str
  sample: 2022.4.2.1-df9881f
summaries:
  description: One entry per summary asked for and known to this nsys.
  returned: when O(stats=true)
  type: list
  elements: dict
  contains:
    summary:
      description: What was asked for (V(osrt)).
      type: str
    report:
      description: The nsys report name used (V(osrtsum)).
      type: str
    path:
      description: The CSV (null when the summary had no data).
      type: str
    rows:
      description: Data rows in the CSV.
      type: int
    status:
      description: C(PROCESSED), or the reason nsys skipped it.
      type: str
missing:
  description: Summaries asked for that this nsys version does not have.
  returned: when O(stats=true)
  type: list
  elements: str
available_reports:
  description: Report names this nsys knows.
  returned: when the summaries were (re)written
  type: list
  elements: str
manifest:
  description: Path of the JSON manifest written next to the report.
  returned: when O(stats=true)
  type: str
files:
  description: Every file this module wrote (CSVs with data, the manifest, the SQLite file when kept).
  returned: when O(stats=true)
  type: list
  elements: str
"""

import json
import os
import re
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _nsys
from ansible_collections.vllm_infra.profiling.plugins.module_utils._cli import CliResult, ModuleCliClient

MANIFEST_SUFFIX = "_nsys_stats.json"


class NsysRunner:
    """``nsys ...`` on the host or inside an image (the report's directory mounted at the same path)."""

    def __init__(self, module: AnsibleModule, workdir: str) -> None:
        self.module = module
        p = module.params
        self.image = p["nsys_image"]
        if self.image:
            podman = ModuleCliClient.find(module, p["executable"])
            if podman is None:
                module.fail_json(msg=f"{p['executable']} was not found on this host")
            self.client = podman
            self.prefix = [
                "run",
                "--rm",
                "--network",
                "none",
                "--security-opt",
                "label=disable",
                "--user",
                "0:0",
                "--entrypoint",
                "nsys",
                "--volume",
                f"{workdir}:{workdir}",
                self.image,
            ]
        else:
            nsys = ModuleCliClient.find(module, "nsys", path=p["nsys_binary"])
            if nsys is None:
                module.fail_json(msg="nsys was not found on this host: set nsys_image or nsys_binary")
            self.client = nsys
            self.prefix = []

    def __call__(self, *args: str) -> CliResult:
        return self.client.call(*self.prefix, *args)


class NsysReportManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.path = os.path.abspath(module.params["path"])
        self.prefix = _nsys.stats_output_prefix(self.path)
        self.manifest_path = self.prefix + MANIFEST_SUFFIX
        self.results: dict[str, t.Any] = {"changed": False}

    def fail(self, msg: str, **kwargs: t.Any) -> t.NoReturn:
        self.module.fail_json(msg=msg, **self.results, **kwargs)
        raise SystemExit(1)  # fail_json exits; this line only tells type checkers so

    def read_manifest(self) -> dict[str, t.Any] | None:
        try:
            with open(self.manifest_path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def up_to_date(self, manifest: dict[str, t.Any] | None, stat: os.stat_result) -> bool:
        if not manifest or self.params["force"]:
            return False
        source = manifest.get("source") or {}
        if source.get("size") != stat.st_size or source.get("mtime_ns") != stat.st_mtime_ns:
            return False
        if manifest.get("requested") != list(self.params["reports"]):
            return False
        return all(os.path.isfile(entry["path"]) for entry in manifest.get("summaries", []) if entry.get("path"))

    def run(self) -> dict[str, t.Any]:
        p = self.params
        try:
            state = _nsys.wait_for_report(self.path, timeout=p["wait_timeout"], settle=p["settle"])
        except _nsys.NsysError as exc:
            self.fail(str(exc))
        self.results["report"] = dataclass_dict(state)
        if not p["stats"]:
            return self.results

        stat = os.stat(self.path)
        manifest = self.read_manifest()
        self.results["manifest"] = self.manifest_path
        if manifest is not None and self.up_to_date(manifest, stat):
            self.results.update(
                summaries=manifest["summaries"],
                missing=manifest["missing"],
                files=manifest["files"],
                nsys_version=manifest.get("nsys_version"),
            )
            return self.results
        self.results["changed"] = True
        if self.module.check_mode:
            return self.results
        self.summarise(stat)
        return self.results

    def summarise(self, stat: os.stat_result) -> None:
        p = self.params
        nsys = NsysRunner(self.module, os.path.dirname(self.path))
        version = nsys("--version")
        if version.rc != 0:
            self.fail(f"nsys --version failed (exit {version.rc}): {_nsys.tail(version.output, 5)}")
        match = re.search(r"version\s+(\S+)", version.stdout)
        nsys_version = match.group(1) if match else version.stdout.strip()
        # --help-reports exits 1 in 2022.x while printing the list.
        listing = nsys("stats", "--help-reports")
        available = _nsys.parse_help_reports(listing.stdout)
        if not available:
            self.fail(
                f"nsys stats --help-reports listed no reports (exit {listing.rc}): {_nsys.tail(listing.output, 5)}"
            )
        chosen, missing = _nsys.choose_reports(available, p["reports"])
        sqlite = self.prefix + ".sqlite"
        had_sqlite = os.path.exists(sqlite)
        summaries: list[dict[str, t.Any]] = []
        if chosen:
            argv = ["stats"]
            for name in chosen.values():
                argv += ["--report", name]
            argv += [
                "--format",
                "csv",
                "--output",
                self.prefix,
                "--force-export=true",
                "--force-overwrite=true",
                self.path,
            ]
            result = nsys(*argv)
            if result.rc != 0:
                self.fail(
                    f"nsys stats failed on {self.path} (exit {result.rc}): {_nsys.tail(result.output, 10)}",
                    nsys_version=nsys_version,
                )
            statuses = _nsys.parse_stats_output(result.output)
            for summary, name in chosen.items():
                csv = _nsys.stats_csv_path(self.path, name)
                rows = _nsys.csv_rows(csv)
                status = statuses.get(csv, "PROCESSED" if rows else "no output")
                entry = {"summary": summary, "report": name, "rows": rows, "status": status, "path": None}
                if os.path.isfile(csv) and os.path.getsize(csv) == 0:
                    os.unlink(csv)  # nsys leaves an empty file for a skipped summary
                elif os.path.isfile(csv):
                    entry["path"] = csv
                summaries.append(entry)
        if not p["keep_sqlite"] and not had_sqlite and os.path.exists(sqlite):
            os.unlink(sqlite)
        files = [entry["path"] for entry in summaries if entry["path"]]
        if p["keep_sqlite"] and os.path.exists(sqlite):
            files.append(sqlite)
        files.append(self.manifest_path)
        manifest = {
            "source": {"path": self.path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
            "requested": list(p["reports"]),
            "nsys_version": nsys_version,
            "available_reports": available,
            "summaries": summaries,
            "missing": missing,
            "files": files,
        }
        with open(self.manifest_path, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2)
            handle.write("\n")
        if os.geteuid() == 0:
            for path in files:
                os.chown(path, stat.st_uid, stat.st_gid)
        self.results.update(
            nsys_version=nsys_version,
            available_reports=available,
            summaries=summaries,
            missing=missing,
            files=files,
        )


def dataclass_dict(state: _nsys.ReportState) -> dict[str, t.Any]:
    return {"path": state.path, "size": state.size, "waited": state.waited}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            wait_timeout=dict(type="float", default=120),
            settle=dict(type="float", default=2),
            stats=dict(type="bool", default=True),
            reports=dict(type="list", elements="str", default=["kernels", "cuda_api", "nvtx", "osrt"]),
            nsys_image=dict(type="str"),
            nsys_binary=dict(type="path"),
            keep_sqlite=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            executable=dict(type="str", default="podman"),
        ),
        mutually_exclusive=[("nsys_image", "nsys_binary")],
        required_if=[("stats", True, ("nsys_image", "nsys_binary"), True)],
        supports_check_mode=True,
    )
    module.exit_json(**NsysReportManager(module).run())


if __name__ == "__main__":
    main()
