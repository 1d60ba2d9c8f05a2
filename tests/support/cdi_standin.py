# SPDX-License-Identifier: GPL-3.0-or-later
"""A STAND-IN for NVIDIA's ``nvidia-ctk`` and small test CDI specs, for the cdi_devices tests.

The real nvidia-ctk needs an NVIDIA driver (NVML), which these machines lack. The stand-in only
implements ``nvidia-ctk cdi generate --output=PATH [--feature-flag=F ...]`` and ``--version``: it
copies a spec template (written by the test) to PATH, says on stderr that it is a stand-in, and
logs each call so tests can count runs. Specs made here are test specs, not NVIDIA output: a device
node mapped to /dev/null and an environment variable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

STANDIN_BANNER = "STAND-IN nvidia-ctk (vllm_infra.profiling tests, not NVIDIA's)"

_SCRIPT = """#!/bin/sh
# {banner}
TEMPLATE='{template}'
LOG='{log}'
echo "$*" >> "$LOG"
if [ "$1" = "--version" ]; then
  echo "NVIDIA Container Toolkit CLI version 0.0.0-standin"
  echo "{banner}"
  exit 0
fi
if [ "$1" != "cdi" ] || [ "$2" != "generate" ]; then
  echo "{banner}: only 'cdi generate' is implemented" >&2
  exit 2
fi
shift 2
out=""
for arg in "$@"; do
  case "$arg" in
    --output=*) out="${{arg#--output=}}" ;;
    --feature-flag=*) ;;
    *) echo "{banner}: unknown argument $arg" >&2; exit 2 ;;
  esac
done
if [ ! -f "$TEMPLATE" ]; then
  echo "{banner}: failed to initialize NVML: the test removed the spec template" >&2
  exit 1
fi
if [ -z "$out" ]; then cat "$TEMPLATE"; exit 0; fi
cp "$TEMPLATE" "$out"
echo "{banner}: wrote $out" >&2
"""


def write_standin(directory: Path) -> tuple[Path, Path, Path]:
    """Write the stand-in into ``directory``; returns (script, template, call log)."""
    directory.mkdir(parents=True, exist_ok=True)
    script, template, log = directory / "nvidia-ctk", directory / "spec-template.yaml", directory / "calls.log"
    script.write_text(_SCRIPT.format(banner=STANDIN_BANNER, template=template, log=log))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    log.write_text("")
    return script, template, log


def calls(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.strip()]


def make_spec(
    kind: str,
    *,
    cdi_version: str = "0.5.0",
    device: str = "gpu0",
    node: str = "/dev/vit-cdi-gpu0",
    env: str = "VIT_CDI_TEST=1",
    driver_version: str | None = None,
    lib_dir: str | None = None,
) -> str:
    """A small spec: one device whose node is /dev/null on the host, an env var, and optionally a
    driver-versioned ``libcuda.so.<driver_version>`` mount from ``lib_dir`` (to test staleness)."""
    lines = [
        f"cdiVersion: {cdi_version}",
        f"kind: {kind}",
        "devices:",
        f"  - name: {device}",
        "    containerEdits:",
        "      deviceNodes:",
        f"        - path: {node}",
        "          hostPath: /dev/null",
        "containerEdits:",
        "  env:",
        f"    - {env}",
    ]
    if driver_version and lib_dir:
        lib = os.path.join(lib_dir, f"libcuda.so.{driver_version}")
        lines += [
            "  mounts:",
            f"    - hostPath: {lib}",
            f"      containerPath: {lib}",
            "      options: [ro, nosuid, nodev, bind]",
        ]
    return "\n".join(lines) + "\n"
