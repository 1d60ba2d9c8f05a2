# SPDX-License-Identifier: GPL-3.0-or-later
"""module_utils/_nsys.py: Containerfile generation, the build hash, nsys stats report names, and the
wait for a complete .nsys-rep (against real files written by a real thread)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _nsys

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "nsys"


def inspect_fixture(name: str) -> dict:
    return json.loads((FIX / name).read_text())[0]


# Real `podman image inspect` output (podman 4.3.1) of the harness's images.
VLLM_TINY = _nsys.BaseImage.from_inspect(
    "localhost/vllm-cpu-tiny:0.32.0", inspect_fixture("podman-4.3.1-image-inspect-vllm-cpu-tiny.json")
)
DEBIAN = _nsys.BaseImage.from_inspect(
    "localhost/vllm-infra-debian12:latest", inspect_fixture("podman-4.3.1-image-inspect-debian12-minbase.json")
)
DEBIAN_NSYS = _nsys.InstallOptions(
    method="packages",
    pre_commands=("sed -i 's/ main$/ main contrib non-free/' /etc/apt/sources.list",),
    packages=("nsight-systems", "nsight-systems-target"),
    commands=("ln -sfn ../../nsight-systems/host-linux-x64 /usr/lib/x86_64-linux-gnu/nsight-systems/host-linux-x64",),
)
CPU_PROFILE = _nsys.profile_from_params({"trace": ["osrt", "nvtx"], "sample": "none", "report_dir": "/vllm-profiles"})


def instructions(containerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) per logical line, continuations joined, comments dropped."""
    out = []
    for line in containerfile.replace("\\\n", " ").splitlines():
        if line.strip() and not line.startswith("#"):
            word, _ignored, rest = line.partition(" ")
            out.append((word, rest))
    return out


def only(containerfile: str, word: str) -> list[str]:
    return [rest for w, rest in instructions(containerfile) if w == word]


# ----------------------------------------------------------------------------- base images


def test_base_image_fields_come_from_the_real_inspect_output() -> None:
    assert VLLM_TINY.entrypoint == ("/usr/local/bin/vllm-entrypoint",)
    assert VLLM_TINY.cmd[:2] == ("--model", "/models/tiny-qwen3")
    assert VLLM_TINY.user == "1001"
    assert VLLM_TINY.id.startswith("856ac392") and VLLM_TINY.digest.startswith("sha256:")
    assert DEBIAN.entrypoint == () and DEBIAN.cmd == ("/bin/bash",) and DEBIAN.user == ""


def test_entrypoint_wraps_the_base_entrypoint_and_keeps_its_command() -> None:
    text = _nsys.render_containerfile(VLLM_TINY, DEBIAN_NSYS, CPU_PROFILE)
    (entrypoint,) = only(text, "ENTRYPOINT")
    (cmd,) = only(text, "CMD")
    assert json.loads(entrypoint) == [
        "nsys",
        "profile",
        "-o",
        "/vllm-profiles/%q{VLLM_INFRA_NSYS_REPORT}",
        "--trace-fork-before-exec=true",
        "--cuda-graph-trace=node",
        "--trace=osrt,nvtx",
        "--sample=none",
        "--force-overwrite=true",
        "/usr/local/bin/vllm-entrypoint",
    ]
    # ENTRYPOINT resets an inherited CMD: the base's must be restated, unchanged.
    assert json.loads(cmd) == list(VLLM_TINY.cmd)
    assert only(text, "FROM") == ["localhost/vllm-cpu-tiny:0.32.0"]
    assert only(text, "STOPSIGNAL") == ["SIGINT"]
    assert only(text, "ENV") == ["VLLM_INFRA_NSYS_REPORT=nsys-report"]


def test_base_without_entrypoint_profiles_its_command() -> None:
    text = _nsys.render_containerfile(DEBIAN, DEBIAN_NSYS, CPU_PROFILE)
    entrypoint = json.loads(only(text, "ENTRYPOINT")[0])
    assert entrypoint[:2] == ["nsys", "profile"] and entrypoint[-1] == "--force-overwrite=true"
    assert json.loads(only(text, "CMD")[0]) == ["/bin/bash"]


def test_base_with_neither_entrypoint_nor_cmd_gets_no_cmd() -> None:
    bare = _nsys.BaseImage(ref="localhost/bare", id="abc")
    text = _nsys.render_containerfile(bare, DEBIAN_NSYS, CPU_PROFILE)
    assert only(text, "CMD") == []
    assert json.loads(only(text, "ENTRYPOINT")[0])[-1] == "--force-overwrite=true"


def test_user_is_root_for_the_install_then_restored() -> None:
    steps = instructions(_nsys.render_containerfile(VLLM_TINY, DEBIAN_NSYS, CPU_PROFILE))
    words = [w for w, _ignored in steps]
    users = [(i, rest) for i, (w, rest) in enumerate(steps) if w == "USER"]
    assert [u for _ignored, u in users] == ["root", "1001"]
    runs = [i for i, w in enumerate(words) if w == "RUN"]
    assert users[0][0] < min(runs) and users[1][0] > max(runs)
    assert users[1][0] < words.index("ENTRYPOINT")


@pytest.mark.parametrize("user", ["", "root", "0", "0:0"])
def test_root_bases_need_no_user_restore(user: str) -> None:
    base = _nsys.BaseImage(ref="b", id="1", user=user, cmd=("sh",))
    assert only(_nsys.render_containerfile(base, DEBIAN_NSYS, CPU_PROFILE), "USER") == ["root"]


def test_named_user_with_group_is_restored_verbatim() -> None:
    base = _nsys.BaseImage(ref="b", id="1", user="vllm:0", cmd=("sh",))
    assert only(_nsys.render_containerfile(base, DEBIAN_NSYS, CPU_PROFILE), "USER") == ["root", "vllm:0"]


# ----------------------------------------------------------------------------- install methods


def run_lines(install: _nsys.InstallOptions, profile: _nsys.ProfileOptions = CPU_PROFILE) -> list[str]:
    return only(_nsys.render_containerfile(VLLM_TINY, install, profile), "RUN")


def test_devtools_repo_follows_the_guide() -> None:
    (install, verify) = run_lines(_nsys.install_from_params({"method": "devtools_repo"}))
    steps = [s.strip() for s in install.removeprefix("set -e; ").split(" && ")]
    assert steps[0].startswith("if ! command -v dnf") and "microdnf install -y dnf" in steps[0]
    assert "dnf install -y dnf-plugins-core" in steps
    assert f"rpm --import {_nsys.DEFAULT_KEY_URL}" in steps
    repo = next(s for s in steps if s.startswith("dnf config-manager --add-repo"))
    assert (
        "https://developer.download.nvidia.com/devtools/repos/rhel$(. /etc/os-release; echo ${VERSION_ID%%.*})/" in repo
    )
    assert "$(rpm --eval '%{_arch}' | sed s/aarch/arm/)/" in repo
    assert steps.index("dnf install -y dnf-plugins-core") < steps.index("dnf install -y nsight-systems-cli")
    assert "nsys --version" in verify


def test_devtools_repo_pin_and_repo_override() -> None:
    (install, _ignored) = run_lines(
        _nsys.install_from_params(
            {"method": "devtools_repo", "version": "2025.3.1", "repo_url": "https://mirror.example/devtools/"}
        )
    )
    assert "dnf install -y nsight-systems-cli-2025.3.1" in install
    assert 'dnf config-manager --add-repo "https://mirror.example/devtools/"' in install


def test_apt_repo_uses_nvidias_ubuntu_repo_with_signed_by() -> None:
    (install, _ignored) = run_lines(_nsys.install_from_params({"method": "apt_repo", "version": "2025.3.1.90-1"}))
    assert "gpg --dearmor --yes -o /usr/share/keyrings/nvidia-devtools.gpg" in install
    assert 'devtools/repos/ubuntu$(echo "$VERSION_ID" | tr -d .)/$(dpkg --print-architecture)/' in install
    assert "serves Ubuntu only" in install
    assert 'echo "deb [signed-by=/usr/share/keyrings/nvidia-devtools.gpg] $repo /"' in install
    assert "apt-get install -y --no-install-recommends nsight-systems-cli=2025.3.1.90-1" in install


def test_packages_detects_the_package_manager_and_keeps_the_download_cache() -> None:
    (install, _ignored) = run_lines(DEBIAN_NSYS)
    assert install.startswith("set -e; sed -i 's/ main$/ main contrib non-free/' /etc/apt/sources.list")
    for manager in ("apt-get install -y --no-install-recommends", "dnf install -y", "microdnf install -y"):
        assert f"{manager} nsight-systems nsight-systems-target" in install
    assert "apt-get clean" not in install  # a build volume on /var/cache/apt/archives keeps the .debs
    assert install.rstrip().endswith("/usr/lib/x86_64-linux-gnu/nsight-systems/host-linux-x64")


def test_commands_only() -> None:
    (install, _ignored) = run_lines(
        _nsys.install_from_params({"method": "commands", "commands": ["true", "echo done"]})
    )
    assert " ".join(install.split()) == "set -e; true && echo done"


@pytest.mark.parametrize(
    "params",
    [
        {"method": "devtools_repo"},
        {"method": "devtools_repo", "version": "2025.3.1", "pre_commands": ["echo 'a b'"]},
        {"method": "apt_repo"},
        {"method": "apt_repo", "repo_url": "https://mirror.example/x/"},
        {"method": "packages", "packages": ["nsight-systems", "nsight-systems-target"], "commands": ["ls -l"]},
        {"method": "commands", "commands": ["set -x", "curl -fsSL https://x/y | tar -xz -C /opt"]},
    ],
)
def test_every_generated_run_is_valid_shell(params: dict) -> None:
    """The real /bin/sh parses each RUN (sh -n: syntax only, nothing executes)."""
    for run in run_lines(_nsys.install_from_params(params)):
        proc = subprocess.run(["sh", "-n", "-c", run], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{run}\n{proc.stderr}"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"method": "packages"}, "needs install.packages"),
        ({"method": "commands"}, "needs install.commands"),
        ({"method": "devtools_repo", "packages": ["x"]}, "only with install.method=packages"),
        ({"method": "zypper"}, "install.method must be one of"),
        ({"method": "commands", "commands": ["a\nb"]}, "single lines"),
    ],
)
def test_install_option_errors(params: dict, message: str) -> None:
    with pytest.raises(_nsys.NsysError, match=re.escape(message)):
        _nsys.install_from_params(params)


# ----------------------------------------------------------------------------- nsys profile flags


def test_profile_defaults_follow_vllms_docs() -> None:
    argv = _nsys.profile_argv(_nsys.profile_from_params({}))
    assert argv == [
        "nsys",
        "profile",
        "-o",
        "/nsys/%q{VLLM_INFRA_NSYS_REPORT}",
        "--trace-fork-before-exec=true",
        "--cuda-graph-trace=node",
        "--trace=cuda,nvtx,osrt",
        "--force-overwrite=true",
    ]


def test_capture_window_defaults_to_repeat() -> None:
    """The GPU-only window: cudaProfilerStart/Stop (vLLM's /start_profile, /stop_profile) bracket captures."""
    argv = _nsys.profile_argv(_nsys.profile_from_params({"capture_range": "cudaProfilerApi", "extra_args": ["-x"]}))
    assert argv[-4:] == [
        "--capture-range=cudaProfilerApi",
        "--capture-range-end=repeat",
        "--force-overwrite=true",
        "-x",
    ]
    argv = _nsys.profile_from_params({"capture_range": "cudaProfilerApi", "capture_range_end": "stop"})
    assert "--capture-range-end=stop" in _nsys.profile_argv(argv)
    assert not any(
        a.startswith("--capture") for a in _nsys.profile_argv(_nsys.profile_from_params({"capture_range": "none"}))
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"capture_range_end": "repeat"}, "needs profile.capture_range"),
        ({"capture_range": "cudaProfilerApi", "trace": ["osrt"]}, "needs 'cuda' in profile.trace"),
        ({"report_dir": "relative/dir"}, "absolute path"),
        ({"trace": []}, "at least one"),
        ({"trace": ["cuda,nvtx"]}, "not an nsys trace name"),
    ],
)
def test_profile_option_errors(params: dict, message: str) -> None:
    with pytest.raises(_nsys.NsysError, match=re.escape(message)):
        _nsys.profile_from_params(params)


def test_percent_in_report_dir_is_escaped_for_nsys() -> None:
    assert (
        _nsys.profile_from_params({"report_dir": "/data/100%"}).report_pattern
        == "/data/100%%/%q{VLLM_INFRA_NSYS_REPORT}"
    )


def test_optional_flags_can_be_left_out() -> None:
    argv = _nsys.profile_argv(
        _nsys.profile_from_params({"cuda_graph_trace": "", "trace_fork_before_exec": False, "force_overwrite": False})
    )
    assert "--trace-fork-before-exec=false" in argv and "--force-overwrite=false" in argv
    assert not any(a.startswith("--cuda-graph-trace") for a in argv)


# ----------------------------------------------------------------------------- the build hash


def test_hash_covers_the_containerfile_and_the_base_image() -> None:
    text = _nsys.render_containerfile(VLLM_TINY, DEBIAN_NSYS, CPU_PROFILE)
    again = _nsys.render_containerfile(VLLM_TINY, DEBIAN_NSYS, CPU_PROFILE)
    assert text == again and _nsys.build_hash(text, VLLM_TINY) == _nsys.build_hash(again, VLLM_TINY)
    other_flag = _nsys.render_containerfile(
        VLLM_TINY, DEBIAN_NSYS, _nsys.profile_from_params({"trace": ["osrt"], "report_dir": "/vllm-profiles"})
    )
    rebuilt_base = _nsys.BaseImage(**{**VLLM_TINY.__dict__, "id": "0" * 64})
    new_digest = _nsys.BaseImage(**{**VLLM_TINY.__dict__, "digest": "sha256:" + "1" * 64})
    hashes = {
        _nsys.build_hash(text, VLLM_TINY),
        _nsys.build_hash(other_flag, VLLM_TINY),
        _nsys.build_hash(text, rebuilt_base),
    }
    assert len(hashes) == 3
    # The same image pulled from a mirror or loaded from an archive has another manifest digest but the
    # same ID: the fleet agrees on one hash.
    assert _nsys.build_hash(text, new_digest) == _nsys.build_hash(text, VLLM_TINY)
    labels = _nsys.build_labels(text, VLLM_TINY, CPU_PROFILE)
    assert labels[_nsys.LABEL_BASE] == f"localhost/vllm-cpu-tiny:0.32.0@{VLLM_TINY.id}"
    assert labels[_nsys.LABEL_REPORT] == "/vllm-profiles/%q{VLLM_INFRA_NSYS_REPORT}"


# ----------------------------------------------------------------------------- nsys stats

# A stand-in, NOT captured output: the layout of 2022.4's real listing with report names that NVIDIA's
# current Nsight Systems User Guide documents (cuda_api_sum, cuda_gpu_kern_sum[:nvtx-name][:base|:mangled],
# nvtx_sum, osrt_sum). No newer nsys than Debian's 2022.4 can run here.
CURRENT_LISTING_STANDIN = """
The following built-in reports are available:

  cuda_api_gpu_sum[:nvtx-name][:base|:mangled] -- CUDA Summary (API/Kernels/MemOps)
  cuda_api_sum -- CUDA API Summary
  cuda_api_trace -- CUDA API Trace
  cuda_gpu_kern_gb_sum[:nvtx-name][:base|:mangled] -- CUDA GPU Kernel/Grid/Block Summary
  cuda_gpu_kern_sum[:nvtx-name][:base|:mangled] -- CUDA GPU Kernel Summary
  nvtx_sum -- NVTX Range Summary
  osrt_sum -- OS Runtime Summary

For more information, use '--help-reports <report_name>'
"""


def test_report_names_of_the_real_2022_listing() -> None:
    names = _nsys.parse_help_reports((FIX / "help-reports-2022.4.2.txt").read_text())
    assert len(names) == 32 and names[0] == "apigpusum" and "unifiedmemory" in names
    chosen, missing = _nsys.choose_reports(names, ["kernels", "cuda_api", "nvtx", "osrt"])
    assert chosen == {"kernels": "gpukernsum", "cuda_api": "cudaapisum", "nvtx": "nvtxsum", "osrt": "osrtsum"}
    assert missing == []


def test_report_names_of_current_releases_win() -> None:
    names = _nsys.parse_help_reports(CURRENT_LISTING_STANDIN)
    assert names == [
        "cuda_api_gpu_sum",
        "cuda_api_sum",
        "cuda_api_trace",
        "cuda_gpu_kern_gb_sum",
        "cuda_gpu_kern_sum",
        "nvtx_sum",
        "osrt_sum",
    ]
    chosen, missing = _nsys.choose_reports(names, ["kernels", "osrt", "cuda_api_trace", "nvtxsum", "dx12pixsum"])
    assert chosen == {"kernels": "cuda_gpu_kern_sum", "osrt": "osrt_sum", "cuda_api_trace": "cuda_api_trace"}
    assert missing == ["nvtxsum", "dx12pixsum"]


def test_stats_output_of_real_nsys_2022() -> None:
    statuses = _nsys.parse_stats_output((FIX / "stats-stdout-2022.4.2-cpu.txt").read_text())
    assert statuses["/tmp/nsysx/cap1/run1_osrtsum.csv"] == "PROCESSED"
    assert statuses["/tmp/nsysx/cap1/run1_gpukernsum.csv"].startswith("SKIPPED:")
    assert "does not contain CUDA kernel data" in statuses["/tmp/nsysx/cap1/run1_gpukernsum.csv"]
    assert len(statuses) == 4


def test_csv_paths_sit_next_to_the_report(tmp_path: Path) -> None:
    assert _nsys.stats_csv_path("/x/nsys-run1.nsys-rep", "osrtsum") == "/x/nsys-run1_osrtsum.csv"
    assert _nsys.stats_output_prefix("/x/odd-name") == "/x/odd-name"
    assert _nsys.csv_rows(str(FIX / "osrtsum-2022.4.2-cpu-head.csv")) == 11
    assert _nsys.csv_rows(str(tmp_path / "absent.csv")) == 0
    (tmp_path / "empty.csv").write_text("")
    assert _nsys.csv_rows(str(tmp_path / "empty.csv")) == 0


def test_tail_folds_progress_bars() -> None:
    assert _nsys.tail("a\rb\r\nc\n\n d\n", 2) == "c\n d"


# ----------------------------------------------------------------------------- report completion


def writer(path: Path, chunks: int, pause: float) -> threading.Thread:
    """Write a report in chunks, as nsys does while it imports its capture stream."""

    def run() -> None:
        with open(path, "ab") as handle:
            for _ignored in range(chunks):
                handle.write(b"x" * 4096)
                handle.flush()
                time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait_returns_only_once_the_report_stops_growing(tmp_path: Path) -> None:
    report = tmp_path / "r.nsys-rep"
    thread = writer(report, chunks=8, pause=0.1)
    state = _nsys.wait_for_report(str(report), timeout=10, settle=0.4, interval=0.05)
    assert not thread.is_alive()
    assert state.size == 8 * 4096 == report.stat().st_size
    assert 0.7 <= state.waited < 5


def test_wait_for_a_report_that_appears_later(tmp_path: Path) -> None:
    report = tmp_path / "late.nsys-rep"
    timer = threading.Timer(0.3, lambda: report.write_bytes(b"NVIDIA Tegra Profiler Report"))
    timer.start()
    state = _nsys.wait_for_report(str(report), timeout=10, settle=0.2, interval=0.05)
    assert state.size == 28 and state.waited >= 0.5


def test_missing_report_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(_nsys.NsysError, match=r"no report was written: .*missing\.nsys-rep does not exist after 0\.3s"):
        _nsys.wait_for_report(str(tmp_path / "missing.nsys-rep"), timeout=0.3, settle=0.1, interval=0.05)


def test_qdstrm_without_report_says_the_import_failed(tmp_path: Path) -> None:
    """What nsys 2022.4 leaves when its host-linux-x64 importer is missing (environment.md)."""
    (tmp_path / "run.qdstrm").write_bytes(b"stream")
    with pytest.raises(_nsys.NsysError, match=r"only .*run\.qdstrm exists .* could not turn it into a \.nsys-rep"):
        _nsys.wait_for_report(str(tmp_path / "run.nsys-rep"), timeout=0.2, settle=0.1, interval=0.05)


def test_empty_report_is_not_complete(tmp_path: Path) -> None:
    (tmp_path / "e.nsys-rep").write_bytes(b"")
    with pytest.raises(_nsys.NsysError, match="still empty"):
        _nsys.wait_for_report(str(tmp_path / "e.nsys-rep"), timeout=0.3, settle=0.1, interval=0.05)


def test_report_still_growing_at_the_deadline(tmp_path: Path) -> None:
    report = tmp_path / "big.nsys-rep"
    thread = writer(report, chunks=30, pause=0.05)
    with pytest.raises(_nsys.NsysError, match=r"still being written after 0\.5s \(\d+ bytes\)"):
        _nsys.wait_for_report(str(report), timeout=0.5, settle=0.3, interval=0.05)
    thread.join()
