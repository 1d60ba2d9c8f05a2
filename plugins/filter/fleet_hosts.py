# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_hosts
short_description: One record per host of a profiling run, with the line the fleet report prints
version_added: 0.1.0
description:
  - Turns each host's C(vllm_profile_result) (set by the P(vllm_infra.profiling.vllm_profile#role) role) and
    C(vllm_prepare_result) (set by the C(prepare_hosts) playbook) into one record per host, for the run's report
    and its C(set_stats) artifacts (AWX).
  - A host without a profile result never reached the role; its preparation result says why (failed or
    unreachable), else it is V(not run). A result still V(running) means the host left the play during the
    capture (V(unreachable)).
author:
  - vllm_infra.profiling contributors (@vllm-infra)
positional: _input, prepare
options:
  _input:
    description: Host name to its C(vllm_profile_result) (an empty dict when it has none).
    type: dict
    required: true
  prepare:
    description: Host name to its C(vllm_prepare_result) (an empty dict when it has none).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: One line per host
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.line }}"
  loop: "{{ records | vllm_infra.profiling.fleet_hosts(prepare) | dict2items }}"
  vars:
    hosts: "{{ query('ansible.builtin.inventory_hostnames', 'vllm_hosts') }}"
    records: >-
      {{ dict(hosts | zip(hosts | map('extract', hostvars) | map(attribute='vllm_profile_result', default={}))) }}
    prepare: >-
      {{ dict(hosts | zip(hosts | map('extract', hostvars) | map(attribute='vllm_prepare_result', default={}))) }}
"""

RETURN = r"""
_value:
  description: Host name to its record, in the order of the input.
  type: dict
  contains:
    status:
      description:
        - V(captured), V(failed), V(not profiled) (its preparation failed or it was unreachable then),
          V(unreachable) (it left the play during the capture), V(not run), or the role's own status.
      type: str
    line:
      description: The report's sentence for the host (where the capture landed and what it shows, or why not).
      type: str
    error:
      description: Why the capture or the preparation failed (empty otherwise).
      type: str
    failed_task:
      description: The task that failed (empty otherwise).
      type: str
    dest:
      description: The host's directory on the controller.
      type: str
    files:
      description: How many files were fetched.
      type: int
    report:
      description: The host's HTML report.
      type: str
    headline:
      description: What the trace shows, in one sentence.
      type: str
    vllm_version:
      description: The server's vLLM version.
      type: str
    prepare:
      description: The preparation's status (empty when the host was not prepared in this run).
      type: str
"""

PREPARE_FAILED = ("failed", "unreachable")


def fleet_line(result, prepare):
    """The report's sentence for one host."""
    status = result.get("status", "")
    if status == "captured":
        files = len(result.get("files") or [])
        return f"captured -> {result.get('dest')} ({files} files) {result.get('headline', '')}"
    if status == "failed":
        where = f' at "{result["failed_task"]}"' if result.get("failed_task") else ""
        return f"failed{where}: {result.get('error', '')}"
    if prepare.get("status") == "failed":
        return f'not profiled: preparation failed at "{prepare.get("failed_task", "")}": {prepare.get("error", "")}'
    if prepare.get("status") == "unreachable":
        return "not profiled: unreachable during its preparation"
    if status == "running":
        return "unreachable: the host left the play during the capture (no result after it started)"
    if "status" in result:
        return status + (f": {result['error']}" if result.get("error") else "")
    return "not run: no result recorded (unreachable, or it left the play before the capture)"


def fleet_record(result, prepare):
    """One host's record for the artifacts."""
    result = result or {}
    prepare = prepare or {}
    default = "not profiled" if prepare.get("status", "") in PREPARE_FAILED else "not run"
    status = result.get("status", default)
    return {
        "status": "unreachable" if status == "running" else status,
        "line": fleet_line(result, prepare),
        "error": result.get("error", prepare.get("error", "")),
        "failed_task": result.get("failed_task", prepare.get("failed_task", "")),
        "dest": result.get("dest", ""),
        "files": len(result.get("files") or []),
        "report": result.get("report", ""),
        "headline": result.get("headline", ""),
        "vllm_version": result.get("vllm_version", ""),
        "prepare": prepare.get("status", ""),
    }


def fleet_hosts(records, prepare=None):
    prepare = prepare or {}
    return {host: fleet_record(result, prepare.get(host)) for host, result in records.items()}


class FilterModule:
    """The fleet report's per-host records."""

    def filters(self):
        return {"fleet_hosts": fleet_hosts}
