# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for module_utils/_podman.py over real podman texts (stderr lines recorded from podman 4.3.1 on
Debian 12, containers.conf files as podman ships them)."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _podman

# Recorded from podman 4.3.1 (this harness), one per failure the role must explain.
PORT_TAKEN = "Error: cannot listen on the TCP port: listen tcp4 127.0.0.1:18777: bind: address already in use\n"
CDI_UNKNOWN = "Error: setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=7\n"
NO_INIT = "Error: container-init binary not found on the host: stat /nonexistent/catatonit: no such file or directory\n"
KEEP_ID_ROOT = "Error: keep-id is only supported in rootless mode\n"
WITH_WARNINGS = (
    'time="2026-11-30T00:40:01Z" level=warning msg="The cgroupv2 manager is set to systemd but there is no '
    'systemd user session available"\n'
    "Error: setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=7\n"
)
RUNTIME_ONLY = (
    'time="2026-11-30T00:40:01Z" level=warning msg="ignored"\n'
    'time="2026-11-30T00:40:01Z" level=error msg="runc: exec failed: unable to start container process"\n'
)


@pytest.mark.parametrize(
    ("stderr", "line"),
    [
        (PORT_TAKEN, "cannot listen on the TCP port: listen tcp4 127.0.0.1:18777: bind: address already in use"),
        (CDI_UNKNOWN, "setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=7"),
        (
            NO_INIT,
            "container-init binary not found on the host: stat /nonexistent/catatonit: no such file or directory",
        ),
        (KEEP_ID_ROOT, "keep-id is only supported in rootless mode"),
        (WITH_WARNINGS, "setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=7"),
        (RUNTIME_ONLY, "runc: exec failed: unable to start container process"),
        ("plain last line\n\n", "plain last line"),
        ("", ""),
        (None, ""),
    ],
)
def test_error_line_picks_the_cause(stderr, line) -> None:
    assert _podman.error_line(stderr) == line


def test_failure_reason_adds_podmans_words_to_the_modules_message() -> None:
    result = {"msg": "Container vllm-profile exited with code 126 when runed", "stderr": CDI_UNKNOWN, "rc": 126}
    assert _podman.failure_reason(result) == (
        "Container vllm-profile exited with code 126 when runed: "
        "setting up CDI devices: unresolvable CDI devices nvidia.com/gpu=7"
    )


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ({"msg": "already says: address already in use", "stderr": "Error: address already in use"}, None),
        ({"msg": "a preflight sentence naming the fix."}, "a preflight sentence naming the fix."),
        (
            {"stderr": PORT_TAKEN},
            "cannot listen on the TCP port: listen tcp4 127.0.0.1:18777: bind: address already in use",
        ),
        ({}, "unknown error"),
        (None, "unknown error"),
    ],
)
def test_failure_reason_without_repeats(result, reason) -> None:
    assert _podman.failure_reason(result) == (reason or result["msg"])


# --- containers.conf ---------------------------------------------------------------------------

SHIPPED_CONF = """\
[containers]
# init_path = "/usr/libexec/podman/catatonit"
default_ulimits = [
  "nofile=1024:1024",
]

[engine]
#helper_binaries_dir = [
#  "/usr/local/libexec/podman",
#]
runtime = "runc"
"""

CUSTOM = """\
[engine]
helper_binaries_dir = [
  "/opt/podman/libexec",   # site build
  '/usr/libexec/podman',
]
init_path = "/opt/bin/catatonit"
"""


def test_commented_keys_are_ignored_and_defaults_apply() -> None:
    assert _podman.parse_engine_paths(SHIPPED_CONF) == {}
    init = _podman.init_binary([SHIPPED_CONF], exists=lambda path: path == "/usr/lib/podman/catatonit")
    assert init == {"path": "/usr/lib/podman/catatonit", "found": True, "configured": False}


def test_multiline_lists_and_init_path() -> None:
    assert _podman.parse_engine_paths(CUSTOM) == {
        "helper_binaries_dir": ["/opt/podman/libexec", "/usr/libexec/podman"],
        "init_path": "/opt/bin/catatonit",
    }
    assert _podman.init_binary([CUSTOM], exists=lambda path: False) == {
        "path": "/opt/bin/catatonit",
        "found": False,
        "configured": True,
    }


def test_later_files_win_and_helper_dirs_are_searched_in_order() -> None:
    later = '[engine]\nhelper_binaries_dir = ["/a", "/b"]\n'
    init = _podman.init_binary([CUSTOM.replace("init_path", "#init_path"), later], exists=lambda p: p == "/b/catatonit")
    assert init["path"] == "/b/catatonit"


def test_nothing_found_names_podmans_usual_place() -> None:
    init = _podman.init_binary([""], exists=lambda path: False)
    assert init == {"path": "/usr/libexec/podman/catatonit", "found": False, "configured": False}


def test_containers_conf_env_replaces_the_search(tmp_path) -> None:
    assert _podman.containers_conf_files(False, {"CONTAINERS_CONF": "/x.conf"}, "/root") == ["/x.conf"]
    files = _podman.containers_conf_files(True, {"XDG_CONFIG_HOME": str(tmp_path)}, "/home/u")
    assert files[0] == "/usr/share/containers/containers.conf"
    assert files[-1] == str(tmp_path / "containers" / "containers.conf")
    assert _podman.containers_conf_files(True, {}, "/home/u")[-1] == "/home/u/.config/containers/containers.conf"


# --- subordinate ids ---------------------------------------------------------------------------

SUBUID = """\
# managed by useradd
alice:100000:65536
1005:165536:65536
bob:231072:1000
broken line
"""


@pytest.mark.parametrize(
    ("user", "uid", "ranges"),
    [
        ("alice", 1000, [(100000, 65536)]),
        ("carol", 1005, [(165536, 65536)]),
        ("bob", 1002, [(231072, 1000)]),
        ("dave", 1003, []),
    ],
)
def test_subid_ranges(user, uid, ranges) -> None:
    assert _podman.subid_ranges(SUBUID, user, uid) == ranges


# --- user namespaces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "rootless", "supported"),
    [
        ((4, 3, 1), True, True),  # this harness, rootless
        ((4, 3, 1), False, False),  # this harness, root: "keep-id is only supported in rootless mode"
        ((4, 4, 4), False, False),
        ((4, 5, 0), False, True),  # containers/podman PR 17350
        ((4, 9, 4), False, True),  # RHEL 9.4
        ((5, 4, 2), False, True),  # Debian 13, RHEL 9.6+
        ((4, 2, 0), True, False),  # no keep-id:uid= yet
    ],
)
def test_keep_id_support(version, rootless, supported) -> None:
    ok, why = _podman.keep_id_support(version, rootless)
    assert ok is supported
    assert bool(why) is not supported


def test_auto_is_the_guides_keep_id_with_the_images_user() -> None:
    plan = _podman.resolve_userns("auto", (5, 4, 2), False, 2000, 0)
    assert plan == {"userns": "keep-id:uid=2000", "keep_id": True, "note": "", "problem": ""}


def test_auto_on_roots_podman_43_runs_without_a_namespace_and_says_why() -> None:
    plan = _podman.resolve_userns("auto", (4, 3, 1), False, 2000, 0)
    assert plan["userns"] == ""
    assert not plan["problem"]
    assert "podman 4.3.1 runs keep-id only for rootless containers" in plan["note"]
    assert "owned by 2000:0" in plan["note"]


def test_explicit_keep_id_on_roots_podman_43_is_a_problem_naming_the_fix() -> None:
    plan = _podman.resolve_userns("keep-id:uid=1001", (4, 3, 1), False, 1001, 0)
    assert plan["userns"] == "keep-id:uid=1001"
    assert "root's containers need podman 4.5.0 or newer" in plan["problem"]
    assert "vllm_profile_userns to auto" in plan["problem"]


@pytest.mark.parametrize("requested", ["", "host", "auto:size=65536"])
def test_other_values_pass_through(requested) -> None:
    plan = _podman.resolve_userns(requested, (4, 3, 1), False, 1001, 0)
    assert plan == {"userns": requested, "keep_id": False, "note": "", "problem": ""}


PREFLIGHT_ROOT_43 = {"podman": {"version": "4.3.1", "rootless": False}, "user": {"uid": 0, "gid": 0}}
PREFLIGHT_ROOT_5 = {"podman": {"version": "5.4.2", "rootless": False}, "user": {"uid": 0, "gid": 0}}
PREFLIGHT_ROOTLESS = {"podman": {"version": "4.9.4", "rootless": True}, "user": {"uid": 1000, "gid": 1000}}
IMAGE_2000 = {"uid": 2000, "gid": 0}


@pytest.mark.parametrize(
    ("preflight", "userns", "owner"),
    [
        (PREFLIGHT_ROOT_43, "", (2000, 0)),  # no namespace: the image's user writes as itself
        # root's keep-id maps root's range one to one (podman 5.4.2: IDMappings 0:0:4294967295): the server runs
        # as 2000 on the host too (measured on the podman 5 stand-in, test_podman5_host.py)
        (PREFLIGHT_ROOT_5, "keep-id:uid=2000", (2000, 0)),
        (PREFLIGHT_ROOTLESS, "keep-id:uid=2000", (1000, 1000)),  # the user appears as 2000:0
    ],
)
def test_userns_plan_owns_the_host_directories_for_whoever_writes_them(preflight, userns, owner) -> None:
    plan = _podman.userns_plan("auto", preflight, IMAGE_2000)
    assert plan["userns"] == userns
    assert (plan["dir_owner"], plan["dir_group"]) == owner
    assert (plan["uid"], plan["gid"]) == (2000, 0)


def test_userns_plan_rootless_without_keep_id_warns() -> None:
    plan = _podman.userns_plan("", PREFLIGHT_ROOTLESS, IMAGE_2000)
    assert "cannot write the host directories" in plan["note"]


# --- images, ports, sizes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "ids"),
    [("2000:0", (2000, 0)), ("", (0, 0)), ("2000", None), ("vllm", None), ("vllm:root", None), ("1001:wheel", None)],
)
def test_numeric_user(spec, ids) -> None:
    assert _podman.numeric_user(spec) == ids


def test_port_in_use_and_free() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert _podman.port_in_use("127.0.0.1", port) == "address already in use"
    assert _podman.port_in_use("127.0.0.1", port) == ""
    assert _podman.port_in_use("192.0.2.1", port) == "no such address on this host"


def test_published_host_ports_from_inspect() -> None:
    inspect = {"HostConfig": {"PortBindings": {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18000"}]}}}
    assert _podman.published_host_ports(inspect) == {18000}
    assert _podman.published_host_ports({"HostConfig": {"PortBindings": None}}) == set()


@pytest.mark.parametrize(
    ("text", "size"),
    [("2G", 2 << 30), ("512m", 512 << 20), ("1.5GiB", 3 << 29), ("1000", 1000), ("0", 0), (4096, 4096)],
)
def test_parse_size(text, size) -> None:
    assert _podman.parse_size(text) == size


def test_parse_size_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="not a size"):
        _podman.parse_size("lots")


def test_existing_ancestor(tmp_path) -> None:
    assert _podman.existing_ancestor(str(tmp_path / "a" / "b")) == str(tmp_path)
    assert _podman.existing_ancestor(str(tmp_path)) == str(tmp_path)
