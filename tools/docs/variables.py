#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Keep docs/variables.md's variable tables in step with the roles and playbooks.

The prose of docs/variables.md is written by hand; the tables between the markers
``<!-- BEGIN GENERATED: NAME -->`` and ``<!-- END GENERATED: NAME -->`` are generated here:

  playbooks         the fleet playbooks' own variables (PLAYBOOK_VARS below)
  <role>            every option of roles/<role>/meta/argument_specs.yml (entry point main), with its type,
                    choices, default and description

Every option of every role's argument spec (all entry points) must have a description of its own: a blank
one, or one that only repeats the option's name, fails both commands, naming each (ansible-doc -t role shows
these descriptions to users).

CLI: variables.py          rewrite docs/variables.md
     variables.py --check  exit 1 (and show a diff) when docs/variables.md is out of date
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "variables.md"
BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (\S+) -->\n).*?(<!-- END GENERATED: \2 -->)", re.S)

# The playbooks' own variables (not role options): name, type, default, choices, playbooks, description.
PLAYBOOK_VARS = [
    (
        "vllm_profile_hosts",
        "str",
        "vllm_hosts",
        None,
        "profile (profile_torch, profile_nsys), site, report",
        "Host pattern the profiling plays run on (a group name or any pattern, e.g. `gpu:&rhel9`).",
    ),
    (
        "vllm_prepare_hosts",
        "str",
        "the value of `vllm_profile_hosts`",
        None,
        "prepare_hosts, site",
        "Host pattern the preparation plays run on.",
    ),
    (
        "vllm_fleet_prepare",
        "bool",
        "true",
        None,
        "prepare_hosts, site",
        'Run the preparation (driver, toolkit). `false` (or the survey\'s string `"false"`): the hosts are ready; '
        "each is recorded as `skipped`.",
    ),
    (
        "vllm_fleet_max_fail_percentage",
        "int",
        "100",
        None,
        "prepare_hosts, site",
        "Stop the run after the preparation when more than this share of the hosts failed it (`max_fail_percentage` "
        "of the play that marks them failed). 100: never stop; 0: stop at the first failed host.",
    ),
    (
        "vllm_profile_run_id",
        "str",
        "the UTC time the run started, `%Y%m%dT%H%M%SZ`",
        None,
        "site (one id for the fleet), profile_* (one per play)",
        "Captures land in `<vllm_profile_dest>/<run_id>/<host>/`, the fleet report in "
        "`<vllm_profile_dest>/<run_id>/fleet-report/`.",
    ),
    (
        "vllm_profile_summarize",
        "bool",
        "true",
        None,
        "report",
        "Also controls the fleet report (trace_summary over the run's directory).",
    ),
    (
        "vllm_profile_summary_top",
        "int",
        "15",
        None,
        "report",
        "Rows in the top lists of the fleet report.",
    ),
    (
        "vllm_profile_baseline_host",
        "str",
        "'' (no comparison)",
        None,
        "report",
        "A host (its directory name under `<vllm_profile_dest>/<run_id>/`, its inventory name) the fleet report "
        "compares every other captured host with: step p50/p90, decode p50, kernel and compute time, communication "
        "share and GPU busy against the baseline's, one line per host in the play's output, a table in "
        "`fleet-report/summary.md` and `report.html`, and `baseline` in the job's artifacts (set_stats).",
    ),
    (
        "vllm_profile_baseline_thresholds",
        "dict",
        "trace_compare's: `step_p50_pct: 10`, `step_p90_pct: 20`, `kernel_time_pct: 10`, `compute_time_pct: 10`",
        None,
        "report",
        "Limits on each host's figures against the baseline host (the keys of trace_compare's `thresholds`: "
        "`*_pct` relative increases in percent, `communication_share_pts`, `gpu_busy_drop_pts`; null: not checked). "
        "Hosts over a limit are named in the report and its artifacts.",
    ),
    (
        "vllm_profile_baseline_gate",
        "bool",
        "false",
        None,
        "report",
        "Fail the report play when a host is over a limit of `vllm_profile_baseline_thresholds`, or the baseline "
        "host has no capture in the run (after the report and the artifacts are written). `false`: only report.",
    ),
]


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def ansible_markup(text: str) -> str:
    """C(x), O(x), M(x), V(x), P(x) -> `x`; I(x) -> *x* (x may hold balanced parentheses)."""
    out, pos = [], 0
    for match in re.finditer(r"\b([COMVPI])\(", text):
        if match.start() < pos:
            continue
        depth, end = 1, match.end()
        while end < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        if depth:
            continue
        inner = text[match.end() : end - 1]
        out.append(text[pos : match.start()] + (f"*{inner}*" if match.group(1) == "I" else f"`{inner}`"))
        pos = end
    return "".join(out) + text[pos:]


class UndescribedOptions(Exception):
    """Options whose description is blank or only their own name."""


def text_of(description: object) -> str:
    return " ".join(description) if isinstance(description, list) else str(description or "")


def name_only(name: str, description: str) -> bool:
    """Blank, or the name again (in any case, quoted or not, with or without a final full stop)."""
    words = re.sub(r"[`'\".:]", " ", description).split()
    return not words or [w.lower() for w in words] == [name.lower()]


def undescribed_options() -> list[str]:
    """``role entry_point option`` of every option without a description of its own, in all roles."""
    missing = []
    for spec_file in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
        for entry, spec in specs.items():
            missing.extend(
                f"{role} {entry} {name}"
                for name, option in (spec.get("options") or {}).items()
                if name_only(name, text_of(option.get("description")))
            )
    return missing


def show_default(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def role_table(role: str) -> str:
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    rows = ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for name, option in spec["main"].get("options", {}).items():
        description = text_of(option.get("description"))
        kind = option.get("type", "str")
        if option.get("elements"):
            kind += f" of {option['elements']}"
        if option.get("choices"):
            kind += ": " + ", ".join(f"`{c}`" for c in option["choices"])
        rows.append(
            f"| `{name}` | {cell(kind)} | {cell(show_default(option.get('default')))} "
            f"| {cell(ansible_markup(description))} |"
        )
    return "\n".join(rows) + "\n"


def playbook_table() -> str:
    rows = ["| variable | type | default | used by | description |", "| --- | --- | --- | --- | --- |"]
    for name, kind, default, choices, used_by, description in PLAYBOOK_VARS:
        shown = kind + (": " + ", ".join(f"`{c}`" for c in choices) if choices else "")
        rows.append(f"| `{name}` | {shown} | {cell(default)} | {used_by} | {cell(description)} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        body = playbook_table() if name == "playbooks" else role_table(name)
        return f"{match.group(1)}{body}{match.group(3)}"

    return BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    missing = undescribed_options()
    if missing:
        print(
            f"{len(missing)} role option(s) have no description of their own (blank, or only the name): write one "
            "in roles/<role>/meta/argument_specs.yml:\n  " + "\n  ".join(missing),
            file=sys.stderr,
        )
        return 1
    current = DOC.read_text()
    wanted = render(current)
    if args.check:
        if current != wanted:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(True), wanted.splitlines(True), "docs/variables.md", "generated"
                )
            )
            print("docs/variables.md is out of date: run tools/docs/variables.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
