#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Keep docs/vllm-versions.md's version matrix in step with the code that picks the profiler switch.

The prose of docs/vllm-versions.md is written by hand; the table between
``<!-- BEGIN GENERATED: matrix -->`` and ``<!-- END GENERATED: matrix -->`` is generated here from
plugins/module_utils/_profiler.py: its ``BOUNDARIES`` (what changed in which release, read from the
source) and ``RELEASES`` (what ran here for real), with the columns "what the role sets" computed by
``profiler_switch()`` itself for the role's defaults.

CLI: vllm_versions.py          rewrite docs/vllm-versions.md
     vllm_versions.py --check  exit 1 (and show a diff) when docs/vllm-versions.md is out of date
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "vllm-versions.md"
BLOCK = re.compile(r"(<!-- BEGIN GENERATED: matrix -->\n).*?(<!-- END GENERATED: matrix -->)", re.S)
# The role's defaults for the torch options (roles/vllm_profile/defaults/main.yml) and its container path.
ROLE_OPTIONS = {"record_shapes": False, "with_memory": False, "with_stack": False, "with_flops": False}
ROLE_DIR = "/vllm-profiles"
EVIDENCE = {"run": "**run here**", "fails": "does not run here", "source": "source only"}


def load_profiler():
    """plugins/module_utils/_profiler.py is plain Python (no Ansible imports): load it by path."""
    path = REPO / "plugins" / "module_utils" / "_profiler.py"
    spec = importlib.util.spec_from_file_location("vllm_infra_profiler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sort_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def role_sets(profiler, version: str, with_stack: bool) -> str:
    try:
        switch = profiler.profiler_switch(version, ROLE_DIR, **{**ROLE_OPTIONS, "with_stack": with_stack})
    except profiler.ProfilerSwitchError as exc:
        return f"refused: {exc}"
    if switch["switch"] == "config":
        return f"`--profiler-config '{switch['args'][1]}'`"
    return "<br>".join(f"`{name}={value}`" for name, value in switch["env"].items())


def matrix(profiler) -> str:
    changes = {version: what for version, _key, what in profiler.BOUNDARIES}
    releases = {version: (evidence, note) for version, evidence, note in profiler.RELEASES}
    rows = [
        "| vLLM | era | `auto` picks | the role sets (its defaults: `vllm_profile_with_stack: false`) "
        "| new in this release (from source) | here |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for version in sorted(set(changes) | set(releases), key=sort_key):
        era = profiler.era(version)
        picks = profiler.profiler_switch(version, ROLE_DIR)["switch"]
        switches = {"env": "env", "transition": "env or config", "config": "config"}[era]
        evidence, note = releases.get(version, ("source", ""))
        here = EVIDENCE.get(evidence, "source only")
        if note:
            here += f": {note}"
        rows.append(
            f"| {version} | {era} (`{switches}`) | `{picks}` | {cell(role_sets(profiler, version, False))} "
            f"| {cell(changes.get(version, ''))} | {cell(here)} |"
        )
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    body = matrix(load_profiler())
    return BLOCK.sub(lambda match: f"{match.group(1)}{body}{match.group(2)}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    current = DOC.read_text()
    wanted = render(current)
    if args.check:
        if current != wanted:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(True), wanted.splitlines(True), "docs/vllm-versions.md", "generated"
                )
            )
            print("docs/vllm-versions.md is out of date: run tools/docs/vllm_versions.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
