# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for module_utils/_cdi.py on real CDI specs and `nvidia-ctk cdi list` outputs.

Fixtures: tests/fixtures/cdi/ (see tests/fixtures/PROVENANCE.md). The specs are stored as
``*.yaml.txt`` so that the linters leave the published text alone; tests parse them under a
``.yaml`` name, as podman would see them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _cdi

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "cdi"

WSL = "v0.3.0_wsl2_all-only_cdubs08.yaml.txt"
ELIDED = "v0.5.0_4x-gpu_index+uuid_580.126.09_ELIDED-by-author_ssup2.yaml.txt"
TRUNCATED = "v0.5.0_ctk-1.12.0_tesla-p100_TRUNCATED-by-poster.yaml.txt"
T4_060 = "v0.6.0_tesla-t4_g4dn_docker-docs.yaml.txt"
T4_070 = "v0.7.0_tesla-t4_gcp_ctk-1.20.0_kwx4957-study.yaml.txt"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def spec(name: str, path: str = "/etc/cdi/nvidia.yaml") -> dict:
    return _cdi.parse_spec(text(name), path)


# --------------------------------------------------------------------------- parsing real specs

SPEC_CASES = {
    WSL: {
        "cdiVersion": "0.3.0",
        "kind": "nvidia.com/gpu",
        "devices": ["all"],
        "required_version": "0.3.0",
        "required_features": [],
        "driver_versions": [],
        "errors": [],
    },
    # The author elided the `all` device and put `...` before the spec-level containerEdits: like the
    # Go CDI library, only the first YAML document is read, so the 580.126.09 mounts after it are not.
    ELIDED: {
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": [
            "0",
            "1",
            "2",
            "3",
            "GPU-3e953d37-558d-fb20-8eca-25de8b98f5a7",
            "GPU-78744930-b3ce-0ddd-4a63-f730116fc653",
            "GPU-7c33d7b8-8cc2-676e-7678-b9a86d12cd93",
            "GPU-8a73f553-110d-eaae-45ef-751617ac723c",
        ],
        "required_version": "0.5.0",
        "required_features": ["device names starting with a digit"],
        "driver_versions": [],
        "errors": [],
    },
    # Posted truncated: no kind and no devices, so podman would skip it.
    TRUNCATED: {
        "cdiVersion": "0.5.0",
        "kind": None,
        "devices": [],
        "required_version": "0.3.0",
        "required_features": [],
        "driver_versions": [],
        "errors": ["kind is missing", "devices is missing or empty"],
    },
    # cdiVersion 0.6.0 although by the CDI rules the content needs only 0.5.0 (digit-first name "0").
    T4_060: {
        "cdiVersion": "0.6.0",
        "kind": "nvidia.com/gpu",
        "devices": ["0", "GPU-6cf00fa7-59ac-16f2-3e83-d24ccdc56f84", "all"],
        "required_version": "0.5.0",
        "required_features": ["device names starting with a digit"],
        "driver_versions": ["570.133.20"],
        "errors": [],
    },
    T4_070: {
        "cdiVersion": "0.7.0",
        "kind": "nvidia.com/gpu",
        "devices": ["0", "GPU-8f1f4d06-07fd-27a7-52d5-e58aa060d256", "all"],
        "required_version": "0.7.0",
        "required_features": ["additionalGids"],
        "driver_versions": ["615.71.09"],
        "errors": [],
    },
}


@pytest.mark.parametrize("name", sorted(SPEC_CASES))
def test_parse_real_specs(name: str) -> None:
    parsed = spec(name)
    for key, expected in SPEC_CASES[name].items():
        assert parsed[key] == expected, key
    assert parsed["qualified_devices"] == [f"{parsed['kind']}={dev}" for dev in parsed["devices"]] or not parsed["kind"]
    assert parsed["read_by_podman"] is not bool(parsed["errors"])


@pytest.mark.parametrize("name", [WSL, ELIDED, T4_060, T4_070])
def test_json_and_yaml_forms_parse_alike(name: str) -> None:
    as_json = json.dumps(next(yaml.safe_load_all(text(name))))
    from_yaml = spec(name, "/etc/cdi/a.yaml")
    from_json = _cdi.parse_spec(as_json, "/etc/cdi/a.json")
    assert from_json["format"] == "json"
    for key in ("cdiVersion", "kind", "devices", "required_version", "driver_versions", "errors"):
        assert from_json[key] == from_yaml[key]


def test_driver_libraries_of_real_spec() -> None:
    libs = spec(T4_060)["driver_libraries"]
    assert libs == [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.570.133.20",
        "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.570.133.20",
    ]
    # WSL mounts libcuda.so.1.1 and libnvidia-ml.so.1: not driver versions
    assert spec(WSL)["driver_libraries"] == []
    assert spec(T4_070)["driver_libraries"] == [
        "/usr/lib64/libcuda.so.615.71.09",
        "/usr/lib64/libnvidia-ml.so.615.71.09",
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("cdiVersion: 0.5.0\nkind: [unclosed\n", "invalid YAML"),
        ("- just\n- a list\n", "not a mapping"),
        ("cdiVersion: 0.5\nkind: a.com/b\ndevices: [{name: x}]\n", "not a semantic version"),
        ("cdiVersion: 0.5.0\nkind: nvidia\ndevices: [{name: x}]\n", "not of the form vendor.com/class"),
        ("cdiVersion: 0.5.0\nkind: a.com/b\ndevices: [{name: -x}]\n", "device name '-x' is not valid"),
        ("cdiVersion: 0.5.0\nkind: a.com/b\ndevices: [{containerEdits: {}}]\n", "device #0 has no name"),
        ("cdiVersion: 0.3.0\nkind: a.com/b\ndevices: [{name: '0'}]\n", "must be at least v0.5.0"),
    ],
)
def test_invalid_specs(body: str, error: str) -> None:
    parsed = _cdi.parse_spec(body, "/etc/cdi/x.yaml")
    assert any(error in message for message in parsed["errors"]), parsed["errors"]
    assert parsed["read_by_podman"] is False


def test_invalid_json() -> None:
    parsed = _cdi.parse_spec('{"cdiVersion": "0.5.0",', "/etc/cdi/x.json")
    assert parsed["errors"][0].startswith("invalid JSON")


def test_real_070_spec_declared_too_low_is_rejected() -> None:
    """The same content with cdiVersion 0.5.0 is what the CDI library refuses ("must be at least v0.7.0")."""
    body = text(T4_070).replace("cdiVersion: 0.7.0", "cdiVersion: 0.5.0")
    parsed = _cdi.parse_spec(body, "/etc/cdi/nvidia.yaml")
    assert parsed["errors"] == [
        "cdiVersion 0.5.0 is too low for its content (additionalGids need 0.7.0); "
        'the CDI library rejects it ("the spec version must be at least v0.7.0")'
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"kind": "a.com/b", "devices": [{"name": "x"}]}, ("0.3.0", [])),
        ({"kind": "a.com/b", "devices": [{"name": "x", "containerEdits": {"mounts": [{"type": "bind"}]}}]}, "0.4.0"),
        (
            {"kind": "a.com/b", "devices": [{"name": "x", "containerEdits": {"deviceNodes": [{"hostPath": "/a"}]}}]},
            "0.5.0",
        ),
        ({"kind": "a.com/b", "devices": [{"name": "0:1"}]}, "0.5.0"),  # a MIG name
        ({"kind": "a.com/b", "annotations": {"k": "v"}, "devices": [{"name": "x"}]}, "0.6.0"),
        ({"kind": "a.com/b", "devices": [{"name": "x", "annotations": {"k": "v"}}]}, "0.6.0"),
        ({"kind": "a.com/b.c", "devices": [{"name": "x"}]}, "0.6.0"),
        ({"kind": "a.com/b", "containerEdits": {"additionalGids": [39]}, "devices": [{"name": "x"}]}, "0.7.0"),
        ({"kind": "a.com/b", "devices": [{"name": "x", "containerEdits": {"intelRdt": {"closID": "c"}}}]}, "0.7.0"),
    ],
)
def test_min_required_version(data: dict, expected) -> None:
    version, reasons = _cdi.min_required_version(data)
    if isinstance(expected, tuple):
        assert (version, reasons) == expected
    else:
        assert version == expected
        assert reasons


def test_mig_device_names_are_valid() -> None:
    body = (
        "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: [{name: '0:1'}, {name: 'MIG-0b090ecd-97b3'}, {name: all}]\n"
    )
    parsed = _cdi.parse_spec(body, "/etc/cdi/mig.yaml")
    assert parsed["errors"] == []
    assert parsed["qualified_devices"] == [
        "nvidia.com/gpu=0:1",
        "nvidia.com/gpu=MIG-0b090ecd-97b3",
        "nvidia.com/gpu=all",
    ]


# --------------------------------------------------------------------------- nvidia-ctk cdi list

CDI_LIST_CASES = {
    # stdout and stderr interleaved; non-TTY logfmt count line after the names
    "cdi-list_ctk-1.19.0_4x-fake-gpu_non-tty-logging.txt": (
        [f"nvidia.com/gpu={i}" for i in range(4)]
        + [f"nvidia.com/gpu=GPU-{i}-FAKE-UUID" for i in range(4)]
        + ["nvidia.com/gpu=all"],
        9,
    ),
    # TTY form, index + UUID naming (1.15+ default)
    "cdi-list_ctk-1.19.1_dgx-spark_3-devices.txt": (
        ["nvidia.com/gpu=0", "nvidia.com/gpu=GPU-d17572cc-10a2-4a90-04a1-4ea64aac04b2", "nvidia.com/gpu=all"],
        3,
    ),
    # TTY form with logrus padding, index-only naming (pre-1.15 default)
    "cdi-list_index-only-naming_podman-issue-20257.txt": (["nvidia.com/gpu=0", "nvidia.com/gpu=all"], 2),
}


@pytest.mark.parametrize("name", sorted(CDI_LIST_CASES))
def test_parse_cdi_list(name: str) -> None:
    devices, found = CDI_LIST_CASES[name]
    parsed = _cdi.parse_cdi_list(text(name))
    assert parsed == {"devices": devices, "found": found}
    assert parsed["found"] == len(parsed["devices"])


# --------------------------------------------------------------------------- spec dirs


def test_spec_files_and_available_devices(tmp_path: Path) -> None:
    etc, run = tmp_path / "etc-cdi", tmp_path / "run-cdi"
    etc.mkdir()
    run.mkdir()
    (etc / "b-nvidia.yaml").write_text(text(T4_060))
    (etc / "a-wsl.json").write_text(json.dumps(yaml.safe_load(text(WSL))))
    (etc / "c-truncated.yaml").write_text(text(TRUNCATED))
    (etc / "d-misnamed.yml").write_text(text(T4_070))
    (etc / "notes.txt").write_text("not a spec")
    (etc / "sub").mkdir()
    (etc / "sub" / "nested.yaml").write_text(text(WSL))
    (run / "nvidia.yaml").write_text(text(T4_070))
    files = _cdi.spec_files([str(etc), str(run), str(tmp_path / "missing")])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in files] == [
        "etc-cdi/a-wsl.json",
        "etc-cdi/b-nvidia.yaml",
        "etc-cdi/c-truncated.yaml",
        "etc-cdi/d-misnamed.yml",
        "run-cdi/nvidia.yaml",
    ]
    specs = [_cdi.read_spec_file(f) for f in files]
    assert [s["read_by_podman"] for s in specs] == [True, True, False, False, True]
    # nvidia.com/gpu=all comes from WSL and both T4 specs: listed once; the .yml file adds nothing
    assert _cdi.available_devices(specs) == [
        "nvidia.com/gpu=all",
        "nvidia.com/gpu=0",
        "nvidia.com/gpu=GPU-6cf00fa7-59ac-16f2-3e83-d24ccdc56f84",
        "nvidia.com/gpu=GPU-8f1f4d06-07fd-27a7-52d5-e58aa060d256",
    ]
    assert _cdi.missing_devices(["nvidia.com/gpu=all", "nvidia.com/gpu=1"], _cdi.available_devices(specs)) == [
        "nvidia.com/gpu=1"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    parsed = _cdi.read_spec_file(str(path))
    assert parsed["errors"][0].startswith("cannot read")


# --------------------------------------------------------------------------- host driver


def test_proc_version_real() -> None:
    assert _cdi.parse_proc_driver_version(text("proc-driver-nvidia-version_open-580.95.05_lxc902.txt")) == "580.95.05"


@pytest.mark.parametrize(
    ("line", "version"),
    [
        # the proprietary module's wording (format of NVIDIA's nv-procfs.c; constructed, not a capture)
        ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n", "550.54.14"),
        ("NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  580.65.06  Release Build  (x)\n", "580.65.06"),
        ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  390.157  Wed Oct 12 09:19:07 UTC 2022\n", "390.157"),
        ("GCC version: gcc 12\n", None),
        ("", None),
    ],
)
def test_proc_version_forms(line: str, version: str | None) -> None:
    assert _cdi.parse_proc_driver_version(line) == version


@pytest.mark.parametrize(("content", "version"), [("580.95.05\n", "580.95.05"), ("", None), ("garbage\n", None)])
def test_module_version(content: str, version: str | None) -> None:
    assert _cdi.parse_module_version(content) == version


def _host(
    root: Path, kernel: str | None = None, proc: str | None = None, libs: dict[str, list[str]] | None = None
) -> None:
    if kernel:
        (root / "sys/module/nvidia").mkdir(parents=True)
        (root / "sys/module/nvidia/version").write_text(kernel + "\n")
    if proc:
        (root / "proc/driver/nvidia").mkdir(parents=True)
        (root / "proc/driver/nvidia/version").write_text(proc)
    for lib_dir, versions in (libs or {}).items():
        (root / lib_dir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for version in versions:
            for name in (f"libcuda.so.{version}", f"libnvidia-ml.so.{version}", "libcuda.so.1"):
                (root / lib_dir.lstrip("/") / name).write_text("")


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({}, {"version": None, "kernel_module_version": None, "library_versions": [], "reboot_pending": False}),
        ({"kernel": "580.95.05"}, {"version": "580.95.05", "source": "/sys/module/nvidia/version"}),
        (
            {"proc": (FIXTURES / "proc-driver-nvidia-version_open-580.95.05_lxc902.txt").read_text()},
            {"version": "580.95.05", "source": "/proc/driver/nvidia/version"},
        ),
        (
            {"libs": {"/usr/lib64": ["580.126.09"]}},
            {"version": "580.126.09", "source": "libraries in /usr/lib64", "kernel_module_version": None},
        ),
        ({"kernel": "580.95.05", "libs": {"/usr/lib/x86_64-linux-gnu": ["580.95.05"]}}, {"reboot_pending": False}),
        # libraries upgraded under the running module: a fresh spec would name the libraries' version
        (
            {"kernel": "570.133.20", "libs": {"/usr/lib/x86_64-linux-gnu": ["580.95.05"]}},
            {"version": "580.95.05", "kernel_module_version": "570.133.20", "reboot_pending": True},
        ),
        # two library versions installed: ambiguous, so the loaded module decides
        (
            {"kernel": "580.95.05", "libs": {"/usr/lib64": ["570.133.20", "580.95.05"]}},
            {"version": "580.95.05", "library_versions": ["570.133.20", "580.95.05"], "reboot_pending": False},
        ),
    ],
)
def test_detect_host_driver(tmp_path: Path, setup: dict, expected: dict) -> None:
    _host(tmp_path, **setup)
    host = _cdi.detect_host_driver(str(tmp_path))
    for key, value in expected.items():
        assert host[key] == value, key


def test_staleness(tmp_path: Path) -> None:
    t4 = spec(T4_060)
    _host(tmp_path, libs={"/usr/lib/x86_64-linux-gnu": ["570.133.20"]})
    fits = _cdi.detect_host_driver(str(tmp_path))
    assert _cdi.staleness(t4, fits, str(tmp_path)) == []
    # driver upgraded: the old libraries are gone and the host reports the new version
    upgraded = tmp_path / "upgraded"
    _host(upgraded, kernel="580.95.05", libs={"/usr/lib/x86_64-linux-gnu": ["580.95.05"]})
    reasons = _cdi.staleness(t4, _cdi.detect_host_driver(str(upgraded)), str(upgraded))
    assert reasons == [
        "the spec names driver 570.133.20 but the host has driver 580.95.05 "
        "(from libraries in /usr/lib/x86_64-linux-gnu)",
        "the spec mounts /usr/lib/x86_64-linux-gnu/libcuda.so.570.133.20, which no longer exists on the host",
        "the spec mounts /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.570.133.20, which no longer exists on the host",
    ]
    # a user-given version
    assert _cdi.staleness(t4, {"version": "570.133.20"}, str(tmp_path)) == []
    assert _cdi.staleness(t4, {"version": "575.1.2", "source": "the driver_version option"}, str(tmp_path)) == [
        "the spec names driver 570.133.20 but the host has driver 575.1.2 (from the driver_version option)"
    ]


def test_staleness_cannot_tell_without_versions(tmp_path: Path) -> None:
    assert _cdi.staleness(spec(WSL), {"version": "580.95.05"}, str(tmp_path)) == []
    assert _cdi.staleness(None, {}) == ["the spec does not exist"]
    assert _cdi.staleness(spec(TRUNCATED), {}) == [
        "the spec is not valid: kind is missing; devices is missing or empty"
    ]


# --------------------------------------------------------------------------- podman compatibility


@pytest.mark.parametrize(
    ("podman", "maximum"),
    [
        ((3, 4, 4), None),
        ((4, 0, 3), None),
        ((4, 1, 0), "0.4.0"),
        ((4, 2, 0), "0.4.0"),
        ((4, 3, 1), "0.5.0"),
        ((4, 5, 1), "0.5.0"),
        ((4, 6, 2), "0.6.0"),
        ((4, 7, 0), "0.6.0"),
        ((4, 9, 3), "0.6.0"),
        ((4, 9, 4), "0.6.0"),
        ((5, 0, 2), "0.6.0"),
        ((5, 1), "0.7.0"),
        ((5, 2, 0), "0.8.0"),
        ((5, 7, 0), "0.8.0"),
        ((6, 1, 3), "0.8.0"),
    ],
)
def test_podman_max_spec_version(podman: tuple, maximum: str | None) -> None:
    assert _cdi.podman_max_spec_version(podman)[0] == maximum


COMPAT_CASES = [
    # (podman, spec fixture, error expected)
    ((4, 3, 1), WSL, False),
    ((4, 3, 1), ELIDED, False),
    ((4, 3, 1), T4_060, True),
    ((4, 3, 1), T4_070, True),
    ((4, 1, 0), ELIDED, True),
    ((4, 9, 3), T4_060, False),
    ((4, 9, 3), T4_070, True),
    ((5, 0, 2), T4_070, True),
    ((5, 1, 0), T4_070, False),
    ((5, 4, 2), T4_070, False),
    ((3, 4, 4), WSL, True),
]


@pytest.mark.parametrize(("podman", "name", "fails"), COMPAT_CASES)
def test_compat_matrix(podman: tuple, name: str, fails: bool) -> None:
    parsed = spec(name)
    result = _cdi.check_podman_compat([parsed], podman)
    assert bool(result["errors"]) is fails
    assert (parsed["path"] in result["skipped"]) is fails
    if fails:
        assert ".".join(map(str, podman)) in result["errors"][0]


def test_compat_message_podman_49_on_toolkit_070_spec() -> None:
    (message,) = _cdi.check_podman_compat([spec(T4_070)], (4, 9, 3))["errors"]
    assert message.startswith(
        "/etc/cdi/nvidia.yaml has cdiVersion 0.7.0, but podman 4.9.3 reads CDI specs only up to cdiVersion 0.6.0"
    )
    assert '"unresolvable CDI devices"' in message
    assert "upgrade podman to 5.1 or newer" in message
    assert "--feature-flag=no-additional-gids-for-device-nodes" in message
    assert "nvidia-cdi-refresh.env" in message
    assert "older than 1.19.1" in message


def test_compat_message_podman_43_on_060_spec_suggests_regenerating() -> None:
    (message,) = _cdi.check_podman_compat([spec(T4_060)], (4, 3, 1))["errors"]
    assert "cdiVersion 0.6.0 (its content needs only 0.5.0), but podman 4.3.1" in message
    assert "upgrade podman to 4.6 or newer" in message
    assert "regenerate the spec with the lowest cdiVersion its content needs (0.5.0" in message


def test_compat_unknown_future_version_only_warns() -> None:
    future = _cdi.parse_spec("cdiVersion: 0.9.0\nkind: a.com/b\ndevices: [{name: x}]\n", "/etc/cdi/f.yaml")
    result = _cdi.check_podman_compat([future], (5, 6, 0))
    assert result["errors"] == []
    assert "newer than any CDI spec version this collection knows" in result["warnings"][0]
    # an old podman is known not to read it
    assert _cdi.check_podman_compat([future], (4, 9, 3))["errors"]


def test_compat_ignores_invalid_specs() -> None:
    assert _cdi.check_podman_compat([spec(TRUNCATED)], (4, 3, 1))["errors"] == []


def test_first_podman_reading() -> None:
    assert [_cdi.first_podman_reading(v) for v in ("0.3.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "0.9.0")] == [
        "4.1",
        "4.3",
        "4.6",
        "5.1",
        "5.2",
        None,
    ]


# --------------------------------------------------------------------------- a real GPU host (H200, driver 580.159.04)

H200 = "h200_580.159.04_"


def test_real_h200_kernel_version_files() -> None:
    assert _cdi.parse_module_version(text(f"{H200}sys-module-nvidia-version.txt")) == "580.159.04"
    assert _cdi.parse_proc_driver_version(text(f"{H200}proc-driver-nvidia-version.txt")) == "580.159.04"


def test_real_h200_ldcache() -> None:
    """That host keeps the driver in /usr/local/nvidia/lib64 (plus links in /lib), found only via the ld cache."""
    assert _cdi.ldcache_driver_libraries(text(f"{H200}ldconfig-p.txt")) == [
        "/usr/local/nvidia/lib64/libnvidia-ml.so.1",
        "/lib/libnvidia-ml.so.1",
        "/usr/local/nvidia/lib64/libcuda.so.1",
        "/lib/libcuda.so.1",
    ]


def test_detect_host_driver_through_the_ld_cache(tmp_path: Path) -> None:
    """The H200 host's layout rebuilt under a temp root (the link names and targets seen there):
    /lib/libcuda.so.1 -> /usr/local/nvidia/lib64/libcuda.so.1 -> libcuda.so.580.159.04."""
    nv = tmp_path / "usr/local/nvidia/lib64"
    nv.mkdir(parents=True)
    (tmp_path / "lib").mkdir()
    for lib in ("libcuda", "libnvidia-ml"):
        (nv / f"{lib}.so.580.159.04").write_text("")
        (nv / f"{lib}.so.1").symlink_to(f"{lib}.so.580.159.04")
        (tmp_path / "lib" / f"{lib}.so.1").symlink_to(f"/usr/local/nvidia/lib64/{lib}.so.1")
    (tmp_path / "sys/module/nvidia").mkdir(parents=True)
    (tmp_path / "sys/module/nvidia/version").write_text(text(f"{H200}sys-module-nvidia-version.txt"))
    paths = _cdi.ldcache_driver_libraries(text(f"{H200}ldconfig-p.txt"))
    # the usual dirs hold nothing there; the ld cache finds the libraries
    assert _cdi.detect_host_driver(str(tmp_path))["library_versions"] == []
    host = _cdi.detect_host_driver(str(tmp_path), ldcache_paths=paths)
    assert host == {
        "version": "580.159.04",
        "source": "libraries in /usr/local/nvidia/lib64",
        "kernel_module_version": "580.159.04",
        "library_versions": ["580.159.04"],
        "reboot_pending": False,
    }
