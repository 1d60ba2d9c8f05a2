# SPDX-License-Identifier: GPL-3.0-or-later
"""Nsight Systems capture end to end, for real: a real nsys (Debian's non-free nsight-systems 2022.4.2) in
an image built by the real nsys_image_build module through ansible-playbook from the harness's real vLLM
CPU image, the real server profiled under it, stopped with SIGINT, the report summarised by real
`nsys stats` and fetched to the controller.

CPU limits (environment.md): `--trace=osrt,nvtx --sample=none` (CPU sampling needs perf_event_open, blocked
by the containers' seccomp profile). The capture-window variant (cudaProfilerApi) writes no report without
CUDA: it is checked at the level of the generated image and container definition only (GPU only).

Signals: the container runs with podman's `--init` (catatonit) as PID 1; the image's STOPSIGNAL is SIGINT.
`podman kill --signal SIGINT` (and `podman stop`) reach catatonit, which forwards the signal to its child,
nsys; nsys ends the server (SIGTERM to its process group), writes the report, exits 0. (nsys as PID 1
without --init also worked with 2022.4; --init is kept because it reaps nsys's orphaned agent process and
is how the role launches every server.)

The capture runs the role's main entry point in nsys mode (build or reuse, launch, workload, SIGINT stop,
nsys stats, fetch, trace_summary, restore). The apt downloads are cached in $VLLM_INFRA_CACHE/apt-nsys.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
import typing as t
from pathlib import Path

import pytest
import yaml
from support import ansible, output, podman
from support.vllm import shared_cache_dir

pytestmark = [pytest.mark.podman, pytest.mark.vllm]

sys.path.insert(0, str(ansible.REPO / "tools" / "harness"))
import images as harness  # noqa: E402  (tools/harness/images.py)

VLLM_TINY = "localhost/vllm-cpu-tiny:0.32.0"
DEBIAN = "localhost/vllm-infra-debian12:latest"
# Debian 12's nsight-systems lives in non-free; its libcuda1 alternative needs contrib too. The symlink
# makes the host part (QdstrmImporter) findable, or nsys leaves only a .qdstrm (environment.md).
DEBIAN_NSYS = {
    "method": "packages",
    "pre_commands": ["sed -i 's/ main$/ main contrib non-free/' /etc/apt/sources.list"],
    "packages": ["nsight-systems", "nsight-systems-target"],
    "commands": ["ln -sfn ../../nsight-systems/host-linux-x64 /usr/lib/x86_64-linux-gnu/nsight-systems/host-linux-x64"],
}
CPU_PROFILE = {"trace": ["osrt", "nvtx"], "sample": "none", "report_dir": "/vllm-profiles"}

BUILD_PLAYBOOK = """
- name: Run nsys_image_build once and keep its result
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Build
      vllm_infra.profiling.nsys_image_build: "{{ nsys_args }}"
      register: nsys_result
      ignore_errors: true
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ nsys_result | to_json }}"
        dest: "{{ result_file }}"
        mode: "0644"
      check_mode: false
      changed_when: false
"""

# The nsys mode of role vllm_profile, as a user runs it; the files it returns are kept for the assertions.
CAPTURE_PLAYBOOK = """
- name: nsys mode of vllm_profile, through the role's main entry point
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Profile with Nsight Systems
      ansible.builtin.include_role:
        name: vllm_infra.profiling.vllm_profile
      vars:
        vllm_profile_mode: nsys
        vllm_profile_restore: remove
    - name: Keep the build result
      ansible.builtin.copy:
        content: "{{ __vllm_profile_nsys_build | to_json }}"
        dest: "{{ result_dir }}/build.json"
        mode: "0644"
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ vllm_profile_result | to_json }}"
        dest: "{{ result_dir }}/result.json"
        mode: "0644"
"""

STATS_AGAIN_PLAYBOOK = """
- name: nsys_report on a report already summarised
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Summarise again
      vllm_infra.profiling.nsys_report:
        path: "{{ report }}"
        nsys_image: "{{ image }}"
"""

STOP_PLAYBOOK = """
- name: Stop an nsys container the role's way
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Stop
      ansible.builtin.include_role: {name: vllm_infra.profiling.vllm_profile, tasks_from: stop_nsys_container.yml}
"""


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def apt_cache() -> Path:
    path = harness.cache_dir() / "apt-nsys"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build(tmp: Path, check: bool = False, **args: t.Any) -> tuple[dict[str, t.Any], float]:
    """nsys_image_build through ansible-playbook; its registered result and the playbook's wall time."""
    result_file = tmp / "build-result.json"
    result_file.unlink(missing_ok=True)
    playbook = write(tmp, "build.yml", BUILD_PLAYBOOK)
    start = time.monotonic()
    proc = ansible.run_playbook(
        playbook,
        {"nsys_args": args, "result_file": str(result_file)},
        *(["--check", "--diff"] if check else []),
        timeout=1200,
    )
    seconds = round(time.monotonic() - start, 1)
    assert result_file.is_file(), proc.stdout[-4000:] + proc.stderr[-2000:]
    result = json.loads(result_file.read_text())
    result["_recap"] = ansible.recap(proc.stdout).get("localhost")
    return result, seconds


def image_id(ref: str) -> str | None:
    proc = podman.run("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def nsys_image(tmp_path_factory) -> t.Iterator[dict[str, t.Any]]:
    """Build the real nsys image from a base reference this test owns: cold, again, with a changed flag and
    back; after the image behind the base reference changed, in check mode (what a real run would decide:
    rebuilding is what the flag change already did for real, and a real rebuild on a new base reinstalls nsys,
    ~35 s). Yields what was seen."""
    podman.ensure_image("vllm-cpu-tiny")
    tmp = tmp_path_factory.mktemp("nsys-build")
    base = f"localhost/{podman.unique_name('nsys-base')}:latest"
    name = f"localhost/{podman.unique_name('nsys')}:latest"
    made: list[str] = [base, name]
    podman.run("tag", VLLM_TINY, base)
    volumes = [f"{apt_cache()}:/var/cache/apt/archives"]
    args = {"name": name, "base_image": base, "install": DEBIAN_NSYS, "profile": CPU_PROFILE, "build_volumes": volumes}
    seen: dict[str, t.Any] = {"name": name, "base": base, "args": args, "tmp": tmp}
    try:
        seen["predicted"], _ignored = build(tmp, check=True, **args)
        seen["first"], seen["first_s"] = build(tmp, **args)
        seen["again"], seen["again_s"] = build(tmp, **args)
        flag = {**args, "profile": {**CPU_PROFILE, "cuda_graph_trace": "graph"}}
        seen["flag"], seen["flag_s"] = build(tmp, **flag)
        # Back to the first flags: the layers of the first build serve it, and the captures below reuse it.
        seen["back"], seen["back_s"] = build(tmp, **args)
        # A trivial derived base under the same reference: a label changes, so does its image id.
        (tmp / "Containerfile").write_text(f"FROM {VLLM_TINY}\nLABEL vit.nsys.base.revision=2\n")
        podman.run("build", "--tag", base, str(tmp))
        seen["rebased"], _ignored = build(tmp, check=True, **args)
        podman.run("tag", VLLM_TINY, base)
        made += [seen[k]["image_id"] for k in ("first", "flag") if seen[k].get("image_id")]
        output.record(
            "nsys_e2e",
            build_first_s=seen["first_s"],
            build_noop_s=seen["again_s"],
            build_flag_s=seen["flag_s"],
            build_back_s=seen["back_s"],
        )
        yield seen
    finally:
        for ref in reversed(made):
            podman.run("rmi", "--force", ref, check=False)


def test_build_is_idempotent_and_rebuilds_on_a_changed_flag_or_base(nsys_image: dict[str, t.Any]) -> None:
    predicted, first, again = nsys_image["predicted"], nsys_image["first"], nsys_image["again"]
    assert predicted["changed"] is True and predicted["built"] is True and predicted["image_id"] is None
    assert first["changed"] is True and first["built"] is True and not first.get("failed"), first
    assert first["hash"] == predicted["hash"] and first["_recap"]["changed"] == 1
    assert (again["changed"], again["built"], again["reason"]) == (False, False, "up to date")
    assert again["image_id"] == first["image_id"] and again["_recap"]["changed"] == 0

    flag = nsys_image["flag"]
    assert flag["changed"] is True and flag["reason"] == "Containerfile changed"
    assert "--cuda-graph-trace=graph" in flag["entrypoint"] and flag["image_id"] != first["image_id"]

    back = nsys_image["back"]
    assert back["changed"] is True and back["reason"] == "Containerfile changed" and back["hash"] == first["hash"]

    rebased = nsys_image["rebased"]  # check mode
    assert rebased["changed"] is True and rebased["reason"] == "base image changed"
    assert rebased["base_image"]["id"] != first["base_image"]["id"]
    assert rebased["containerfile"] == first["containerfile"] and rebased["hash"] != first["hash"]
    assert rebased["image_id"] == image_id(nsys_image["name"]) == back["image_id"]  # nothing built


def test_the_image_has_a_working_nsys_and_wraps_the_vllm_entrypoint(nsys_image: dict[str, t.Any]) -> None:
    name = nsys_image["name"]
    version = podman.run("run", "--rm", "--entrypoint", "nsys", name, "--version").stdout
    assert version.startswith("NVIDIA Nsight Systems version 2022.4")
    config = json.loads(podman.run("image", "inspect", "--format", "{{json .Config}}", name).stdout)
    assert config["Entrypoint"] == nsys_image["back"]["entrypoint"]
    assert config["Entrypoint"][-1] == "/usr/local/bin/vllm-entrypoint"
    assert config["Cmd"][:2] == ["--model", "/models/tiny-qwen3"]
    assert config["User"] == "1001" and config["StopSignal"] in ("SIGINT", "2")
    assert "VLLM_INFRA_NSYS_REPORT=nsys-report" in config["Env"]


def capture_vars(tmp: Path, nsys_image: dict[str, t.Any], **overrides: t.Any) -> dict[str, t.Any]:
    variables = yaml.safe_load((ansible.REPO / "playbooks" / "vars" / "cpu_demo.yml").read_text())
    capture = tmp / "captures-host"
    capture.mkdir(mode=0o777)
    capture.chmod(0o777)  # the server runs as uid 1001
    variables.update(
        {
            "vllm_profile_mode": "nsys",
            "vllm_profile_image": nsys_image["base"],
            "vllm_profile_container_name": podman.unique_name("nsys-role"),
            "vllm_profile_port": podman.free_port(),
            "vllm_profile_capture_dir_host": str(capture),
            # the base image's servers' cache, kept between runs as on a real host (the nsys image is built on it)
            "vllm_profile_cache_dir": shared_cache_dir(VLLM_TINY),
            "vllm_profile_dest": str(tmp / "controller"),
            "vllm_profile_run_id": "e2e-" + os.urandom(3).hex(),
            "vllm_profile_prompts": ["What is the capital of France?"],
            "vllm_profile_max_tokens": 10,
            "vllm_profile_nsys_image": nsys_image["name"],
            "vllm_profile_nsys_install": DEBIAN_NSYS,
            "vllm_profile_nsys_build_volumes": nsys_image["args"]["build_volumes"],
            "vllm_profile_nsys_rebuild": False,
            "vllm_profile_nsys_trace": ["osrt", "nvtx"],
            "vllm_profile_nsys_sample": "none",
            "vllm_profile_nsys_cuda_graph_trace": "node",
            "vllm_profile_nsys_capture_window": False,
            "vllm_profile_nsys_capture_range_end": "repeat",
            "vllm_profile_nsys_extra_args": [],
            "vllm_profile_nsys_report_name": "",
            "vllm_profile_nsys_stop_timeout": 120,
            "vllm_profile_nsys_term_timeout": 30,
            "vllm_profile_nsys_report_timeout": 120,
            "vllm_profile_nsys_stats_reports": ["kernels", "cuda_api", "nvtx", "osrt"],
            "vllm_profile_nsys_keep_sqlite": False,
            "result_dir": str(tmp),
        }
    )
    variables.update(overrides)
    return variables


def test_capture_end_to_end(nsys_image: dict[str, t.Any], tmp_path: Path) -> None:
    variables = capture_vars(tmp_path, nsys_image)
    name = variables["vllm_profile_container_name"]
    try:
        start = time.monotonic()
        proc = ansible.run_playbook(write(tmp_path, "capture.yml", CAPTURE_PLAYBOOK), variables, timeout=1200)
        wall = round(time.monotonic() - start, 1)
        assert proc.returncode == 0, proc.stdout[-6000:]
    finally:
        podman.remove(name)
    build_result = json.loads((tmp_path / "build.json").read_text())
    assert build_result["changed"] is False and build_result["reason"] == "up to date"  # reused, not rebuilt

    result = json.loads((tmp_path / "result.json").read_text())
    run_id = variables["vllm_profile_run_id"]
    report_name = f"nsys-{run_id}"
    dest = Path(variables["vllm_profile_dest"]) / run_id / "localhost"
    landed = sorted(p.name for p in dest.iterdir() if p.is_file())
    assert landed == [f"{report_name}.nsys-rep", f"{report_name}_nsys_stats.json", f"{report_name}_osrtsum.csv"]
    assert result["status"] == "captured" and result["files"] == [
        f"{report_name}.nsys-rep",
        f"{report_name}_osrtsum.csv",
        f"{report_name}_nsys_stats.json",
    ]

    # trace_summary folded the nsys stats CSVs into the host's report.
    assert (dest / "report" / "summary.json").is_file()

    # A real report, as nsys writes it (its header names the format), a few MB for ~2 min of server.
    report = dest / f"{report_name}.nsys-rep"
    assert report.read_bytes()[:28] == b"NVIDIA Tegra Profiler Report"
    assert report.stat().st_size > 1_000_000

    # The OS-runtime summary names the server's OS calls: epoll (uvicorn's loop), reads, mmap (torch).
    rows = (dest / f"{report_name}_osrtsum.csv").read_text().splitlines()
    assert rows[0].startswith("Time (%),Total Time (ns),Num Calls") and rows[0].endswith(",Name")
    calls = {row.rsplit(",", 1)[1] for row in rows[1:]}
    assert len(rows) > 20 and {"epoll_wait", "read", "mmap64", "pthread_create", "socket"} <= calls

    nsys = result["nsys"]
    assert nsys["stop"]["signal"] == "SIGINT" and nsys["stop"]["exit_code"] == "0"
    summaries = {s["summary"]: s for s in nsys["summaries"]}
    assert summaries["osrt"]["report"] == "osrtsum" and summaries["osrt"]["rows"] == len(rows) - 1
    for skipped in ("kernels", "cuda_api", "nvtx"):  # no CUDA on this host, no NVTX ranges from vLLM
        assert summaries[skipped]["path"] is None and summaries[skipped]["status"].startswith("SKIPPED")
    assert nsys["missing_summaries"] == []
    assert result["requests"][0]["completion_tokens"] == 10
    manifest = json.loads((dest / f"{report_name}_nsys_stats.json").read_text())
    assert manifest["nsys_version"].startswith("2022.4.2") and manifest["source"]["size"] == report.stat().st_size

    # Summarising the same report again changes nothing (the manifest matches it).
    # On the host, the report is in this run's own directory.
    on_host = Path(variables["vllm_profile_capture_dir_host"]) / run_id / f"{report_name}.nsys-rep"
    assert on_host.is_file(), sorted(str(p) for p in Path(variables["vllm_profile_capture_dir_host"]).rglob("*"))
    again = ansible.run_playbook(
        write(tmp_path, "stats-again.yml", STATS_AGAIN_PLAYBOOK), {"report": str(on_host), "image": nsys_image["name"]}
    )
    assert again.returncode == 0 and ansible.recap(again.stdout)["localhost"]["changed"] == 0, again.stdout[-3000:]
    output.record(
        "nsys_e2e",
        capture_playbook_s=wall,
        stop_to_exit_s=nsys["stop"]["seconds"],
        report_waited_s=nsys["reports"][0]["waited"],
        report_bytes=report.stat().st_size,
        files_on_controller={p: (dest / p).stat().st_size for p in landed},
    )


def test_sigint_ignored_escalates_kills_removes_and_fails(nsys_image: dict[str, t.Any], tmp_path: Path) -> None:
    """A server that ignores SIGINT and SIGTERM (a real shell trapping both, under podman's init):
    the role escalates, kills and removes the container, and fails saying no report was written."""
    name = podman.unique_name("nsys-deaf")
    podman.run(
        "run", "-d", "--init", "--name", name, "--entrypoint", "sh", nsys_image["name"],
        "-c", "trap '' INT TERM; while :; do sleep 0.2; done",
    )  # fmt: skip
    variables = {
        "vllm_profile_container_name": name,
        "vllm_profile_nsys_stop_timeout": 4,
        "vllm_profile_nsys_term_timeout": 3,
    }
    try:
        start = time.monotonic()
        proc = ansible.run_playbook(write(tmp_path, "stop.yml", STOP_PLAYBOOK), variables, "-v", timeout=300)
        elapsed = time.monotonic() - start
    finally:
        podman.remove(name)
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert f"No report was written: the nsys container {name} ignored SIGINT for 4s and SIGTERM for 3s" in out
    assert "so it was killed and removed" in out
    # container_stop's own result (-v, YAML as ansible.cfg asks): both signals sent in turn, then the removal.
    assert "removed: true seconds:" in out and "sent: - SIGINT - SIGTERM signal: SIGKILL was_running: true" in out, out
    assert podman.run("container", "exists", name, check=False).returncode == 1
    assert 7 <= elapsed < 60


def test_stopping_a_container_that_already_exited_sends_nothing(nsys_image: dict[str, t.Any], tmp_path: Path) -> None:
    name = podman.unique_name("nsys-gone")
    podman.run("run", "--name", name, "--entrypoint", "true", nsys_image["name"])
    try:
        proc = ansible.run_playbook(
            write(tmp_path, "stop.yml", STOP_PLAYBOOK),
            {
                "vllm_profile_container_name": name,
                "vllm_profile_nsys_stop_timeout": 5,
                "vllm_profile_nsys_term_timeout": 5,
            },
            "-v",
        )
    finally:
        podman.remove(name)
    assert proc.returncode == 0, proc.stdout[-3000:]
    out = " ".join(proc.stdout.split())
    assert "removed: false seconds: 0.0 sent: [] signal: none was_running: false" in out, out
    assert ansible.recap(proc.stdout)["localhost"]["changed"] == 0


def test_build_faults_through_ansible(tmp_path: Path) -> None:
    missing, _ignored = build(tmp_path, name="localhost/vit-nsys-never:1", base_image="localhost/vit-no-such-base:1")
    assert missing["failed"] is True and "is not in local podman storage" in missing["msg"]
    # The usual mistake on Debian: nsight-systems without the non-free component.
    name = f"localhost/{podman.unique_name('nsys-nonfree')}:latest"
    try:
        failed, _ignored = build(
            tmp_path,
            name=name,
            base_image=DEBIAN,
            install={"method": "packages", "packages": ["nsight-systems"]},
            build_volumes=[f"{apt_cache()}:/var/cache/apt/archives"],
        )
    finally:
        podman.run("rmi", "--force", name, check=False)
    assert failed["failed"] is True and failed["msg"].startswith(f"podman build of {name} failed (exit ")
    assert "Package nsight-systems is not available" in failed["build_log_tail"] or (
        "Unable to locate package nsight-systems" in failed["build_log_tail"]
    )


@pytest.mark.parametrize(
    ("version", "args", "env"),
    [
        ("0.32.0", ["--profiler-config", '{"profiler":"cuda"}'], {}),
        ("0.12.0", [], {"VLLM_TORCH_CUDA_PROFILE": "1"}),
    ],
)
def test_capture_window_definition_gpu_only(
    nsys_image: dict[str, t.Any], tmp_path: Path, version: str, args: list[str], env: dict[str, str]
) -> None:
    """The capture-window variant cannot write a report without CUDA: check what the role would build and
    run (check mode: nothing is built), for both profiler-switch eras of vLLM."""
    playbook = write(
        tmp_path,
        "window.yml",
        """
        - name: nsys_image.yml with the capture window
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Build (check mode)
              ansible.builtin.include_role: {name: vllm_infra.profiling.vllm_profile, tasks_from: nsys_image.yml}
            - name: Keep what launch.yml would get
              ansible.builtin.copy:
                content: "{{ {'build': __vllm_profile_nsys_build, 'launch': __vllm_profile_nsys_launch,
                              'stop_timeout': __vllm_profile_stop_timeout_s} | to_json }}"
                dest: "{{ result_dir }}/window.json"
                mode: "0644"
              check_mode: false
        """,
    )
    variables = capture_vars(
        tmp_path,
        nsys_image,
        vllm_profile_nsys_image=f"localhost/{podman.unique_name('nsys-window')}:latest",
        vllm_profile_nsys_capture_window=True,
        vllm_profile_nsys_trace=["cuda", "nvtx", "osrt"],
        vllm_profile_run_id="win1",
        __vllm_profile_run_id="win1",
        __vllm_profile_version=version,
        vllm_profile_switch="auto",
    )
    proc = ansible.run_playbook(playbook, variables, "--check")
    assert proc.returncode == 0, proc.stdout[-4000:]
    seen = json.loads((tmp_path / "window.json").read_text())
    entrypoint = seen["build"]["entrypoint"]
    assert seen["build"]["changed"] is True and image_id(variables["vllm_profile_nsys_image"]) is None
    assert entrypoint[entrypoint.index("--trace=cuda,nvtx,osrt") + 1 :] == [
        "--sample=none",
        "--capture-range=cudaProfilerApi",
        "--capture-range-end=repeat",
        "--force-overwrite=true",
        "/usr/local/bin/vllm-entrypoint",
    ]
    assert "--cuda-graph-trace=node" in entrypoint and "--trace-fork-before-exec=true" in entrypoint
    # The report goes to the run's own directory: <report dir>/win1/nsys-win1.nsys-rep.
    assert seen["launch"] == {"env": {"VLLM_INFRA_NSYS_REPORT": "win1/nsys-win1", **env}, "args": args}
    assert seen["stop_timeout"] == 120


def test_the_downloads_stay_in_the_cache(nsys_image: dict[str, t.Any]) -> None:
    """The ~245 MB of Debian packages land in the harness cache through the build volume, for the next build."""
    debs = list(apt_cache().glob("nsight-systems*.deb"))
    assert {p.name.split("_")[0] for p in debs} >= {"nsight-systems", "nsight-systems-target"}
    assert sum(p.stat().st_size for p in apt_cache().glob("*.deb")) > 200_000_000
