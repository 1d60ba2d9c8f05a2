# SPDX-License-Identifier: GPL-3.0-or-later
"""The vllm_profile role against two real vLLM servers of different profiler eras.

localhost/vllm-cpu-env:0.14.1 (tools/images/vllm-cpu-env) is a real vLLM 0.14.1 that still reads the
environment variables (VLLM_TORCH_PROFILER_DIR and friends), running as user 2000 group 0 like vLLM's own
images; it stands in for the guide's RHAIIS 3.2.1 (vLLM 0.10.1.1, which cannot run here: its vllm/_C needs
GLIBCXX_3.4.32; docs/vllm-versions.md). What still differs from that image: 0.14.1 also accepts
--profiler-config (so the role's `auto` picks it there; 0.10.1.1 has only the variables), its trace and
table names carry `-rank-N` / `_N` (0.10.1.1 names the trace after host and pid), and it runs on the CPU.
localhost/vllm-cpu-tiny:0.32.0 takes only --profiler-config.

The role runs with its defaults and the README's CPU swap (image, model, devices, the tiny server's extra
arguments), as tests/integration/test_vllm_profile_role.py does; only names, ports and directories are
this test's own, and the switch and stack options where a test is about them.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
import yaml
from support import ansible, podman
from support.traces import engine_steps
from support.vllm import shared_cache_dir

pytestmark = [pytest.mark.podman, pytest.mark.vllm]

PLAYBOOK = "playbooks/profile_torch.yml"
ENV_IMAGE = podman.images.IMAGES["vllm-cpu-env"].ref
CONFIG_IMAGE = podman.images.IMAGES["vllm-cpu-tiny"].ref
ENV_OPTIONS = (
    "VLLM_TORCH_PROFILER_RECORD_SHAPES",
    "VLLM_TORCH_PROFILER_WITH_PROFILE_MEMORY",
    "VLLM_TORCH_PROFILER_WITH_STACK",
    "VLLM_TORCH_PROFILER_WITH_FLOPS",
)


def host_vars(tmp: Path, image: str, dest: Path, **overrides):
    """The README demo's variables for one host, with this test's own container name, port and directories
    (``dest``: the controller's directory, shared by the hosts of one run; each gets <dest>/<run id>/<host>)."""
    base = yaml.safe_load((ansible.REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
    base.update(
        {
            "vllm_profile_image": image,
            "vllm_profile_container_name": podman.unique_name("envera"),
            "vllm_profile_port": podman.free_port(),
            "vllm_profile_dest": str(dest),
            "vllm_profile_capture_dir_host": str(tmp / "traces"),
            "vllm_profile_cache_dir": shared_cache_dir(image),
            # Keep the profiling container, to read its definition; the fixtures remove it.
            "vllm_profile_restore": "keep",
        }
    )
    # Measured: 0.14.1 with PyPI's CUDA torch is ready in ~55 s on an idle 2-core machine but took
    # 220-280 s with the machine's other work (load 13-16); with both servers starting side by side (the
    # `auto` run) each of them went past the demo's 300 s. The role's own default is 1200 s.
    base["vllm_profile_ready_timeout"] = 900
    if image == ENV_IMAGE:
        # Part of the CPU swap: vLLM 0.14.1's CPU sampler (forward_cpu) torch.compiles its random sampling at the
        # first request, which costs ~14 CPU-s per server here (measured: 14.4 CPU-s, then 0.3 with dynamo off); on
        # a GPU vLLM takes forward_cuda and compiles nothing there, and --enforce-eager compiles no model graph.
        base["vllm_profile_env"] = {"TORCHDYNAMO_DISABLE": "1"}
    base.update(overrides)
    return base


def run_hosts(tmp: Path, hosts: dict[str, dict], run_id: str, *args: str):
    """One ansible-playbook run over the given inventory hosts (all on this machine)."""
    inventory = tmp / f"inventory-{run_id}.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "vllm_hosts": {
                            "hosts": {
                                name: {
                                    "ansible_connection": "local",
                                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                                    **variables,
                                }
                                for name, variables in hosts.items()
                            }
                        }
                    }
                }
            }
        )
    )
    # JSON results (ansible.cfg prints YAML), to read the capture's timings from the -v output.
    run = ansible.run_playbook(
        PLAYBOOK,
        {"vllm_profile_run_id": run_id},
        *args,
        inventory=inventory,
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    (tmp / f"{run_id}.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"the whole output: {tmp / f'{run_id}.log'}\n{run.stdout[-8000:]}"
    return run


def python_events(trace_path: Path) -> int:
    """Events that only Python stack capture writes (``python_function``)."""
    with gzip.open(trace_path, "rt") as fh:
        trace = json.load(fh)
    return sum(1 for event in trace["traceEvents"] if event.get("cat") == "python_function")


def definition(name: str) -> dict:
    """The container's definition (podman inspect) and the environment PID 1 really has."""
    inspect = podman.inspect(name)
    environ = podman.run("exec", name, "cat", "/proc/1/environ").stdout
    return {
        "inspect": inspect,
        "env": dict(item.split("=", 1) for item in inspect["Config"]["Env"]),
        "cmd": inspect["Config"]["Cmd"],
        "proc_env": dict(item.split("=", 1) for item in environ.split("\0") if "=" in item),
        "user": podman.run("exec", name, "id").stdout.strip(),
    }


def capture_timings(output: str, host: str) -> dict:
    """The module's timings for one host, from the -v output of the capture task (one JSON line)."""
    block = output.split("TASK [vllm_infra.profiling.vllm_profile : Capture a PyTorch-profiler trace")[1]
    match = re.search(rf"^changed: \[{re.escape(host)}\] => (\{{.*\}})$", block, re.M)
    assert match, block[:3000]
    return json.loads(match.group(1))["timings"]


def host_dir(variables: dict, run_id: str, host: str) -> Path:
    return Path(variables["vllm_profile_dest"]) / run_id / host


def worker_trace(directory: Path) -> Path:
    workers = [p for p in directory.glob("*.pt.trace.json.gz") if ".async_llm." not in p.name]
    assert len(workers) == 1, sorted(p.name for p in directory.iterdir())
    return workers[0]


@pytest.fixture(scope="module")
def auto_pair(tmp_path_factory):
    """Both servers, `vllm_profile_switch: auto` (the default), captured in one run of the role. The 0.14.1
    host also asks for Python stacks (`vllm_profile_with_stack: true`): its trace is the stack-on side of the
    stack test, whose stack-off side is the env-switch run (one 0.14.1 start fewer than a run per side)."""
    tmp = tmp_path_factory.mktemp("auto")
    hosts = {
        "vllm-0.32": host_vars(tmp / "h032", CONFIG_IMAGE, tmp / "captures"),
        "vllm-0.14": host_vars(tmp / "h014", ENV_IMAGE, tmp / "captures", vllm_profile_with_stack=True),
    }
    try:
        run = run_hosts(tmp, hosts, "auto", "-v")
        defs = {host: definition(v["vllm_profile_container_name"]) for host, v in hosts.items()}
        yield {"hosts": hosts, "run": run, "defs": defs}
    finally:
        for variables in hosts.values():
            podman.remove(variables["vllm_profile_container_name"])


@pytest.fixture(scope="module")
def env_run(tmp_path_factory):
    """The env-era server with the environment-variable switch forced and the role's default stack setting
    (off), which this era's own default (on) must not win over."""
    tmp = tmp_path_factory.mktemp("env")
    variables = host_vars(tmp / "env", ENV_IMAGE, tmp / "captures", vllm_profile_switch="env")
    try:
        run = run_hosts(tmp, {"vllm-0.14": variables}, "env", "-v")
        return {"vars": variables, "run": run, "def": definition(variables["vllm_profile_container_name"])}
    finally:
        podman.remove(variables["vllm_profile_container_name"])


def test_one_run_captures_both_eras_with_auto(auto_pair) -> None:
    run = auto_pair["run"]
    for host, variables in auto_pair["hosts"].items():
        directory = host_dir(variables, "auto", host)
        steps = engine_steps(worker_trace(directory))
        assert len(steps) == variables["vllm_profile_max_tokens"] == 10, (host, steps)
        assert len([s for s in steps if s[0]]) == 1  # one prefill, then one decode step per token
        assert (directory / "report" / "summary.json").is_file()
        assert f"{host}: captured -> {directory}" in run.stdout
        print(f"{host}: {len(steps)} engine steps captured -> {directory}")
    # 0.14.1 names its trace `<instance>-rank-0.<ts>` and rewrites `profiler_out_0.txt` at every capture;
    # 0.32 names them after the run id (its /start_profile takes a prefix).
    env_dir = host_dir(auto_pair["hosts"]["vllm-0.14"], "auto", "vllm-0.14")
    assert re.fullmatch(r"\d+-rank-0\.\d+\.pt\.trace\.json\.gz", worker_trace(env_dir).name)
    assert (env_dir / "profiler_out_0.txt").read_text().lstrip().startswith("---")
    config_dir = host_dir(auto_pair["hosts"]["vllm-0.32"], "auto", "vllm-0.32")
    assert worker_trace(config_dir).name.startswith("auto_rank0.")
    assert (config_dir / "auto_rank0.profiler_out.txt").is_file()
    # The fleet report of the run compares the two servers.
    fleet = json.loads((config_dir.parent / "fleet-report" / "summary.json").read_text())
    assert sorted(h["host"] for h in fleet["hosts"]) == ["vllm-0.14", "vllm-0.32"], fleet.keys()
    assert all(h["summary"]["steps"]["decode_steps"] == 9 for h in fleet["hosts"])


def test_auto_picks_the_switch_each_version_reads(auto_pair) -> None:
    """0.32 takes only --profiler-config; 0.14.1 reads both, and auto prefers the one that stays."""
    for host, version in (("vllm-0.32", "0.32.0"), ("vllm-0.14", "0.14.1")):
        d = auto_pair["defs"][host]
        assert f'"vllm_version": "{version}"' in auto_pair["run"].stdout
        flag = d["cmd"].index("--profiler-config")
        config = json.loads(d["cmd"][flag + 1])
        assert config == {
            "profiler": "torch",
            "torch_profiler_dir": "/vllm-profiles/current",  # the link each capture points at its run
            "torch_profiler_record_shapes": False,
            "torch_profiler_with_memory": False,
            "torch_profiler_with_stack": host == "vllm-0.14",  # the one host that asks for stacks
            "torch_profiler_with_flops": False,
        }
        assert not [k for k in d["proc_env"] if k.startswith("VLLM_TORCH_")], d["proc_env"]
        print(f"{host} ({version}) auto: Cmd {d['cmd'][flag : flag + 2]}")
    # Run as the image's own user: vLLM's images' 2000 with group 0; the harness's 0.32 image 1001.
    assert auto_pair["defs"]["vllm-0.14"]["user"].startswith("uid=2000(vllm) gid=0(root)")


def test_env_switch_sets_only_the_variables_in_the_real_container(env_run, auto_pair) -> None:
    d = env_run["def"]
    assert "--profiler-config" not in d["cmd"], d["cmd"]
    wanted = {
        "VLLM_TORCH_PROFILER_DIR": "/vllm-profiles/current",
        "VLLM_TORCH_PROFILER_RECORD_SHAPES": "0",
        "VLLM_TORCH_PROFILER_WITH_PROFILE_MEMORY": "0",
        "VLLM_TORCH_PROFILER_WITH_STACK": "0",  # written out: this era's own default is on
        "VLLM_TORCH_PROFILER_WITH_FLOPS": "0",
    }
    # The definition (podman inspect) and the environment vLLM's PID 1 really has agree.
    for source in ("env", "proc_env"):
        got = {k: v for k, v in d[source].items() if k.startswith("VLLM_TORCH_")}
        assert got == wanted, (source, got)
    print("vllm-0.14 env: " + " ".join(f"{k}={v}" for k, v in sorted(wanted.items())))
    # Side by side with the 0.32 server of the auto run: different switches for the same role variables.
    config_cmd = auto_pair["defs"]["vllm-0.32"]["cmd"]
    assert "--profiler-config" in config_cmd
    assert "VLLM_TORCH_PROFILER_DIR" not in auto_pair["defs"]["vllm-0.32"]["env"]


def test_stack_capture_follows_the_role_on_both_switches(env_run, auto_pair) -> None:
    """One step per token through the env switch; `vllm_profile_with_stack` really turns 0.14.1's stack
    capture off (env switch, the role's default) and on (auto, so --profiler-config)."""
    runs = {
        "env, stack off": (env_run["vars"], "env", env_run["run"]),
        "auto, stack on": (auto_pair["hosts"]["vllm-0.14"], "auto", auto_pair["run"]),
    }
    sizes = {}
    for label, (variables, run_id, run) in runs.items():
        directory = host_dir(variables, run_id, "vllm-0.14")
        trace = worker_trace(directory)
        steps = engine_steps(trace)
        assert len(steps) == variables["vllm_profile_max_tokens"] == 10, (label, steps)
        assert (directory / "profiler_out_0.txt").is_file()
        assert (directory / "report" / "summary.json").is_file()
        timings = capture_timings(run.stdout, "vllm-0.14")
        sizes[label] = (trace.stat().st_size, python_events(trace))
        print(
            f"vllm-0.14 {label}: {trace.name} {trace.stat().st_size} bytes, "
            f"{sizes[label][1]} python_function events, stop {timings['stop']:.2f}s + flush {timings['flush']:.2f}s"
        )
    assert sizes["env, stack off"][1] == 0
    assert sizes["auto, stack on"][1] > 0
    assert sizes["auto, stack on"][0] > 3 * sizes["env, stack off"][0]  # measured: 490 kB vs 99 kB
