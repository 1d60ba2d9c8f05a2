# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: Nsight Systems helpers, pure Python.

Nothing here runs podman or nsys. It renders the Containerfile of an image
that wraps a base image's own entrypoint in ``nsys profile``, computes the
label that makes building it idempotent, picks the ``nsys stats`` reports an
installed nsys knows, and waits until a ``.nsys-rep`` file is complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import time
import typing as t

# nsys expands %q{NAME} in -o from its own environment: the report name can be
# chosen per container (podman run -e) without rebuilding the image.
REPORT_ENV = "VLLM_INFRA_NSYS_REPORT"
DEFAULT_REPORT_NAME = "nsys-report"
REPORT_SUFFIX = ".nsys-rep"

LABEL_HASH = "vllm_infra.profiling.nsys.hash"
LABEL_BASE = "vllm_infra.profiling.nsys.base"
LABEL_REPORT = "vllm_infra.profiling.nsys.report"

INSTALL_METHODS = ("devtools_repo", "apt_repo", "packages", "commands")
DEVTOOLS_REPOS = "https://developer.download.nvidia.com/devtools/repos"
# The key NVIDIA's Nsight Systems installation guide imports for its package repositories.
DEFAULT_KEY_URL = "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu1804/x86_64/7fa2af80.pub"
DEFAULT_PACKAGE = "nsight-systems-cli"

# Report names changed in nsys 2023.x: the current name first, the 2022.x one second.
# Every nsys stats report this collection reads, by what it holds: its current name first, then the
# name nsys used before 2023 (2022.x: gpukernsum, cudaapisum, ...). The one table of both eras; the
# trace summary's CSV reader and the report chooser below are derived from it.
REPORT_ERAS: dict[str, tuple[str, ...]] = {
    "gpu_kernels": ("cuda_gpu_kern_sum", "gpukernsum"),
    "cuda_api": ("cuda_api_sum", "cudaapisum"),
    "nvtx": ("nvtx_sum", "nvtxsum", "nvtx_pushpop_sum", "nvtxppsum"),
    "osrt": ("osrt_sum", "osrtsum"),
    "gpu_mem_time": ("cuda_gpu_mem_time_sum", "gpumemtimesum"),
    "gpu_mem_size": ("cuda_gpu_mem_size_sum", "gpumemsizesum"),
    "gpu_sum": ("cuda_gpu_sum", "gpusum"),
}
# report file name -> what it holds
REPORT_KINDS: dict[str, str] = {name: kind for kind, names in REPORT_ERAS.items() for name in names}
# The summaries the nsys_report module runs by default (option value -> candidate report names).
STATS_REPORTS: dict[str, tuple[str, ...]] = {
    "kernels": REPORT_ERAS["gpu_kernels"],
    "cuda_api": REPORT_ERAS["cuda_api"],
    "nvtx": REPORT_ERAS["nvtx"][:2],
    "osrt": REPORT_ERAS["osrt"],
}

ROOT_USERS = ("", "root", "0", "0:0", "root:root")


class NsysError(ValueError):
    """Invalid options, or a report that never became complete."""


@dataclasses.dataclass(frozen=True)
class ProfileOptions:
    """The ``nsys profile`` flags baked into the image's entrypoint."""

    report_dir: str = "/nsys"
    trace: tuple[str, ...] = ("cuda", "nvtx", "osrt")
    sample: str | None = None
    cuda_graph_trace: str | None = "node"
    trace_fork_before_exec: bool = True
    capture_range: str | None = None
    capture_range_end: str | None = None
    force_overwrite: bool = True
    extra_args: tuple[str, ...] = ()
    nsys_path: str = "nsys"

    @property
    def report_pattern(self) -> str:
        """The -o value: the report directory plus the name from the environment."""
        return f"{self.report_dir.rstrip('/').replace('%', '%%')}/%q{{{REPORT_ENV}}}"


@dataclasses.dataclass(frozen=True)
class InstallOptions:
    """How Nsight Systems gets into the image."""

    method: str = "devtools_repo"
    package: str = DEFAULT_PACKAGE
    version: str | None = None
    packages: tuple[str, ...] = ()
    pre_commands: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    repo_url: str | None = None
    key_url: str = DEFAULT_KEY_URL


@dataclasses.dataclass(frozen=True)
class BaseImage:
    """What the build needs to know of the base image (from ``podman image inspect``)."""

    ref: str
    id: str
    digest: str = ""
    user: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()

    @classmethod
    def from_inspect(cls, ref: str, data: t.Mapping[str, t.Any]) -> BaseImage:
        config = data.get("Config") or {}
        return cls(
            ref=ref,
            id=str(data.get("Id", "")),
            digest=str(data.get("Digest") or ""),
            user=str(config.get("User") or data.get("User") or ""),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
        )


# --------------------------------------------------------------------------- options


def profile_from_params(params: t.Mapping[str, t.Any]) -> ProfileOptions:
    """Build ProfileOptions from the module's ``profile`` suboptions, validated."""
    defaults = ProfileOptions()
    trace = tuple(defaults.trace if params.get("trace") is None else params["trace"])
    if not trace:
        raise NsysError("profile.trace must name at least one API (or 'none')")
    for api in trace:
        if not re.fullmatch(r"[a-z0-9-]+", api):
            raise NsysError(f"profile.trace: {api!r} is not an nsys trace name")
    report_dir = params.get("report_dir") or defaults.report_dir
    if not report_dir.startswith("/"):
        raise NsysError(f"profile.report_dir must be an absolute path inside the container, got {report_dir!r}")
    capture_range = params.get("capture_range")
    if capture_range == "none":
        capture_range = None
    capture_range_end = params.get("capture_range_end")
    if capture_range and not capture_range_end:
        capture_range_end = "repeat"
    if capture_range_end and not capture_range:
        raise NsysError("profile.capture_range_end needs profile.capture_range")
    if capture_range == "cudaProfilerApi" and "cuda" not in trace:
        raise NsysError("profile.capture_range=cudaProfilerApi needs 'cuda' in profile.trace")
    return ProfileOptions(
        report_dir=report_dir,
        trace=trace,
        sample=params.get("sample"),
        cuda_graph_trace=params.get("cuda_graph_trace", defaults.cuda_graph_trace),
        trace_fork_before_exec=params.get("trace_fork_before_exec", True),
        capture_range=capture_range,
        capture_range_end=capture_range_end,
        force_overwrite=params.get("force_overwrite", True),
        extra_args=tuple(params.get("extra_args") or ()),
        nsys_path=params.get("nsys_path") or "nsys",
    )


def install_from_params(params: t.Mapping[str, t.Any]) -> InstallOptions:
    """Build InstallOptions from the module's ``install`` suboptions, validated."""
    method = params.get("method") or "devtools_repo"
    if method not in INSTALL_METHODS:
        raise NsysError(f"install.method must be one of {', '.join(INSTALL_METHODS)}, got {method!r}")
    opts = InstallOptions(
        method=method,
        package=params.get("package") or DEFAULT_PACKAGE,
        version=params.get("version") or None,
        packages=tuple(params.get("packages") or ()),
        pre_commands=tuple(params.get("pre_commands") or ()),
        commands=tuple(params.get("commands") or ()),
        repo_url=params.get("repo_url") or None,
        key_url=params.get("key_url") or DEFAULT_KEY_URL,
    )
    if method == "packages" and not opts.packages:
        raise NsysError("install.method=packages needs install.packages")
    if method == "commands" and not opts.commands:
        raise NsysError("install.method=commands needs install.commands")
    if method != "packages" and opts.packages:
        raise NsysError("install.packages is used only with install.method=packages")
    for cmd in (*opts.pre_commands, *opts.commands):
        if "\n" in cmd:
            raise NsysError(f"install commands are single lines (use ';' or separate items): {cmd!r}")
    return opts


# --------------------------------------------------------------------------- Containerfile


def profile_argv(profile: ProfileOptions) -> list[str]:
    """``nsys profile ...`` up to (not including) the profiled command."""
    argv = [profile.nsys_path, "profile", "-o", profile.report_pattern]
    argv.append(f"--trace-fork-before-exec={'true' if profile.trace_fork_before_exec else 'false'}")
    if profile.cuda_graph_trace:
        argv.append(f"--cuda-graph-trace={profile.cuda_graph_trace}")
    argv.append(f"--trace={','.join(profile.trace)}")
    if profile.sample:
        argv.append(f"--sample={profile.sample}")
    if profile.capture_range:
        argv.append(f"--capture-range={profile.capture_range}")
        argv.append(f"--capture-range-end={profile.capture_range_end or 'repeat'}")
    argv.append(f"--force-overwrite={'true' if profile.force_overwrite else 'false'}")
    argv.extend(profile.extra_args)
    return argv


def wrapped_entrypoint(profile: ProfileOptions, base: BaseImage) -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD of the nsys image: nsys in front of the base's own entrypoint.

    The base's CMD stays a CMD, so ``podman run IMAGE ARGS`` still replaces it as
    it did on the base image (vLLM images take the server arguments there).
    """
    return [*profile_argv(profile), *base.entrypoint], list(base.cmd)


def _continued(commands: t.Sequence[str]) -> str:
    return " \\\n && ".join(commands)


def _version_suffix(install: InstallOptions, sep: str) -> str:
    return f"{sep}{install.version}" if install.version else ""


def install_commands(install: InstallOptions) -> list[str]:
    """Shell commands (run as root) that put ``nsys`` into the image."""
    pre = list(install.pre_commands)
    if install.method == "devtools_repo":
        repo = install.repo_url or (
            f"{DEVTOOLS_REPOS}/rhel$(. /etc/os-release; echo ${{VERSION_ID%%.*}})/"
            "$(rpm --eval '%{_arch}' | sed s/aarch/arm/)/"
        )
        return [
            *pre,
            # UBI minimal images ship microdnf only; the guide installs dnf first.
            "if ! command -v dnf >/dev/null 2>&1; then microdnf install -y dnf && microdnf clean all; fi",
            "dnf install -y dnf-plugins-core",
            f"rpm --import {shlex.quote(install.key_url)}",
            f'dnf config-manager --add-repo "{repo}"',
            f"dnf install -y {shlex.quote(install.package + _version_suffix(install, '-'))}",
            "dnf clean all",
            *install.commands,
        ]
    if install.method == "apt_repo":
        keyring = "/usr/share/keyrings/nvidia-devtools.gpg"
        if install.repo_url:
            repo_cmd = f"repo={shlex.quote(install.repo_url)}"
        else:
            repo_cmd = (
                '. /etc/os-release; if [ "$ID" != ubuntu ]; then '
                'echo "NVIDIA\'s devtools apt repository serves Ubuntu only (this is $ID): set install.repo_url" >&2; '
                f'exit 1; fi; repo="{DEVTOOLS_REPOS}/ubuntu$(echo "$VERSION_ID" | tr -d .)/'
                '$(dpkg --print-architecture)/"'
            )
        return [
            *pre,
            "export DEBIAN_FRONTEND=noninteractive",
            "apt-get update",
            "apt-get install -y --no-install-recommends ca-certificates curl gnupg",
            f"curl -fsSL {shlex.quote(install.key_url)} | gpg --dearmor --yes -o {keyring}",
            repo_cmd,
            f'echo "deb [signed-by={keyring}] $repo /" > /etc/apt/sources.list.d/nvidia-devtools.list',
            "apt-get update",
            "apt-get install -y --no-install-recommends "
            + shlex.quote(install.package + _version_suffix(install, "=")),
            "rm -rf /var/lib/apt/lists/*",
            *install.commands,
        ]
    if install.method == "packages":
        pkgs = " ".join(shlex.quote(p) for p in install.packages)
        return [
            *pre,
            # Which package manager the base has is found at build time. No `apt-get clean`:
            # a build volume on /var/cache/apt/archives keeps the downloads for the next build.
            "if command -v apt-get >/dev/null 2>&1; then export DEBIAN_FRONTEND=noninteractive"
            f" && apt-get update && apt-get install -y --no-install-recommends {pkgs}"
            " && rm -rf /var/lib/apt/lists/*;"
            f" elif command -v dnf >/dev/null 2>&1; then dnf install -y {pkgs} && dnf clean all;"
            f" elif command -v microdnf >/dev/null 2>&1; then microdnf install -y {pkgs} && microdnf clean all;"
            ' else echo "no apt-get, dnf or microdnf in the base image: use install.method=commands" >&2; exit 1; fi',
            *install.commands,
        ]
    return [*pre, *install.commands]


def verify_commands(profile: ProfileOptions) -> list[str]:
    """After the install: nsys on PATH and runnable, the report directory writable by any user."""
    cmds = []
    if profile.nsys_path == "nsys":
        # NVIDIA's packages install under /opt/nvidia; not every version links nsys onto PATH.
        cmds.append(
            "if ! command -v nsys >/dev/null 2>&1; then nsys_bin=$(ls -d /opt/nvidia/nsight-systems*/*/bin/nsys"
            " /opt/nvidia/nsight-systems*/*/target-linux-*/nsys 2>/dev/null | sort -V | tail -n 1)"
            ' && [ -n "$nsys_bin" ] && ln -sf "$nsys_bin" /usr/local/bin/nsys; fi'
        )
    cmds.append(f"{shlex.quote(profile.nsys_path)} --version")
    directory = shlex.quote(profile.report_dir)
    cmds.append(f"mkdir -p {directory} && chmod 1777 {directory}")
    return cmds


def _json_list(items: t.Sequence[str]) -> str:
    return json.dumps(list(items))


def render_containerfile(base: BaseImage, install: InstallOptions, profile: ProfileOptions) -> str:
    """The Containerfile of the nsys image. Deterministic: same inputs, same text."""
    entrypoint, cmd = wrapped_entrypoint(profile, base)
    lines = [
        "# Generated by vllm_infra.profiling.nsys_image_build: the base image with Nsight Systems,",
        "# its own entrypoint and command run under `nsys profile`. Do not edit: rebuilt from options.",
        f"FROM {base.ref}",
        "USER root",
    ]
    install_cmds = install_commands(install)
    if install_cmds:
        lines.append(f"RUN set -e; {_continued(install_cmds)}")
    lines.append(f"RUN set -e; {_continued(verify_commands(profile))}")
    if base.user not in ROOT_USERS:
        lines.append(f"USER {base.user}")
    lines += [
        f"ENV {REPORT_ENV}={DEFAULT_REPORT_NAME}",
        # SIGINT ends an nsys session and writes the report; `podman stop` sends this.
        "STOPSIGNAL SIGINT",
        f"ENTRYPOINT {_json_list(entrypoint)}",
    ]
    if cmd:
        # An ENTRYPOINT resets the inherited CMD: restate the base image's.
        lines.append(f"CMD {_json_list(cmd)}")
    return "\n".join(lines) + "\n"


def build_hash(containerfile: str, base: BaseImage) -> str:
    """The label value: the Containerfile and the exact base image it was built from.

    The base is named by its image ID (the digest of its config, which names every layer), not by its
    manifest digest: the ID is the same on every host that has the image, whether pulled, pushed to a
    mirror or loaded from an archive, while the manifest digest changes with the transport. So the fleet
    agrees on one hash, and a host whose image carries it neither builds nor pulls.
    """
    digest = hashlib.sha256()
    for part in (containerfile, base.id):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def build_labels(containerfile: str, base: BaseImage, profile: ProfileOptions) -> dict[str, str]:
    return {
        LABEL_HASH: build_hash(containerfile, base),
        LABEL_BASE: f"{base.ref}@{base.id}",
        LABEL_REPORT: profile.report_pattern,
    }


# --------------------------------------------------------------------------- nsys stats


_REPORT_LINE = re.compile(r"^\s+([A-Za-z0-9_]+)(?:\[[^\]]*\])*\s+--\s")
_PROCESSING = re.compile(
    r"Processing \[(?P<db>[^\]]*)\] with \[(?P<script>[^\]]*)\] to \[(?P<out>[^\]]*)\]\.\.\.\s*"
    r"(?P<status>PROCESSED|SKIPPED:?[^\n]*|ERROR:?[^\n]*)"
)


def parse_help_reports(text: str) -> list[str]:
    """Report names from ``nsys stats --help-reports`` (any version), in order."""
    names = []
    for line in text.splitlines():
        match = _REPORT_LINE.match(line)
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names


def choose_reports(available: t.Sequence[str], wanted: t.Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Map each wanted summary (a key of STATS_REPORTS, or a literal report name) to a report
    this nsys has. Returns (chosen, missing)."""
    chosen: dict[str, str] = {}
    missing: list[str] = []
    have = set(available)
    for want in wanted:
        candidates = STATS_REPORTS.get(want, (want,))
        name = next((c for c in candidates if c in have), None)
        if name:
            chosen[want] = name
        else:
            missing.append(want)
    return chosen, missing


def stats_output_prefix(report_path: str) -> str:
    """``nsys stats --output PREFIX`` writes PREFIX_<report>.csv: next to the report."""
    return report_path[: -len(REPORT_SUFFIX)] if report_path.endswith(REPORT_SUFFIX) else report_path


def stats_csv_path(report_path: str, report_name: str) -> str:
    return f"{stats_output_prefix(report_path)}_{report_name}.csv"


def parse_stats_output(text: str) -> dict[str, str]:
    """CSV path -> 'PROCESSED' or the SKIPPED/ERROR reason, from ``nsys stats`` stdout."""
    out = {}
    for match in _PROCESSING.finditer(text.replace("\r", "\n")):
        out[match.group("out")] = match.group("status").strip()
    return out


def csv_rows(path: str) -> int:
    """Data rows of a stats CSV (its header not counted); 0 for a missing or empty file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [line for line in handle if line.strip()]
    except FileNotFoundError:
        return 0
    return max(len(lines) - 1, 0)


# --------------------------------------------------------------------------- report completion


@dataclasses.dataclass(frozen=True)
class ReportState:
    path: str
    size: int
    waited: float


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def _missing_reason(path: str, timeout: float) -> str:
    stem = stats_output_prefix(path)
    if os.path.exists(f"{stem}.qdstrm"):
        return (
            f"no report was written: only {stem}.qdstrm exists after {timeout:g}s; nsys could not turn it into "
            f"a {REPORT_SUFFIX} (the importer of the host-linux part is missing or failed)"
        )
    return f"no report was written: {path} does not exist after {timeout:g}s"


def wait_for_report(
    path: str,
    timeout: float = 120.0,
    settle: float = 2.0,
    interval: float = 0.5,
    *,
    clock: t.Callable[[], float] = time.monotonic,
    sleep: t.Callable[[float], None] = time.sleep,
) -> ReportState:
    """Wait until ``path`` exists, is not empty and has not changed for ``settle`` seconds.

    nsys writes the ``.nsys-rep`` in place while it imports its capture stream, so a
    report that exists may still be growing. Raises NsysError naming what was seen.
    """
    start = clock()
    deadline = start + timeout
    last: tuple[int, int] | None = None
    stable_since = start
    while True:
        now = clock()
        current = _stat(path)
        if current != last:
            last, stable_since = current, now
        elif current is not None and current[0] > 0 and now - stable_since >= settle:
            return ReportState(path=path, size=current[0], waited=round(now - start, 3))
        if now >= deadline:
            if last is None:
                raise NsysError(_missing_reason(path, timeout))
            if last[0] == 0:
                raise NsysError(f"the report {path} is still empty after {timeout:g}s")
            raise NsysError(f"the report {path} was still being written after {timeout:g}s ({last[0]} bytes)")
        sleep(max(0.0, min(interval, deadline - now)))


def tail(text: str, lines: int = 40) -> str:
    """The last lines of a log, carriage-return progress bars folded."""
    rows = [row for row in text.replace("\r", "\n").splitlines() if row.strip()]
    return "\n".join(rows[-lines:])
