#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark playbooks/prepare_hosts.yml on a fleet of 8 STAND-IN hosts against 1 host, in one run.

Each round starts fresh stand-in hosts (tests/support/standin_fleet.py: privileged containers of the RHEL 9
stand-in image, or of both stand-in images with --mix, reached through the containers.podman.podman connection,
installing stand-in NVIDIA packages from signed local repositories), then times, one after the other:

  1 host   first run (installs everything), second run (idempotent: changes nothing)
  8 hosts  first run, second run

and reports the wall times and the ratios 8-host / 1-host (how well the fleet runs in parallel; ideal 1.0)
and second / first run (what an idempotent re-run costs). Everything runs on this machine: the controller and
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
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from support import ansible, standin_fleet  # noqa: E402  (tests/support)


def machine_cpu_s() -> float:
    """CPU seconds this machine has spent (all cores, user + nice + system), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return (int(fields[0]) + int(fields[1]) + int(fields[2])) / os.sysconf("SC_CLK_TCK")


def timed_run(inventory: Path, limit: str, forks: int) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """Wall time; CPU of the controller side (ansible-playbook, its workers and their podman clients) and of
    the whole machine (the rest: the hosts' own work, and anything else running here)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = machine_cpu_s()
    started = time.monotonic()
    proc = ansible.run_playbook(
        "playbooks/prepare_hosts.yml", None, "--limit", limit, "--forks", str(forks), inventory=inventory,
        **standin_fleet.ENV,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    controller = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    recap = ansible.recap(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"prepare_hosts.yml failed on {limit}:\n{proc.stdout[-6000:]}")
    return {"wall": elapsed, "controller_cpu": controller, "machine_cpu": machine_cpu_s() - machine}, recap


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
            for run in ("first", "second"):
                times, recap = timed_run(inventory, limit, forks)
                changed = sum(c["changed"] for h, c in recap.items() if h != "localhost")
                out[f"{label}_{run}_s"] = times["wall"]
                out[f"{label}_{run}_controller_cpu_s"] = times["controller_cpu"]
                out[f"{label}_{run}_machine_cpu_s"] = times["machine_cpu"]
                out[f"{label}_{run}_changed"] = changed
                print(
                    f"  {label:5} {run:6} run: {times['wall']:6.1f}s wall, CPU {times['controller_cpu']:6.1f}s"
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
