# SPDX-License-Identifier: GPL-3.0-or-later
"""The vllm_profile role end to end, as a user runs it: ansible-playbook against localhost.

Real podman runs the harness's real vLLM CPU image (localhost/vllm-cpu-tiny); the role launches it with the
torch profiler on, captures 10 tokens through vllm_profiler_session, fetches and summarises the trace.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest
import requests
import yaml
from support import ansible, podman
from support.traces import engine_steps
from support.vllm import shared_cache_dir

pytestmark = [pytest.mark.podman, pytest.mark.vllm]

PLAYBOOK = "playbooks/profile_torch.yml"
HF_TOKEN = "hf_vllmInfraTestToken0123456789abcdef"
API_KEY = "sk-vllm-infra-test-key-0123456789"


def demo_vars(tmp: Path, **overrides):
    """The README demo's variables, with this test's own container name, port and directories."""
    base = yaml.safe_load((ansible.REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
    base.update(
        {
            "vllm_profile_container_name": podman.unique_name("role"),
            "vllm_profile_port": podman.free_port(),
            "vllm_profile_dest": str(tmp / "captures"),
            "vllm_profile_capture_dir_host": str(tmp / "traces"),
            "vllm_profile_cache_dir": shared_cache_dir(base["vllm_profile_image"]),
            "vllm_profile_prompts": ["What is the capital of France?"],
        }
    )
    base.update(overrides)
    return base


def cleanup(variables) -> None:
    podman.remove_role_server(variables["vllm_profile_container_name"])


def task_status(output: str, task_fragment: str) -> list[str]:
    """The status lines (ok/changed/skipping/fatal) printed under each run of a task."""
    statuses = []
    for block in output.split("\nTASK [")[1:]:
        title, _ignored, body = block.partition("\n")
        if task_fragment in title:
            statuses += re.findall(r"^(ok|changed|skipping|fatal|failed): ", body, re.M)
    return statuses


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Run the playbook twice against one kept server: the second run must reuse it."""
    tmp = tmp_path_factory.mktemp("role")
    variables = demo_vars(
        tmp,
        vllm_profile_restore="keep",
        vllm_profile_hf_token=HF_TOKEN,
        vllm_profile_api_key=API_KEY,
    )
    name = variables["vllm_profile_container_name"]
    other = podman.unique_name("role-other")
    try:
        first = ansible.run_playbook(PLAYBOOK, {**variables, "vllm_profile_run_id": "run1"}, "-vvv")
        assert first.returncode == 0, first.stdout[-8000:]
        first_id = podman.inspect(name)["Id"]
        # Another server on this host stores other secrets in between (as the parallel test files do): its
        # fingerprints must not make this server's look changed (they once shared one file per secret kind,
        # and the second run recreated the container).
        playbook = tmp / "other_secrets.yml"
        playbook.write_text(OTHER_SECRETS_PLAYBOOK)
        stored = ansible.run_playbook(str(playbook), {"other": other})
        assert stored.returncode == 0, stored.stdout[-4000:]
        second = ansible.run_playbook(PLAYBOOK, {**variables, "vllm_profile_run_id": "run2"})
        assert second.returncode == 0, second.stdout[-8000:]
        inspect = podman.inspect(name)
        yield {"vars": variables, "first": first, "second": second, "first_id": first_id, "inspect": inspect}
    finally:
        cleanup(variables)
        podman.remove_role_server(other)


# The role's secret step alone, for another container name with other secrets.
OTHER_SECRETS_PLAYBOOK = """
- name: Another server's secrets on the same host
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the user
      ansible.builtin.setup:
        gather_subset: ["!all", "!min", user]
    - name: Store its secrets as the role does
      ansible.builtin.include_role:
        name: vllm_infra.profiling.vllm_profile
        tasks_from: secrets.yml
      vars:
        vllm_profile_container_name: "{{ other }}"
        vllm_profile_hf_token: hf_anotherServersToken0123456789
        vllm_profile_api_key: sk-another-servers-key-0123456789
"""


def test_trace_lands_on_the_controller_with_one_step_per_token(two_runs) -> None:
    variables = two_runs["vars"]
    host_dir = Path(variables["vllm_profile_dest"]) / "run1" / "localhost"
    workers = sorted(host_dir.glob("run1_rank0.*.pt.trace.json.gz"))
    frontends = sorted(host_dir.glob("run1_*.async_llm.*.pt.trace.json.gz"))
    assert len(workers) == 1, sorted(p.name for p in host_dir.iterdir())
    assert len(frontends) == 1
    steps = engine_steps(workers[0])
    assert len(steps) == variables["vllm_profile_max_tokens"] == 10
    prefill = [s for s in steps if s[0]]
    assert len(prefill) == 1
    # The prefill step processed exactly the prompt's tokens (as the server counts them).
    url = f"http://127.0.0.1:{variables['vllm_profile_port']}"
    tokens = requests.post(
        f"{url}/tokenize",
        json={"model": "/models/tiny-qwen3", "prompt": variables["vllm_profile_prompts"][0]},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    ).json()["count"]
    assert prefill[0] == (tokens, 0)
    assert all(s == (0, 1) for s in steps if not s[0])
    # The summary report was written next to the traces, and the play printed where things landed.
    assert (host_dir / "report" / "summary.json").is_file()
    assert f"localhost: captured -> {host_dir}" in two_runs["first"].stdout


def test_second_run_reuses_the_container_and_writes_a_separate_trace(two_runs) -> None:
    assert two_runs["inspect"]["Id"] == two_runs["first_id"], "the serving container was recreated"
    assert task_status(two_runs["second"].stdout, "Run the vLLM server (profiler on)") == ["ok"]
    dest = Path(two_runs["vars"]["vllm_profile_dest"])
    first = {p.name for p in (dest / "run1" / "localhost").glob("*.pt.trace.json.gz")}
    second = {p.name for p in (dest / "run2" / "localhost").glob("*.pt.trace.json.gz")}
    assert len(second) == 2
    assert not first & second
    # On the host, one server wrote both runs, each into its own directory through the link `current`.
    host = Path(two_runs["vars"]["vllm_profile_capture_dir_host"])
    assert {p.name for p in (host / "run1").glob("*.pt.trace.json.gz")} == first
    assert {p.name for p in (host / "run2").glob("*.pt.trace.json.gz")} == second
    assert os.readlink(host / "current") == "run2"
    assert len(engine_steps(next((dest / "run2" / "localhost").glob("run2_rank0.*.gz")))) == 10


def test_secrets_stay_out_of_logs_and_inspect(two_runs) -> None:
    output = two_runs["first"].stdout + two_runs["first"].stderr
    assert "ESTABLISH LOCAL CONNECTION" in output, "the first run was not -vvv"
    for secret in (HF_TOKEN, API_KEY):
        assert secret not in output
        assert secret not in json.dumps(two_runs["inspect"])
    # ... yet the server has them: it refuses requests without the key, and the token file is readable by vLLM.
    url = f"http://127.0.0.1:{two_runs['vars']['vllm_profile_port']}"
    assert requests.get(f"{url}/v1/models", timeout=10).status_code == 401
    assert requests.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10).ok
    name = two_runs["vars"]["vllm_profile_container_name"]
    env = dict(item.split("=", 1) for item in two_runs["inspect"]["Config"]["Env"])
    # `podman exec` runs as the image's own user (1001 here; test_role_defaults.py does 2000:0).
    assert two_runs["inspect"]["Config"]["User"] == "1001"
    assert podman.run("exec", name, "cat", env["HF_TOKEN_PATH"]).stdout == HF_TOKEN


def test_missing_model_fails_with_the_log_tail_and_removes_the_container(tmp_path: Path) -> None:
    variables = demo_vars(tmp_path, vllm_profile_model="/models/does-not-exist", vllm_profile_restore="serve")
    try:
        run = ansible.run_playbook(PLAYBOOK, variables)
        assert run.returncode != 0
        # The state is podman's: "exited" once conmon's cleanup has run, "stopped" or "stopping" before it (under
        # load, the module can look in between). (On failure, the run's end: pytest's repr cuts the output
        # before the host's reason.)
        assert re.search(r"is (exited|stopped|stopping), not running: the server did not start", run.stdout), (
            run.stdout[-4000:]
        )
        assert "does-not-exist" in run.stdout  # from the container's log tail
        assert "localhost: failed" in run.stdout
        name = variables["vllm_profile_container_name"]
        assert podman.run("container", "exists", name, check=False).returncode == 1
    finally:
        cleanup(variables)


def test_port_in_use_fails_clearly(tmp_path: Path) -> None:
    variables = demo_vars(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", variables["vllm_profile_port"]))
        busy.listen()
        try:
            run = ansible.run_playbook(PLAYBOOK, variables)
        finally:
            cleanup(variables)
    assert run.returncode != 0
    assert "address already in use" in run.stdout.lower()
    assert "localhost: failed" in run.stdout


def test_env_era_switch_against_a_config_era_server_reports_404_with_the_right_switch(tmp_path: Path) -> None:
    """Force the environment-variable switch (vLLM < 0.13) on the real 0.32 image.

    The container definition carries VLLM_TORCH_PROFILER_DIR and no --profiler-config; vLLM 0.32 ignores the
    variable, so /start_profile answers 404 and the error names the switch this server needs.
    """
    variables = demo_vars(tmp_path, vllm_profile_switch="env", vllm_profile_vllm_version="0.12.0")
    variables["vllm_profile_restore"] = "keep"
    try:
        run = ansible.run_playbook(PLAYBOOK, variables)
        inspect = podman.inspect(variables["vllm_profile_container_name"])
    finally:
        cleanup(variables)
    assert run.returncode != 0
    env = dict(item.split("=", 1) for item in inspect["Config"]["Env"])
    assert env["VLLM_TORCH_PROFILER_DIR"] == "/vllm-profiles/current"  # the run link in the default container path
    assert env["VLLM_TORCH_PROFILER_WITH_STACK"] == "0"
    assert "--profiler-config" not in inspect["Config"]["Cmd"]
    # The module's reason, in the host's result: what the server answered and the switch it needs.
    output = " ".join(run.stdout.split())  # YAML folds long messages over lines
    assert "/start_profile answered 404: the profiler is off on this server. start vLLM 0.32.0 with" in output
    assert "--profiler-config" in output
    assert "VLLM_TORCH_PROFILER_* environment variables are ignored" in output
