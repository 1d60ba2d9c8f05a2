# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
#
# PRIVATE to the collection: may change at any time. Do not use from other collections.
"""What a host's podman can do, and why a podman call failed.

Pure functions over podman's own outputs and configuration files, so that unit tests call them with
real texts; the modules (``vllm_host_preflight``, ``vllm_image_info``) and the role's filters run them.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._version import (
    parse_version,
    version_key,
    version_str,
)

# `--userns=keep-id` for containers of root's podman: containers/podman PR 17350 (Feb 2023), first
# released in 4.5.0. RHEL 9.4 ships 4.9, later 9.x ship 5.x; Debian 12 ships 4.3.1.
KEEP_ID_ROOTFUL_MIN = (4, 5, 0)
# `keep-id:uid=N,gid=N` (the guide's form): podman 4.3.0.
KEEP_ID_UID_MIN = (4, 3, 0)

# Where podman looks for its init binary when containers.conf sets no init_path
# (containers/common pkg/config: helper_binaries_dir defaults, then `catatonit` in them).
HELPER_BINARIES_DIRS = (
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
    "/usr/libexec/podman",
    "/usr/lib/podman",
)
INIT_BINARY = "catatonit"

_CONF_KEY_RE = re.compile(r"^\s*(init_path|helper_binaries_dir)\s*=\s*(.+?)\s*$")
_SECTION_RE = re.compile(r"^\s*\[\s*([A-Za-z_.]+)\s*\]\s*$")
_TOML_STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'')


# --- containers.conf --------------------------------------------------------------------------


def containers_conf_files(rootless: bool, environ: t.Mapping[str, str], home: str) -> list[str]:
    """The containers.conf files podman reads, lowest precedence first.

    CONTAINERS_CONF replaces them all (containers/common pkg/config); otherwise the system files,
    their drop-in directories, then (rootless) the user's own file.
    """
    if environ.get("CONTAINERS_CONF"):
        return [environ["CONTAINERS_CONF"]]
    files = ["/usr/share/containers/containers.conf", "/etc/containers/containers.conf"]
    for drop_in in ("/usr/share/containers/containers.conf.d", "/etc/containers/containers.conf.d"):
        if os.path.isdir(drop_in):
            files += sorted(os.path.join(drop_in, name) for name in os.listdir(drop_in) if name.endswith(".conf"))
    if rootless:
        config_home = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        files.append(os.path.join(config_home, "containers", "containers.conf"))
    return files


def parse_engine_paths(text: str) -> dict[str, t.Any]:
    """``init_path`` and ``helper_binaries_dir`` from one containers.conf text.

    A small reader for the two keys only (the target's Python may be 3.9, without tomllib): a string
    value, or a list of strings, possibly over several lines.
    """
    found: dict[str, t.Any] = {}
    section = ""
    lines = iter(text.splitlines())
    for line in lines:
        stripped = line.split("#", 1)[0] if '"' not in line else line
        head = _SECTION_RE.match(stripped)
        if head:
            section = head.group(1)
            continue
        match = _CONF_KEY_RE.match(stripped)
        if not match or section not in ("containers", "engine"):
            continue
        key, value = match.groups()
        if value.startswith("["):
            while "]" not in value:
                more = next(lines, None)
                if more is None:
                    break
                value += " " + more.strip()
            found[key] = [a or b for a, b in _TOML_STRING_RE.findall(value)]
        else:
            strings = _TOML_STRING_RE.findall(value)
            if strings:
                found[key] = strings[0][0] or strings[0][1]
    return found


def init_binary(conf_texts: t.Iterable[str], exists: t.Callable[[str], bool] = os.path.isfile) -> dict[str, t.Any]:
    """Where podman's ``--init`` binary is, as podman resolves it: ``{"path", "found", "configured"}``."""
    settings: dict[str, t.Any] = {}
    for text in conf_texts:
        settings.update(parse_engine_paths(text))
    if settings.get("init_path"):
        path = settings["init_path"]
        return {"path": path, "found": exists(path), "configured": True}
    for directory in settings.get("helper_binaries_dir") or HELPER_BINARIES_DIRS:
        candidate = os.path.join(directory, INIT_BINARY)
        if exists(candidate):
            return {"path": candidate, "found": True, "configured": False}
    return {"path": os.path.join(HELPER_BINARIES_DIRS[2], INIT_BINARY), "found": False, "configured": False}


# --- subordinate ids -----------------------------------------------------------------------------


def subid_ranges(text: str, user: str, uid: int) -> list[tuple[int, int]]:
    """The (start, count) ranges of ``user`` (by name or uid) in an /etc/subuid or /etc/subgid text."""
    ranges = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or line.lstrip().startswith("#"):
            continue
        owner, start, count = fields
        if owner in (user, str(uid)) and start.isdigit() and count.isdigit():
            ranges.append((int(start), int(count)))
    return ranges


# --- user namespaces -----------------------------------------------------------------------------


def keep_id_support(version: t.Sequence[int], rootless: bool) -> tuple[bool, str]:
    """Whether this podman runs ``--userns=keep-id:uid=N``, and if not, why."""
    have = version_key(version or ())
    if have < KEEP_ID_UID_MIN:
        needs = version_str(KEEP_ID_UID_MIN)
        return False, f"podman {version_str(version)} has no keep-id:uid= (needs podman {needs} or newer)"
    if not rootless and have < KEEP_ID_ROOTFUL_MIN:
        return False, (
            f"podman {version_str(version)} runs keep-id only for rootless containers "
            f"(root's containers need podman {version_str(KEEP_ID_ROOTFUL_MIN)} or newer)"
        )
    return True, ""


def resolve_userns(requested: str, version: t.Sequence[int], rootless: bool, uid: int, gid: int) -> dict[str, t.Any]:
    """The ``--userns`` value to run with, and a note when ``auto`` had to fall back.

    ``auto`` follows the guide (``keep-id:uid=<image uid>``, so files the server writes on the host
    belong to the user who ran podman) wherever this podman supports it; elsewhere (root's podman before
    4.5) it runs without a user namespace and the host directories are owned by the image's user.
    Any other value is passed as is; an explicit keep-id that this podman cannot run is a problem.
    """
    supported, why = keep_id_support(version, rootless)
    if requested == "auto":
        if supported:
            # The guide's form: uid only. The user's own group then keeps its number in the container, and
            # the image's group (0) stays a subordinate one; podman 4.3 rootless cannot map gid=0 at all
            # ("can't get final child's PID from pipe").
            return {"userns": f"keep-id:uid={uid}", "keep_id": True, "note": "", "problem": ""}
        return {
            "userns": "",
            "keep_id": False,
            "note": f"{why}: running without a user namespace, host directories owned by {uid}:{gid} instead",
            "problem": "",
        }
    keep_id = requested.startswith("keep-id")
    problem = ""
    if keep_id and not supported:
        problem = (
            f"vllm_profile_userns={requested} cannot run here: {why}. Set vllm_profile_userns to auto "
            "(keep-id where podman supports it) or to an empty string, or upgrade podman."
        )
    return {"userns": requested, "keep_id": keep_id, "note": "", "problem": problem}


# --- image users ---------------------------------------------------------------------------------


def numeric_user(spec: str | None) -> tuple[int, int] | None:
    """``(uid, gid)`` when an image's ``Config.User`` is fully numeric (``2000:0``), else None.

    ``2000`` alone leaves the group to the image's /etc/passwd, and names need the image's files:
    both are resolved by running the image (see ``vllm_image_info``).
    """
    if not spec:
        return (0, 0)
    user, _sep, group = spec.partition(":")
    if user.isdigit() and group.isdigit():
        return (int(user), int(group))
    return None


# --- errors --------------------------------------------------------------------------------------

_PODMAN_LOG_RE = re.compile(r'^time="[^"]*"\s+level=(\w+)\s+msg="(.*)"\s*$')


def error_line(text: str | None) -> str:
    """The line of podman's (or another tool's) stderr that says what went wrong.

    Podman ends with ``Error: ...``; before it may come warnings (``time=... level=warning msg=...``) and
    the output of the OCI runtime. The first ``Error:`` line wins, then an ``error``-level log line, then
    the last non-empty line.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error:"):
            return line[len("Error:") :].strip()
    for line in lines:
        match = _PODMAN_LOG_RE.match(line)
        if match and match.group(1) in ("error", "fatal"):
            return match.group(2)
    return lines[-1] if lines else ""


def failure_reason(result: t.Mapping[str, t.Any] | None) -> str:
    """One sentence for a failed task's result: its message plus the cause its stderr names.

    containers.podman's modules fail with ``Container X exited with code 125 when runed`` and keep
    podman's own words in ``stderr``; those words are the cause the user needs.
    """
    result = result or {}
    msg = str(result.get("msg") or "").strip()
    cause = error_line(result.get("stderr"))
    if not msg:
        return cause or "unknown error"
    if cause and cause not in msg:
        return f"{msg}: {cause}"
    return msg


# --- ports ---------------------------------------------------------------------------------------


def port_in_use(address: str, port: int) -> str:
    """Why ``address:port`` cannot be bound (``""`` when it is free)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address or "0.0.0.0", port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return "address already in use"
        if exc.errno == errno.EADDRNOTAVAIL:
            return "no such address on this host"
        return exc.strerror or str(exc)
    finally:
        sock.close()
    return ""


def published_host_ports(inspect: t.Mapping[str, t.Any]) -> set[int]:
    """Host ports a container (``podman container inspect`` entry) publishes."""
    ports = set()
    bindings = (inspect.get("HostConfig") or {}).get("PortBindings") or {}
    for entries in bindings.values():
        for entry in entries or []:
            host_port = str((entry or {}).get("HostPort") or "")
            if host_port.isdigit():
                ports.add(int(host_port))
    return ports


# --- sizes ---------------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes in ``2G``, ``512m``, ``1.5GiB``, ``1000`` (binary multiples, as podman's sizes)."""
    if isinstance(text, int):
        return text
    match = _SIZE_RE.match(str(text))
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 2G, 512M)")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


def human_size(value: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def existing_ancestor(path: str) -> str:
    """The nearest directory at or above ``path`` that exists."""
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


# --- the container's user on the host ------------------------------------------------------------


def userns_plan(requested: str, preflight: t.Mapping[str, t.Any], image: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """How the server's container maps its user, and who owns what it writes on the host.

    ``preflight`` is a ``vllm_host_preflight`` result (podman version, rootless, the connecting user),
    ``image`` a ``vllm_image_info`` result (the image's uid and gid).

    - rootless keep-id: the connecting user appears in the container as the image's user, so the host
      directories belong to the connecting user;
    - root's podman, keep-id (4.5+) or none: root's whole id range is mapped one to one (podman 5.4.2 shows
      IDMappings 0:0:4294967295 for keep-id:uid=1001), so the image's user writes as itself on the host and
      the directories belong to it;
    - rootless without keep-id: the image's user is a subordinate id on the host; the directories are the
      user's and the container cannot write them unless the user says otherwise (noted).
    Directories are group-writable for the image's group as well (OpenShift-style images run with gid 0).
    """
    podman = preflight.get("podman") or {}
    user = preflight.get("user") or {}
    uid, gid = int(image["uid"]), int(image["gid"])
    version = parse_version(podman.get("version")) or (0,)
    rootless = bool(podman.get("rootless"))
    plan = resolve_userns(requested, version, rootless, uid, gid)
    if rootless:
        owner, group = int(user.get("uid", 0)), int(user.get("gid", 0))
    else:
        owner, group = uid, gid
    if rootless and not plan["keep_id"]:
        plan["note"] = (
            f"rootless podman without keep-id: the image's user {uid} is a subordinate id on this host and cannot "
            "write the host directories; use vllm_profile_userns: auto"
        )
    plan.update(dir_owner=owner, dir_group=group, uid=uid, gid=gid)
    return plan
