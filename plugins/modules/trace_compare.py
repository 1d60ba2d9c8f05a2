#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: trace_compare
short_description: Compare a candidate vLLM capture with a baseline and fail on regressions (a CI gate)
version_added: 0.1.0
description:
  - Compares two captures - each a trace file, a capture directory, or a C(summary.json) written by
    M(vllm_infra.profiling.trace_summary) - and reports the deltas of step times (all steps p50/p90, prefill and
    decode p50), kernel time, compute time (kernel time outside collectives), communication share, GPU busy,
    kernel categories, and the top kernels (new, gone, changed); per rank when both captures have the same ranks.
  - Fails the task when a figure of the candidate exceeds a threshold of O(thresholds); the message names each
    figure with both values and the limit.
  - With O(path) and O(baseline_host) it compares every host of a capture root (one sub-directory per host) with
    the baseline host instead - the fleet view.
  - Writes C(compare.json) and C(compare.md) (baseline, candidate and delta side by side) into O(dest) when given.
  - Runs where it is called; to read captures fetched to the controller, delegate it to C(localhost).
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
attributes:
  check_mode:
    support: full
    details:
      - Everything is read and compared and the gate applied; the report files are not written.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The report is rendered deterministically, so a second run over the same inputs writes nothing.
options:
  baseline:
    description:
      - The baseline capture - a trace file, a capture directory (searched as trace_summary searches its
        O(vllm_infra.profiling.trace_summary#module:path)), or a C(summary.json).
      - Required with O(candidate); not used with O(path).
    type: path
  candidate:
    description: The capture to judge against O(baseline), in the same forms.
    type: path
  path:
    description:
      - A capture root with one sub-directory per host; every host is compared with O(baseline_host).
    type: path
  baseline_host:
    description: The host sub-directory of O(path) the others are compared with.
    type: str
  thresholds:
    description:
      - Limits on the candidate's figures; a figure over its limit fails the task (unless O(fail_on_regression=false)).
        Keys - C(step_p50_pct), C(step_p90_pct), C(prefill_p50_pct), C(decode_p50_pct), C(decode_p90_pct),
        C(kernel_time_pct), C(compute_time_pct) (relative increases in percent); C(communication_share_pts)
        (increase in percentage points); C(gpu_busy_drop_pts) (drop in percentage points). A key set to null is
        not checked.
      - The default checks C(step_p50_pct=10), C(step_p90_pct=20), C(kernel_time_pct=10) and C(compute_time_pct=10).
    type: dict
  fail_on_regression:
    description: Fail the task when the gate finds a regression; with C(false) the failures are only returned.
    type: bool
    default: true
  dest:
    description: Directory for C(compare.json) and C(compare.md); created if missing. Nothing is written without it.
    type: path
  top:
    description: Rows in the kernel lists (new, gone, changed).
    type: int
    default: 10
notes:
  - On a tensor-parallel capture the rank that waits in collectives for a slower peer has kernel time that measures
    the peer; compute time (kernel time outside collectives) is the steadier figure, and the per-rank deltas say
    which rank changed.
seealso:
  - module: vllm_infra.profiling.trace_summary
"""

EXAMPLES = r"""
- name: Gate a candidate capture against the baseline (fails on a regression)
  vllm_infra.profiling.trace_compare:
    baseline: "{{ playbook_dir }}/captures/baseline/gpu-a"
    candidate: "{{ playbook_dir }}/captures/{{ run_id }}/gpu-a"
    thresholds:
      step_p50_pct: 5
      decode_p90_pct: 15
      communication_share_pts: 5
    dest: "{{ playbook_dir }}/captures/{{ run_id }}/compare"
  delegate_to: localhost

- name: Compare every host of a run with one chosen host, reporting only
  vllm_infra.profiling.trace_compare:
    path: "{{ playbook_dir }}/captures/{{ run_id }}"
    baseline_host: gpu-a
    fail_on_regression: false
  delegate_to: localhost
  run_once: true
  register: __fleet_compare
"""

RETURN = r"""
comparison:
  description:
    - For O(baseline)/O(candidate) - C(figures) (each with baseline, candidate, delta, delta_pct), C(categories),
      C(kernels) (new, gone, changed), C(ranks) (per-rank deltas), C(straggler) (both captures' straggler lines) and
      C(failures). For O(path) - C(baseline_host) and one such entry per other host under C(hosts).
    - Times in microseconds (C(_us)), shares in percent (C(_pct)).
  returned: always
  type: dict
failures:
  description: One sentence per threshold exceeded (host-prefixed in the fleet form); empty when the gate passes.
  returned: always
  type: list
  elements: str
  sample: ["compute time 10.956 ms -> 116.056 ms (+959.3%, limit +10%)"]
report:
  description: Paths of C(compare.json) and C(compare.md) under O(dest); empty without O(dest).
  returned: always
  type: dict
written:
  description: Report files that were written (or, in check mode, would be).
  returned: always
  type: list
  elements: str
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import TraceError
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.compare import (
    compare_fleet,
    compare_paths,
    parse_thresholds,
    render_markdown,
)


class TraceCompareManager:
    """Compare, apply the gate, write the report files that differ."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params

    def run(self) -> dict:
        p = self.params
        if p["top"] < 1:
            self.module.fail_json(msg="top must be at least 1")
        limits = parse_thresholds(p["thresholds"])
        if p["path"]:
            comparison = compare_fleet(p["path"], p["baseline_host"], limits, p["top"])
        else:
            comparison = compare_paths(p["baseline"], p["candidate"], limits, p["top"])
        failures = comparison["failures"]
        report, written = {}, []
        if p["dest"]:
            dest = os.path.abspath(p["dest"])
            contents = {
                "json": json.dumps(comparison, indent=2, sort_keys=True) + "\n",
                "markdown": render_markdown(comparison),
            }
            report = {
                "dir": dest,
                "json": os.path.join(dest, "compare.json"),
                "markdown": os.path.join(dest, "compare.md"),
            }
            written = [report[key] for key in contents if self._differs(report[key], contents[key])]
            if written and not self.module.check_mode:
                os.makedirs(dest, exist_ok=True)
                for key, text in contents.items():
                    if report[key] in written:
                        self._write(dest, report[key], text)
        result = {
            "changed": bool(written),
            "comparison": comparison,
            "failures": failures,
            "report": report,
            "written": written,
        }
        if failures and p["fail_on_regression"]:
            result["msg"] = "regression gate failed: " + "; ".join(failures)
            self.module.fail_json(**result)
        return result

    @staticmethod
    def _differs(target: str, text: str) -> bool:
        try:
            with open(target, encoding="utf-8") as fh:
                return fh.read() != text
        except (OSError, UnicodeDecodeError):
            return True

    def _write(self, dest: str, target: str, text: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".trace_compare.", dir=dest)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        self.module.atomic_move(tmp, target)


def main() -> None:
    argument_spec = dict(
        baseline=dict(type="path"),
        candidate=dict(type="path"),
        path=dict(type="path"),
        baseline_host=dict(type="str"),
        thresholds=dict(type="dict"),
        fail_on_regression=dict(type="bool", default=True),
        dest=dict(type="path"),
        top=dict(type="int", default=10),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_together=[("baseline", "candidate"), ("path", "baseline_host")],
        required_one_of=[("baseline", "path")],
        mutually_exclusive=[("baseline", "path")],
    )
    try:
        result = TraceCompareManager(module).run()
    except TraceError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or 'input'}: {exc.strerror or exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
