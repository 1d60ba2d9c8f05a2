# SPDX-License-Identifier: GPL-3.0-or-later
"""The site job template run the way AWX runs a job: through ansible-runner, with a private data dir.

AWX's job template (docs/awx/job_templates.yml) names the project's playbook; its survey
(docs/awx/survey_site.json) turns the user's answers into extra vars: text and multiple-choice answers
are strings ("false", not false), integer answers are numbers, unanswered questions take their defaults.
This test builds exactly those extra vars, writes the private data dir AWX hands to ansible-runner
(inventory/, env/extravars, env/envvars), runs the real playbook from the project checkout, then reads
what AWX reads: the job status and rc, the per-host events, and the set_stats artifact of the stats event.

The three inventory hosts are three vLLM servers on this ONE machine (ansible_connection: local, each with its
own container name, port and directories), not three machines. One job shows what a fleet run must do when hosts
fail in different places, and that the others keep their results:
- awx-good captures: its trace is fetched and summarised, and the fleet report is written;
- awx-bad's server arguments are wrong on purpose (a host variable, as an inventory would hold it), so its server
  never starts;
- awx-killed's container is killed during its workload, after its profile started: the role stops what it
  started, removes the container, and the report says at which step the host failed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import ansible_runner
import pytest
import yaml
from support import ansible, awx, podman
from support.vllm import shared_cache_dir

pytestmark = [pytest.mark.podman, pytest.mark.vllm]

REPO = ansible.REPO


def test_site_job_through_ansible_runner(tmp_path: Path) -> None:
    podman.ensure_image("vllm-cpu-tiny")
    template = awx.job_template("playbooks/site.yml")
    dest = tmp_path / "captures"
    answers = {
        "vllm_fleet_prepare": "false",  # never prepare (install drivers on) this machine
        "vllm_profile_image": "localhost/vllm-cpu-tiny:0.32.0",
        "vllm_profile_model": "/models/tiny-qwen3",
        "vllm_profile_restore": "remove",
        "vllm_profile_max_tokens": "8",
        "vllm_profile_dest": str(dest),
        "vllm_profile_run_id": "awx-job-42",
    }
    extra_vars = awx.job_extra_vars(template, answers)
    assert extra_vars["vllm_profile_with_stack"] == "false" and extra_vars["vllm_profile_max_tokens"] == 8

    # The inventory, as AWX writes it: the CPU image's settings as group vars, the hosts' own settings.
    demo = yaml.safe_load((REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
    hosts = {}
    for host in ("awx-good", "awx-bad", "awx-killed"):
        hosts[host] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "vllm_profile_container_name": podman.unique_name(host),
            "vllm_profile_port": podman.free_port(),
            "vllm_profile_capture_dir_host": str(tmp_path / host / "traces"),
            "vllm_profile_cache_dir": shared_cache_dir(answers["vllm_profile_image"]),
        }
    hosts["awx-bad"]["vllm_profile_extra_args"] = [*demo["vllm_profile_extra_args"], "--no-such-vllm-flag"]
    # awx-killed's workload is long enough to be killed in the middle of it: 400 prompts (a host variable; the
    # survey's answers, extra vars, set the number of requests per prompt and the tokens for every host).
    hosts["awx-killed"]["vllm_profile_prompts"] = ["What is the capital of France?"] * 400
    private = tmp_path / "private"
    awx.write_private_data_dir(
        private,
        {"all": {"children": {"vllm_hosts": {"hosts": hosts, "vars": demo}}}},
        extra_vars,
        {k: v for k, v in ansible.env().items() if k.startswith(("ANSIBLE_", "CONTAINERS_"))},
    )
    stop, killed = threading.Event(), []
    killer = threading.Thread(
        target=kill_when_profiling,
        args=(hosts["awx-killed"]["vllm_profile_container_name"], stop, killed),
        daemon=True,
    )
    killer.start()
    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(REPO),
            playbook=template["playbook"],
            forks=template["forks"],
            ident="job-42",
            quiet=True,
            timeout=900,
        )
    finally:
        stop.set()
        killer.join(timeout=10)
        leftovers = [
            h
            for h, v in hosts.items()
            if podman.run("container", "exists", v["vllm_profile_container_name"], check=False).returncode == 0
        ]
        for host in hosts.values():
            podman.remove(host["vllm_profile_container_name"])
    events = list(runner.events)
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
    print(f"\nansible-runner: status {runner.status}, rc {runner.rc}")
    print(json.dumps({k: stats[k] for k in ("ok", "changed", "failures", "dark", "rescued")}, sort_keys=True))

    def host_events(host: str, event: str) -> list[dict]:
        return [e for e in events if e["event"] == event and e.get("event_data", {}).get("host") == host]

    # The report's one line per host: the items of its debug task, run on the controller.
    lines = {}
    for event in host_events("localhost", "runner_item_on_ok"):
        if event["event_data"]["task"] == "One line per host":
            host, _sep, line = event["event_data"]["res"]["msg"].partition(": ")
            lines[host] = line
    print("\n".join(f"report {host}: {line[:200]}" for host, line in sorted(lines.items())))

    # The job failed because two hosts did, as AWX shows it; the other host is fine.
    assert killed, f"awx-killed was never seen profiling:\n{runner.stdout.read()[-6000:]}"
    assert runner.status == "failed" and runner.rc == 2, runner.stdout.read()[-6000:]
    assert stats["failures"] == {"awx-bad": 1, "awx-killed": 1}, stats
    assert stats["dark"] == {}
    assert stats["ok"]["awx-good"] > 0 and "awx-good" not in stats["failures"]
    # Every container was removed by the role (restore: remove), the killed one and the one that never served too.
    assert leftovers == [], leftovers

    # Per-host events: awx-good's trace was fetched, the others failed inside the role (rescued, the host
    # restored), then got the end-of-run verdict with the reason.
    fetched = [e for e in host_events("awx-good", "runner_on_ok") if e["event_data"]["task"].startswith("Fetch")]
    assert fetched, "no fetch event for awx-good"
    assert not host_events("awx-good", "runner_on_failed")
    assert stats["rescued"] == {"awx-bad": 1, "awx-killed": 1}
    for host in ("awx-bad", "awx-killed"):
        failed = host_events(host, "runner_on_failed")
        print(f"{host} failed tasks:", [e["event_data"]["task"] for e in failed])
        assert len(failed) == 2 and failed[-1]["event_data"]["task"] == "Fail the host with the reason", failed
    reason = host_events("awx-bad", "runner_on_failed")[-1]["event_data"]["res"]["msg"]
    assert "no-such-vllm-flag" in reason, reason

    # The lines: awx-good captured (with where and what), the killed host failed during the capture, with why.
    run_dir = dest / "awx-job-42"
    assert lines["awx-good"].startswith(f"captured -> {run_dir / 'awx-good'} ("), lines
    assert lines["awx-killed"].startswith('failed at "Capture a PyTorch-profiler trace'), lines
    assert lines["awx-bad"].startswith("failed"), lines
    # One run directory for the job, holding awx-good's capture only.
    assert [p.name for p in dest.iterdir()] == ["awx-job-42"]
    for host in ("awx-bad", "awx-killed"):
        assert not list((run_dir / host).glob("*.pt.trace.json*")), host
    workers = sorted((run_dir / "awx-good").glob("*rank0*.pt.trace.json.gz"))
    assert len(workers) == 1, sorted(p.name for p in (run_dir / "awx-good").iterdir())
    # The fleet report compares the captured hosts (here: one).
    fleet = json.loads((run_dir / "fleet-report" / "summary.json").read_text())
    assert [h["host"] for h in fleet["hosts"]] == ["awx-good"], fleet.keys()
    assert fleet["hosts"][0]["summary"]["steps"]["decode_steps"] >= 1

    # The set_stats artifact: AWX shows it as the job's artifacts.
    artifact = stats["artifact_data"]["vllm_profile"]
    print(json.dumps(artifact, indent=1, sort_keys=True)[:3000])
    assert artifact["run_id"] == "awx-job-42"
    assert artifact["captured"] == ["awx-good"] and artifact["failed"] == ["awx-bad", "awx-killed"]
    good = artifact["hosts"]["awx-good"]
    assert good["status"] == "captured" and good["files"] >= 1 and good["headline"]
    assert Path(good["report"]).is_file() and Path(good["dest"]) == run_dir / "awx-good"
    for host in ("awx-bad", "awx-killed"):
        bad = artifact["hosts"][host]
        assert bad["status"] == "failed" and bad["error"] and bad["files"] == 0, bad
    assert Path(artifact["fleet_report"]).is_file()
    # ... and ansible-runner kept the job's record in the private data dir, as AWX collects it.
    job = private / "artifacts" / "job-42"
    assert (job / "rc").read_text().strip() == "2" and (job / "status").read_text().strip() == "failed"
    assert list((job / "job_events").glob("*.json"))


def kill_when_profiling(name: str, stop: threading.Event, killed: list[str], timeout: float = 600) -> None:
    """Kill the container once its server has started profiling (the workload is running)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        logs = podman.run("logs", name, check=False)
        # the access log line, not the route list vLLM prints at start-up
        if "POST /start_profile HTTP" in logs.stdout + logs.stderr:
            time.sleep(1)
            podman.run("kill", name, check=False)
            killed.append(name)
            return
        time.sleep(0.5)
