#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: trace_summary
short_description: Summarise PyTorch-profiler traces and nsys stats of a vLLM capture in a report a person reads
version_added: 0.1.0
description:
  - Reads the PyTorch-profiler (Kineto) traces that vLLM writes (C(*.pt.trace.json.gz) and C(*.pt.trace.json)) and the
    C(nsys stats --format csv) tables next to an Nsight Systems report, and says what they show - engine steps
    (prefill and decode, tokens, step times), decoder layers, top CPU ops, top GPU kernels and their categories,
    GPU busy time, CUDA graph launches, the device and the vLLM version.
  - Traces are read as a stream, with bounded memory, so captures with stack recording (hundreds of MB of JSON)
    are summarised quickly on the controller. Pure Python, no extra packages needed; where the optional packages
    C(msgspec) and C(isal) are installed (the execution environment has both) traces are read faster, to the same
    figures. C(VLLM_INFRA_TRACE_BACKEND=stdlib) in the controller's environment leaves them unused.
  - Writes C(summary.json), C(summary.md) and C(report.html) (a self-contained page with inline SVG pictures - a
    timeline of engine steps, step durations, the share of GPU time per kernel category) into O(dest).
  - Given a capture root with one sub-directory per host, adds a fleet view - one table comparing the hosts.
  - Groups a directory's worker traces into captures (same directory, overlapping time windows, each rank once) and
    never merges two captures - the summary is the latest capture's, and every capture is listed. Ranks come from
    C(distributedInfo), else from vLLM's file names (C(rankN), C(<id>-rank-N), C(dp0_pp0_tp0_..._rankN)).
  - A capture of several ranks gets a per-rank table (steps, kernel time, compute, collectives, time waiting in
    collectives beyond the collective's minimum across ranks, communication share, GPU busy), a per-rank chart, and
    the straggler - the rank the others wait for - in the headline.
  - An nsys capture (C(nsys stats) CSVs without a Kineto trace) gets its own summary - the kernel, CUDA API, NVTX and
    OS runtime tables with their top items in the headline.
  - torch's C(key_averages) table that vLLM writes beside a trace (C(*.profiler_out.txt), C(profiler_out_N.txt)) is
    shown in the report.
  - To compare two captures, or every host with a baseline host, use M(vllm_infra.profiling.trace_compare).
  - Runs where it is called; to read captures fetched to the controller, delegate it to C(localhost).
  - In check mode it reads and summarises everything and returns the summary, but writes no file; C(changed)
    then says whether the report files would change.
author:
  - vllm_infra.profiling contributors (@vllm-infra)
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
attributes:
  check_mode:
    support: full
    details:
      - The traces are read and summarised; the report files are not written.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The report is rendered deterministically (no timestamps), so a second run over the same inputs writes nothing.
options:
  path:
    description:
      - A trace file, an nsys stats CSV, or a directory searched recursively for C(*.pt.trace.json[.gz]),
        C(*.trace.json[.gz]) and nsys stats CSVs (any C(*.csv) next to a C(.nsys-rep), or named after an
        C(nsys stats) report such as C(*_cuda_gpu_kern_sum.csv) or the 2022.x C(*_gpukernsum.csv)).
      - A directory that holds no inputs itself but whose sub-directories do (at least two of them) is a capture
        root of several hosts - each sub-directory is one host, and the report gets a fleet table.
    type: path
    required: true
  dest:
    description:
      - Directory for C(summary.json), C(summary.md) and C(report.html); created if missing.
      - Defaults to C(<path>/trace_summary) for a directory and to C(trace_summary) next to a file. It is never read
        as input.
    type: path
  top:
    description: Rows in the top lists (ops, kernels, modules, nsys tables).
    type: int
    default: 15
  step_regex:
    description:
      - A regular expression for the user annotations that mark one step, for traces that are not vLLM's
        (for example C(ProfilerStep#\d+) or C(token_step_\d+)). Step counts and durations are then reported
        without the prefill/decode split and token counts.
      - By default vLLM's C(execute_context_N(T)_generation_M(T)) annotations (both layouts) are used.
    type: str
  fleet:
    description:
      - How a directory maps to hosts. C(auto) - a directory that holds no inputs itself but has at least two
        sub-directories with inputs is a capture root, one host per sub-directory; otherwise one host.
      - C(always) - every sub-directory with inputs is a host. C(never) - everything under O(path) is one host
        (for example one host's capture split into sub-directories).
    type: str
    choices: [auto, always, never]
    default: auto
  on_error:
    description:
      - What to do with an input that cannot be read (truncated gzip, not JSON, JSON that is not a trace, an
        empty trace). C(fail) fails the task with a message naming the file; C(skip) leaves it out, lists it in
        C(errors) and in the report, and goes on.
    type: str
    choices: [fail, skip]
    default: fail
  baseline_host:
    description:
      - With a capture root of several hosts, compare every other host with this one (its sub-directory name) - the
        deltas of step times, kernel and compute time, communication share and GPU busy, as
        M(vllm_infra.profiling.trace_compare) computes them - in the headline, the report and the result's C(baseline).
      - A baseline host without a capture is said in C(baseline.error); the task does not fail on it, nor on
        O(thresholds) (fail on C(baseline.failures) and C(baseline.error), or use trace_compare, for a gate).
    type: str
  thresholds:
    description:
      - Limits on each host's figures against O(baseline_host), with the keys of trace_compare's
        O(vllm_infra.profiling.trace_compare#module:thresholds); a figure over its limit is listed in
        C(baseline.failures). A key set to null is not checked.
      - The default is trace_compare's (C(step_p50_pct=10), C(step_p90_pct=20), C(kernel_time_pct=10),
        C(compute_time_pct=10)). Used only with O(baseline_host).
    type: dict
notes:
  - Step times are the CPU span of each vLLM step annotation; when the trace also has the matching
    C(gpu_user_annotation) events, their GPU spans and the GPU busy time inside them are reported as well.
  - Without stack capture the layer count is estimated from vLLM's attention ops per step and marked C(estimated).
  - GPU busy is the union of kernel, memcpy and memset intervals (all streams of a device) over the profiled window.
seealso:
  - name: HolisticTraceAnalysis
    description: Meta's trace analysis library; its kernel breakdown and temporal breakdown agree with this module's.
    link: https://github.com/facebookresearch/HolisticTraceAnalysis
"""

EXAMPLES = r"""
- name: Summarise the capture fetched from one host
  vllm_infra.profiling.trace_summary:
    path: "{{ playbook_dir }}/captures/{{ inventory_hostname }}"
    dest: "{{ playbook_dir }}/captures/{{ inventory_hostname }}/report"
    top: 15
  delegate_to: localhost
  register: __trace

- name: Print the headline
  ansible.builtin.debug:
    msg: "{{ __trace.headline }}"

- name: Compare the hosts of a fleet (one sub-directory per host)
  vllm_infra.profiling.trace_summary:
    path: "{{ playbook_dir }}/captures"
    dest: "{{ playbook_dir }}/captures/fleet-report"
  delegate_to: localhost
  run_once: true

- name: Compare the hosts of a fleet, each against gpu-a as well (the report play's baseline view)
  vllm_infra.profiling.trace_summary:
    path: "{{ playbook_dir }}/captures"
    dest: "{{ playbook_dir }}/captures/fleet-report"
    fleet: always
    baseline_host: gpu-a
    thresholds:
      step_p50_pct: 5
      communication_share_pts: 5
  delegate_to: localhost
  run_once: true
  register: __fleet

- name: A plain torch.profiler trace with ProfilerStep annotations, skipping unreadable files
  vllm_infra.profiling.trace_summary:
    path: /data/traces/run1
    step_regex: '^ProfilerStep#\d+$'
    on_error: skip
  delegate_to: localhost
"""

RETURN = r"""
headline:
  description:
    - One line for a person - steps, prefill/decode step times, layers, GPU busy, top 3 kernels (or ops), report path.
  returned: always
  type: str
  sample: "10 steps (1 prefill / 10 tok, 9 decode / 9 tok, 1 empty); prefill 11.28 ms mean; decode 1.25 ms mean, ..."
summary:
  description:
    - What the traces say, for the whole input (a host's worker ranks merged; for a fleet, all hosts).
    - Times are in microseconds (C(_us)).
  returned: always
  type: dict
  contains:
    kind:
      description:
        - C(worker) (a vLLM engine worker), C(frontend) (vLLM's API-server trace), C(trace) (any other), or C(mixed).
      type: str
    rank:
      description: The lowest distributed rank among the traces (C(distributedInfo.rank)), or null.
      type: int
    world_size:
      description: C(distributedInfo.world_size), or null.
      type: int
    vllm_version:
      description: The vLLM version recorded in the trace, or null.
      type: str
    device:
      description:
        - The first GPU of C(deviceProperties) (name, count, total_memory_gib, sms, compute_capability); null on CPU.
      type: dict
    with_stack:
      description: Whether the trace has stack (python_function) events.
      type: bool
    steps:
      description:
        - Engine steps from vLLM's C(execute_context_N(T)_generation_M(T)) annotations, null when there are none
          (not a vLLM worker trace).
        - Keys C(steps) (steps that processed tokens), C(prefill_steps), C(decode_steps), C(mixed_steps), C(empty_steps)
          (no tokens, counted apart), C(prefill_tokens), C(decode_tokens), and duration statistics C(prefill), C(decode)
          and C(all) (count, total_us, mean_us, p50_us, p90_us, min_us, max_us).
      type: dict
    layers:
      description:
        - Decoder layers per forward - C(count), C(module), C(source), C(estimated). From C(nn.Module *DecoderLayer_K)
          events with stack capture, else estimated from attention ops per step; null if unknown.
      type: dict
    top_ops:
      description: CPU ops and CUDA runtime/driver calls by self time (name, cat, count, total_us, self_us).
      type: list
      elements: dict
    top_kernels:
      description:
        - GPU kernels, memcpys and memsets by total time (name, short_name, category, count, total_us, mean_us,
          share_pct).
      type: list
      elements: dict
    kernel_categories:
      description: Kernel time per category (GEMM, attention, norm, elementwise, memcpy/memset, communication, other).
      type: list
      elements: dict
    gpu:
      description:
        - GPU busy and kernel time (busy_us, window_us, busy_pct, active_span_us, busy_pct_of_active_span,
          kernel_time_us, cuda_graph_kernels, cuda_graph_kernel_us); null without GPU events.
      type: dict
    gpu_busy_pct:
      description:
        - Percent of the profiled window in which the GPU ran a kernel, memcpy or memset; null without GPU events.
      type: float
    cuda_graph_launches:
      description: Number of C(cudaGraphLaunch) calls.
      type: int
    timeline:
      description:
        - Per-step records (start_us from the window start, dur_us, phase, tokens, GPU span) for the timeline picture.
      type: list
      elements: dict
cross_rank:
  description:
    - For a single host whose latest capture has several ranks - C(rows) (per rank - rank, steps, step_p50_us,
      kernel_us, compute_us, collective_us, collective_wait_us, collective_wait_pct, communication_pct, gpu_busy_pct,
      cuda_graph_launches), C(collectives_matched), C(compute_spread_us), C(straggler) (a rank or null) and
      C(straggler_line); null otherwise (also for a fleet - see each host's entry).
  returned: always
  type: dict
nsys_summary:
  description:
    - For a single host with nsys stats tables and no Kineto trace - C(sections) (per table kind - title, report,
      rows_total, total_us, top), C(empty_reports) (reports nsys skipped) and C(notes); null otherwise.
  returned: always
  type: dict
hosts:
  description:
    - One entry per host (one for a single capture) - C(host), its C(summary), per-file C(traces) and C(frontends),
      C(nsys) tables, C(captures) (each with files, ranks, steps, gpu_busy_pct, latest, cross_rank), C(cross_rank),
      C(nsys_summary) and C(profiler_tables) (file and the table's first lines).
  returned: always
  type: list
  elements: dict
baseline:
  description:
    - With O(baseline_host) - C(baseline_host), C(thresholds), C(hosts) (one comparison per other host, as
      trace_compare's fleet form returns, each with its C(line)), C(failures) (host-prefixed, one per limit exceeded)
      and C(error) (why there is no comparison, e.g. the baseline host has no capture; null otherwise). Null without
      O(baseline_host).
  returned: always
  type: dict
fleet:
  description: Whether the input was a capture root of several hosts.
  returned: always
  type: bool
errors:
  description: Inputs left out with O(on_error=skip), each message naming the file.
  returned: always
  type: list
  elements: str
report:
  description: Paths of the report files (written unless in check mode).
  returned: always
  type: dict
  sample:
    dir: /captures/h1/trace_summary
    json: /captures/h1/trace_summary/summary.json
    markdown: /captures/h1/trace_summary/summary.md
    html: /captures/h1/trace_summary/report.html
written:
  description: Report files that were written (or, in check mode, would be) because they were missing or different.
  returned: always
  type: list
  elements: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils._report import (
    headline,
    render_html,
    render_json,
    render_markdown,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace import TraceError, analyze
from ansible_collections.vllm_infra.profiling.plugins.module_utils._trace.compare import baseline_view, parse_thresholds

REPORT_FILES = (("json", "summary.json"), ("markdown", "summary.md"), ("html", "report.html"))


class TraceSummaryManager:
    """Analyse the input, render the report, write the files that differ."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        path = self.params["path"]
        if self.params["dest"]:
            self.dest = os.path.abspath(self.params["dest"])
        elif os.path.isdir(path):
            self.dest = os.path.join(os.path.abspath(path), "trace_summary")
        else:
            self.dest = os.path.join(os.path.dirname(os.path.abspath(path)), "trace_summary")

    def run(self) -> dict:
        if self.params["top"] < 1:
            self.module.fail_json(msg="top must be at least 1")
        limits = parse_thresholds(self.params["thresholds"])  # checked before the traces are read
        result = analyze(
            self.params["path"],
            top=self.params["top"],
            step_regex=self.params["step_regex"],
            on_error=self.params["on_error"],
            exclude=self.dest,
            fleet=self.params["fleet"],
        )
        baseline = self.params["baseline_host"]
        result["baseline"] = baseline_view(result, baseline, limits, self.params["top"]) if baseline else None
        paths = {key: os.path.join(self.dest, name) for key, name in REPORT_FILES}
        line = headline(result, paths["html"])
        result["headline"] = line
        contents = {
            "json": render_json(result),
            "markdown": render_markdown(result, self.params["top"]),
            "html": render_html(result),
        }
        written = [paths[key] for key in paths if self._differs(paths[key], contents[key])]
        if written and not self.check_mode:
            os.makedirs(self.dest, exist_ok=True)
            for key, target in paths.items():
                if target in written:
                    self._write(target, contents[key])
        result.update(
            changed=bool(written),
            report={"dir": self.dest, **paths},
            written=written,
        )
        return result

    @staticmethod
    def _differs(target: str, text: str) -> bool:
        try:
            with open(target, encoding="utf-8") as fh:
                return fh.read() != text
        except (OSError, UnicodeDecodeError):
            return True

    def _write(self, target: str, text: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".trace_summary.", dir=self.dest)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        self.module.atomic_move(tmp, target)


def main() -> None:
    argument_spec = dict(
        path=dict(type="path", required=True),
        dest=dict(type="path"),
        top=dict(type="int", default=15),
        step_regex=dict(type="str"),
        on_error=dict(type="str", default="fail", choices=["fail", "skip"]),
        fleet=dict(type="str", default="auto", choices=["auto", "always", "never"]),
        baseline_host=dict(type="str"),
        thresholds=dict(type="dict"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        result = TraceSummaryManager(module).run()
    except TraceError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or module.params['path']}: {exc.strerror or exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
