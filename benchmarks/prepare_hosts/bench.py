#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark playbooks/prepare_hosts.yml on a fleet of 8 STAND-IN hosts against 1 host, in one run.

Each round starts fresh stand-in hosts (tests/support/standin_fleet.py: privileged containers of the RHEL 9
stand-in image, or of both stand-in images with --mix, reached through the containers.podman.podman connection,
installing stand-in NVIDIA packages from signed local repositories), then times, one after the other:

  1 host   first run (installs everything), second run (idempotent: changes nothing)
  8 hosts  first run, second run

and reports the wall times and the ratios 8-host / 1-host (how well the fleet runs in parallel; ideal 1.0)
and second / first run (what an idempotent re-run costs).

A same-shape BASELINE runs after the two runs, on the same hosts through the same connection: a
playbook of as many plain tasks per host as prepare_hosts.yml ran there (`ansible.builtin.command: "true"` for
each task that ran, a skipped task for each skipped one, counted from that run's recap). Its 8-host / 1-host
ratio is what ansible, the podman connection and 8 hosts on these 2 cores cost by themselves; what
prepare_hosts.yml costs beyond it, per host, is the collection's own cost:
  own per host = (first-run wall - baseline wall) / hosts. Everything runs on this machine: the controller and
all hosts share its CPU cores, so the 8-host ratio measures the controller plus 8 hosts' dnf/apt on those
cores, not a network fleet. To tell the two apart, each run also reports the CPU seconds of the controller
side (ansible-playbook, its forks and their podman clients) and of the whole machine; when the machine's CPU
seconds approach cores x wall time, the run was CPU-bound.

  .venv/bin/python benchmarks/prepare_hosts/bench.py [--hosts 8] [--rounds 1] [--mix] [--forks 10]
                                                      [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from support import ansible, standin_fleet  # noqa: E402  (tests/support)


def machine_cpu_s() -> float:
    """CPU seconds this machine has spent (all cores, user + nice + system), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return (int(fields[0]) + int(fields[1]) + int(fields[2])) / os.sysconf("SC_CLK_TCK")


RECAP_SKIPPED = re.compile(r"^(\S+)\s+:\s+ok=(\d+).*?skipped=(\d+)", re.MULTILINE)


def task_shape(output: str) -> dict[str, tuple[int, int]]:
    """Per host, (tasks that ran, tasks skipped), from ansible-playbook's PLAY RECAP."""
    return {host: (int(ok), int(skipped)) for host, ok, skipped in RECAP_SKIPPED.findall(output)}


def baseline_playbook(path: Path, shape: dict[str, tuple[int, int]]) -> Path:
    """A playbook of the same shape as a run: per host, as many plain tasks as ran and as many skipped tasks
    as were skipped there (each host runs its own counts; hosts with fewer skip the rest, as prepare_hosts.yml
    skips its other platform's tasks)."""
    most_ran = max(ran for ran, _ in shape.values())
    most_skipped = max(skipped for _, skipped in shape.values())
    tasks = [
        {
            "name": f"Plain task {i}",
            "ansible.builtin.command": "true",
            "changed_when": False,
            "when": f"{i} < baseline_shape[inventory_hostname][0]",
        }
        for i in range(most_ran)
    ] + [
        {"name": f"Skipped task {i}", "ansible.builtin.debug": {"msg": "never"}, "when": False}
        for i in range(most_skipped)
    ]
    play = {
        "name": "Baseline of the same shape",
        "hosts": ",".join(shape),
        "gather_facts": False,
        "vars": {"baseline_shape": {host: list(counts) for host, counts in shape.items()}},
        "tasks": tasks,
    }
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    return path


def timed_run(
    inventory: Path, limit: str, forks: int, playbook: str = "playbooks/prepare_hosts.yml"
) -> tuple[dict[str, float], dict[str, dict[str, int]], str]:
    """Wall time; CPU of the controller side (ansible-playbook, its workers and their podman clients) and of
    the whole machine (the rest: the hosts' own work, and anything else running here)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = machine_cpu_s()
    started = time.monotonic()
    proc = ansible.run_playbook(
        playbook, None, "--limit", limit, "--forks", str(forks), inventory=inventory, **standin_fleet.ENV,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    controller = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    recap = ansible.recap(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"{playbook} failed on {limit}:\n{proc.stdout[-6000:]}")
    times = {"wall": elapsed, "controller_cpu": controller, "machine_cpu": machine_cpu_s() - machine}
    return times, recap, proc.stdout


def one_round(n_hosts: int, mix: bool, forks: int) -> dict[str, float]:
    kinds = {"single": "rhel9"}
    for i in range(n_hosts):
        kinds[f"fleet-{i}"] = "debian12" if mix and i % 2 else "rhel9"
    with standin_fleet.hosts(kinds) as names, tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        inventory = standin_fleet.write_inventory(Path(tmp) / "inventory.yml", standin_fleet.inventory(names))
        standin_fleet.prepare(inventory, kinds)
        fleet = ",".join(h for h in kinds if h != "single")
        out: dict[str, float] = {}
        for label, limit in (("one", "single"), ("fleet", fleet)):
            outputs: dict[str, str] = {}
            for run in ("first", "second", "baseline"):
                if run == "baseline":  # the first run's shape, on the same hosts
                    shape = {h: c for h, c in task_shape(outputs["first"]).items() if h in limit.split(",")}
                    playbook = str(baseline_playbook(Path(tmp) / f"baseline-{label}.yml", shape))
                    out[f"{label}_baseline_tasks"] = {h: list(c) for h, c in shape.items()}
                    times, recap, _ = timed_run(inventory, limit, forks, playbook)
                else:
                    times, recap, outputs[run] = timed_run(inventory, limit, forks)
                changed = sum(c["changed"] for h, c in recap.items() if h != "localhost")
                out[f"{label}_{run}_s"] = times["wall"]
                out[f"{label}_{run}_controller_cpu_s"] = times["controller_cpu"]
                out[f"{label}_{run}_machine_cpu_s"] = times["machine_cpu"]
                out[f"{label}_{run}_changed"] = changed
                print(
                    f"  {label:5} {run:8} run: {times['wall']:6.1f}s wall, CPU {times['controller_cpu']:6.1f}s"
                    f" controller / {times['machine_cpu']:6.1f}s machine (changed={changed})",
                    flush=True,
                )
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--mix", action="store_true", help="half of the fleet Debian 12, half RHEL 9 stand-ins")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tools" / "containers" / "containers.conf"))

    print(f"prepare_hosts.yml: 1 host vs {args.hosts} hosts, {args.rounds} round(s), {os.cpu_count()} CPU cores,"
          f" load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    rounds = []
    for index in range(args.rounds):
        print(f"round {index + 1}", flush=True)
        rounds.append(one_round(args.hosts, args.mix, args.forks))

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    result = {
        "hosts": args.hosts,
        "rounds": rounds,
        "fleet_vs_one_first": med("fleet_first_s") / med("one_first_s"),
        "fleet_vs_one_second": med("fleet_second_s") / med("one_second_s"),
        "second_vs_first_one": med("one_second_s") / med("one_first_s"),
        "second_vs_first_fleet": med("fleet_second_s") / med("fleet_first_s"),
    }
    print(
        f"\n{args.hosts} hosts / 1 host: first run {result['fleet_vs_one_first']:.2f}x,"
        f" second run {result['fleet_vs_one_second']:.2f}x"
    )
    print(
        f"second run / first run: 1 host {result['second_vs_first_one']:.2f}x,"
        f" {args.hosts} hosts {result['second_vs_first_fleet']:.2f}x"
    )
    # The same-shape baseline: what 8 hosts cost by themselves here, and the collection's own cost per host.
    result["baseline_fleet_vs_one"] = med("fleet_baseline_s") / med("one_baseline_s")
    own_one = med("one_first_s") - med("one_baseline_s")
    own_fleet = (med("fleet_first_s") - med("fleet_baseline_s")) / args.hosts
    result["own_per_host_one_s"] = own_one
    result["own_per_host_fleet_s"] = own_fleet
    result["own_fleet_vs_one"] = (med("fleet_first_s") - med("fleet_baseline_s")) / own_one
    print(
        f"same-shape baseline ({sum(c[0] for c in rounds[-1]['one_baseline_tasks'].values())} plain tasks on 1 host):"
        f" {args.hosts} hosts / 1 host {result['baseline_fleet_vs_one']:.2f}x;"
        f" prepare_hosts.yml beyond it: {own_one:.1f}s on 1 host, {own_fleet:.1f}s per host on {args.hosts}"
        f" ({result['own_fleet_vs_one']:.2f}x the 1-host figure for {args.hosts} hosts' worth of work)"
    )
    cores = os.cpu_count() or 1
    for label in ("one", "fleet"):
        busy = med(f"{label}_first_machine_cpu_s") / (cores * med(f"{label}_first_s"))
        share = med(f"{label}_first_controller_cpu_s") / med(f"{label}_first_machine_cpu_s")
        result[f"{label}_first_machine_busy"] = busy
        result[f"{label}_first_controller_share"] = share
        print(f"{label} first run: machine {busy:.0%} busy, controller side {share:.0%} of its CPU")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
