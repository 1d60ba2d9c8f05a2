# SPDX-License-Identifier: GPL-3.0-or-later
"""What a fetched vLLM worker trace holds, read the plain way (json.load), for tests to assert on."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

# One user annotation per engine step: execute_context_<n>(<tokens>)_generation_<n>(<tokens>).
STEP = re.compile(r"^execute_context_(\d+)\((\d+)\)_generation_(\d+)\((\d+)\)$")


def engine_steps(trace_path: Path) -> list[tuple[int, int]]:
    """(context tokens, generation tokens) of each working engine step; empty (0, 0) steps left out."""
    with gzip.open(trace_path, "rt") as fh:
        trace = json.load(fh)
    steps = []
    for event in trace["traceEvents"]:
        match = STEP.match(event.get("name", ""))
        if match:
            steps.append((int(match.group(2)), int(match.group(4))))
    return [s for s in steps if s != (0, 0)]
