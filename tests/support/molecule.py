# SPDX-License-Identifier: GPL-3.0-or-later
"""The host-preparation molecule scenarios (molecule/host_prep_*), run for real: one test file each
(tests/integration/test_molecule_host_prep_*.py), so that the two run side by side in the parallel run.

Each scenario converges vllm_infra.profiling.nvidia_driver and .container_toolkit on a stand-in host
(real dnf with module streams or real apt, against signed stand-in repositories built by
tools/standin-repos/build.py), reruns it (idempotence: changed=0), verifies with testinfra, then
runs the lifecycle (toolkit bump and downgrade, stream/branch switches, bad inputs with their
messages, state: absent; on the RHEL stand-in also the RHEL 10 versionlock path) as its side
effect. What is real and what is a stand-in:

- real: dnf 4.14/libdnf 0.69 (RHEL 9's stack) with module metadata, rpm signature checks, apt with
  signed-by sources and an apt pin, podman 4.3.1 applying the CDI spec inside the host (nested,
  --privileged): the GPU-in-container check runs the role's own `podman run --device
  nvidia.com/gpu=all` there, not on the outer podman.
- stand-in: the RHEL 9 host (Debian userland presenting itself as RHEL 9.6), every NVIDIA package
  (real names, versions and dependencies; marker contents), nvidia-ctk (writes a cdiVersion 0.5.0
  spec for /dev/null-backed test devices) and the nvidia-smi of the check image. No GPU, no DKMS,
  no reboot, no SELinux, no subscription-manager.

Wall time per phase and the changed counts of the first and the second converge are printed and
written to tests/output/molecule-<scenario>.json.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

from . import output, podman

REPO = Path(__file__).resolve().parents[2]
OUTPUT = output.OUTPUT


def _load_builder() -> t.Any:
    """tools/standin-repos/build.py (not importable by name: "build" is also a PyPI package)."""
    spec = importlib.util.spec_from_file_location(
        "vllm_infra_standin_repos", REPO / "tools" / "standin-repos" / "build.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ANSI = re.compile(r"\x1b\[[0-9;]*m")
# "host_prep_rhel9 ➜ converge: Executing" (terminal) or "[host_prep_rhel9 > converge] Executing" (no colour)
ACTION = re.compile(r"\[?(host_prep_\w+)\s*(?:➜|>)\s*(\w+)\]?:?\s+(Executing|Executed: \w+)\s*$")
RECAP_HOST = re.compile(r"(vit-mol-\S+|localhost)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")
BAD_INPUT = re.compile(r"BAD INPUT OK \[([^\]]+)\]")
TESTINFRA = re.compile(r"=+ (\d+) passed")

SCENARIOS: dict[str, dict[str, t.Any]] = {
    "host_prep_rhel9": {
        "image": "vllm-infra-rhel9-standin",
        "container": "vit-mol-rhel9-{id}",
        "bad_inputs": {
            "unknown stream",
            "driver version missing from the repository",
            "toolkit version missing from the repository",
            "required CDI device missing",
            "CDI spec newer than podman reads",
        },
        "testinfra": 12,
    },
    "host_prep_debian12": {
        "image": "vllm-infra-debian12-gpuhost",
        "container": "vit-mol-debian12-{id}",
        "bad_inputs": {
            "unknown stream (branch)",
            "driver version missing from the repository",
            "toolkit version missing from the repository",
        },
        "testinfra": 10,
    },
}


def standin_repos() -> Path:
    """The stand-in repositories' web root (built once, cached by inputs hash; a second process waits for it)."""
    return _load_builder().ensure()


TIMEOUT_S = 1500


def run_scenario(scenario: str, www: Path, ephemeral: Path, run_id: str) -> dict[str, t.Any]:
    """`molecule test -s SCENARIO`, streamed: phase wall times, play recaps per phase, the log."""
    env = podman.env()
    env.update(
        VLLM_INFRA_STANDIN_REPOS=str(www),
        VLLM_INFRA_MOLECULE_ID=run_id,
        # molecule's state per run, so that concurrent runs of a scenario do not share it
        MOLECULE_EPHEMERAL_DIRECTORY=str(ephemeral),
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
        NO_COLOR="1",
    )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT / f"molecule-{scenario}.log"
    phases: dict[str, float] = {}
    recaps: dict[str, dict[str, int]] = {}
    started: dict[str, float] = {}
    current = ""
    lines: list[str] = []
    begin = time.monotonic()
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [str(Path(sys.executable).parent / "molecule"), "test", "-s", scenario],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc,
    ):
        assert proc.stdout is not None
        killer = threading.Timer(TIMEOUT_S, proc.kill)
        killer.start()
        for raw in proc.stdout:
            log.write(raw)
            line = ANSI.sub("", raw)
            lines.append(line)
            action = ACTION.search(line)
            if action and action.group(3) == "Executing":
                current = action.group(2)
                # destroy runs twice: keep them apart
                if current in started:
                    current = f"{current}_2"
                started[current] = time.monotonic()
            elif action and current and action.group(2) == current.removesuffix("_2") and current not in phases:
                # (the closing summary repeats "Executed" lines: only the first one after "Executing" counts)
                phases[current] = round(time.monotonic() - started[current], 1)
            recap = RECAP_HOST.search(line)
            if recap and current:
                recaps[current] = {
                    "ok": int(recap.group(2)),
                    "changed": int(recap.group(3)),
                    "failed": int(recap.group(5)),
                }
        rc = proc.wait()
        killer.cancel()
    text = "".join(lines)
    return {
        "scenario": scenario,
        "rc": rc,
        "wall_s": round(time.monotonic() - begin, 1),
        "phases_s": phases,
        "recaps": recaps,
        "bad_inputs": sorted(set(BAD_INPUT.findall(text))),
        "testinfra_passed": int(m.group(1)) if (m := TESTINFRA.search(text)) else 0,
        "log": str(log_path.relative_to(REPO)),
        "tail": "".join(lines[-60:]),
    }


def check_scenario(scenario: str, tmp_path: Path, record_property: t.Callable[[str, t.Any], None]) -> None:
    """Run ``molecule test -s scenario`` and check what it printed (converge, idempotence, testinfra, bad inputs)."""
    expected = SCENARIOS[scenario]
    podman.ensure_image(expected["image"])
    www = standin_repos()
    run_id = secrets.token_hex(4)
    try:
        result = run_scenario(scenario, www, tmp_path / "molecule", run_id)
    finally:
        # molecule destroys it, also after a failure; this covers a killed run
        podman.remove(expected["container"].format(id=run_id))
    output.record(f"molecule-{scenario}", **{key: value for key, value in result.items() if key != "tail"})
    converge, second = result["recaps"].get("converge", {}), result["recaps"].get("idempotence", {})
    summary = (
        f"{scenario}: {result['wall_s']} s (phases {result['phases_s']}); "
        f"converge changed={converge.get('changed')}, second run changed={second.get('changed')}; "
        f"testinfra {result['testinfra_passed']} passed; bad inputs {result['bad_inputs']}"
    )
    print(summary)
    record_property("molecule", summary)
    assert result["rc"] == 0, f"molecule test -s {scenario} failed (log: {result['log']}):\n{result['tail']}"
    assert converge.get("changed", 0) > 0, "the first converge changed nothing: it did not install anything"
    assert second.get("changed") == 0, f"second run not idempotent: {second}"
    assert result["testinfra_passed"] == expected["testinfra"], result["tail"]
    assert set(result["bad_inputs"]) == expected["bad_inputs"], result["bad_inputs"]
    assert "side_effect" in result["phases_s"], result["phases_s"]
