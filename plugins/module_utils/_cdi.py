# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
#
# PRIVATE to the collection: may change at any time. Do not use from other collections.
"""Container Device Interface (CDI) specs: parse, list devices, date them against the driver,
and check them against what the host's podman can read.

Pure functions (text in, data out) except ``read_spec_file``, ``spec_files`` and
``detect_host_driver``, which read files under a ``root`` that tests point at a temp dir.
"""

from __future__ import annotations

import json
import os
import re
import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._version import parse_version, version_str

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - hosts without PyYAML; the module reports it
    yaml = None
    HAS_YAML = False

# The CDI library reads only these suffixes (pkg/cdi/spec-dirs.go: ".json" and ".yaml"); ".yml" files
# are read here too, so that a misnamed spec is reported instead of silently ignored.
PODMAN_SPEC_SUFFIXES = (".json", ".yaml")
SPEC_SUFFIXES = (*PODMAN_SPEC_SUFFIXES, ".yml")

# Released CDI spec versions (specs-go/version.go, CDI v0.8.0 .. v1.x: CurrentVersion "0.8.0").
KNOWN_SPEC_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0")
LATEST_SPEC_VERSION = KNOWN_SPEC_VERSIONS[-1]

# Highest cdiVersion each podman release line can read: the spec versions known to the CDI library
# it vendors (a newer version is rejected as "invalid version", and 0.7.0 fields such as
# additionalGids fail strict decoding), so `podman run --device` ends in "unresolvable CDI devices".
# (first podman version of the range, highest readable cdiVersion, evidence)
PODMAN_CDI_SUPPORT: tuple[tuple[tuple[int, int, int], str, str], ...] = (
    (
        (4, 1, 0),
        "0.4.0",
        "podman 4.1 (May 2022) added CDI; spec 0.5.0 (digit-first device names such as nvidia.com/gpu=0) "
        "was released in CDI v0.5.0 in Aug 2022 (inferred from release dates, not tested)",
    ),
    (
        (4, 3, 0),
        "0.5.0",
        "podman 4.3.1 (Debian 12) applies 0.3.0-0.5.0 specs and rejects 0.6.0 (tested in this collection); "
        "a podman/v4 go.mod of May 2023 (buildah 1.30.1-dev, common 0.53.1-dev) still vendors CDI v0.5.4",
    ),
    (
        (4, 6, 0),
        "0.6.0",
        "a podman/v4 go.mod of the 4.6 line (buildah 1.31.1-dev, common 0.55.1-dev of July 2023, which went "
        "only into podman 4.6) vendors CDI v0.6.0; podman 4.9.3 fails on 0.7.0 with "
        '`json: unknown field "additionalGids"` (NVIDIA/nvidia-container-toolkit#1860, #1865, #1940)',
    ),
    (
        (5, 1, 0),
        "0.7.0",
        "containers/podman#22280 (CDI v0.7.1, 'Add support for CDI specification v0.7.0') shipped in podman 5.1",
    ),
    (
        (5, 2, 0),
        "0.8.0",
        "podman 5.2's go.mod vendors tags.cncf.io/container-device-interface v0.8.0",
    ),
)

ADDITIONAL_GIDS_FLAG = "no-additional-gids-for-device-nodes"

_KIND_VENDOR_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_KIND_CLASS_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$")
_DEVICE_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$")
# Driver-versioned user-space libraries in a spec: libcuda.so.580.126.09, libnvidia-ml.so.535.161
# (WSL's libcuda.so.1.1 is not a driver version: the first part has fewer than three digits).
_DRIVER_LIB_RE = re.compile(r"(?:^|/)lib(?:cuda|nvidia-ml)\.so\.(\d{3,}\.\d+(?:\.\d+)?)$")
_DRIVER_VERSION_RE = re.compile(r"^\d{3,}\.\d+(?:\.\d+)?$")
_PROC_VERSION_RE = re.compile(r"^NVRM version:.*?Kernel Module(?: for \S+)?\s+(\d{3,}\.\d+(?:\.\d+)?)\s", re.MULTILINE)
_QUALIFIED_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*=[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_FOUND_RE = re.compile(r"Found (\d+) CDI devices")
# "\tlibcuda.so.1 (libc6,x86-64) => /usr/local/nvidia/lib64/libcuda.so.1"
_LDCACHE_RE = re.compile(r"^\s*lib(?:cuda|nvidia-ml)\.so\.1 \([^)]*\) => (\S+)\s*$", re.MULTILINE)

LIBRARY_DIRS = (
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib",
    "/lib64",
)


class SpecParseError(ValueError):
    """A spec file that cannot be decoded (podman skips such files)."""


# --------------------------------------------------------------------------- versions


def semver(version: t.Any) -> tuple[int, int, int] | None:
    """``"0.5.0"`` -> (0, 5, 0); None for anything that is not X.Y.Z (the CDI library needs semver)."""
    return parse_version(version, "exact")


# --------------------------------------------------------------------------- parsing


def load_spec_text(text: str, fmt: str) -> t.Any:
    """Decode a spec. ``fmt`` is ``json`` or ``yaml``.

    For YAML only the first document is decoded, as the Go CDI library (go-yaml) does: nvidia-ctk
    writes one document, and text after a ``...`` end marker is never read.
    """
    if fmt == "json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise SpecParseError(f"invalid JSON: {exc}") from exc
    if not HAS_YAML:  # pragma: no cover - exercised only on hosts without PyYAML
        raise SpecParseError("PyYAML is required to read YAML CDI specs")
    try:
        return next(iter(yaml.safe_load_all(text)), None)
    except yaml.YAMLError as exc:
        raise SpecParseError(f"invalid YAML: {exc}") from exc


def spec_format(path: str) -> str:
    return "json" if path.endswith(".json") else "yaml"


def _edits(spec: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """Every containerEdits block: the spec-level one and each device's."""
    blocks = [spec.get("containerEdits")]
    blocks += [dev.get("containerEdits") for dev in spec.get("devices") or [] if isinstance(dev, dict)]
    return [block for block in blocks if isinstance(block, dict)]


def min_required_version(spec: dict[str, t.Any]) -> tuple[str, list[str]]:
    """Lowest cdiVersion the content needs, with the features that need it (mirrors specs-go/version.go)."""
    needs: list[tuple[tuple[int, int, int], str]] = []
    edits = _edits(spec)
    if any(block.get("intelRdt") for block in edits):
        needs.append(((0, 7, 0), "intelRdt"))
    if any(block.get("additionalGids") for block in edits):
        needs.append(((0, 7, 0), "additionalGids"))
    devices = [dev for dev in spec.get("devices") or [] if isinstance(dev, dict)]
    if spec.get("annotations") or any(dev.get("annotations") for dev in devices):
        needs.append(((0, 6, 0), "annotations"))
    kind = str(spec.get("kind") or "")
    if "/" in kind and "." in kind.split("/", 1)[1]:
        needs.append(((0, 6, 0), "a dot in the class of kind"))
    if any(str(dev.get("name") or "x")[:1].isdigit() for dev in devices):
        needs.append(((0, 5, 0), "device names starting with a digit"))
    nodes = [node for block in edits for node in block.get("deviceNodes") or [] if isinstance(node, dict)]
    if any(node.get("hostPath") for node in nodes):
        needs.append(((0, 5, 0), "deviceNodes hostPath"))
    if any(mount.get("type") for block in edits for mount in block.get("mounts") or [] if isinstance(mount, dict)):
        needs.append(((0, 4, 0), "mount type"))
    if not needs:
        return "0.3.0", []
    top = max(need[0] for need in needs)
    return version_str(top), [reason for version, reason in needs if version == top]


def driver_libraries(spec: dict[str, t.Any]) -> list[str]:
    """Host paths of driver-versioned libcuda/libnvidia-ml mounts (``.../libcuda.so.580.126.09``)."""
    paths = []
    for block in _edits(spec):
        for mount in block.get("mounts") or []:
            host_path = str(mount.get("hostPath") or "") if isinstance(mount, dict) else ""
            if _DRIVER_LIB_RE.search(host_path) and host_path not in paths:
                paths.append(host_path)
    return paths


def spec_driver_versions(spec: dict[str, t.Any]) -> list[str]:
    """Driver versions a spec was generated for: from its libcuda/libnvidia-ml mounts and from
    ``--host-driver-version=`` hook arguments (``enable-cuda-compat``)."""
    versions: list[str] = []
    for path in driver_libraries(spec):
        match = _DRIVER_LIB_RE.search(path)
        if match and match.group(1) not in versions:
            versions.append(match.group(1))
    for block in _edits(spec):
        for hook in block.get("hooks") or []:
            for raw in (hook.get("args") or []) if isinstance(hook, dict) else []:
                arg = str(raw)
                if arg.startswith("--host-driver-version="):
                    version = arg.split("=", 1)[1]
                    if _DRIVER_VERSION_RE.match(version) and version not in versions:
                        versions.append(version)
    return versions


def validate_spec(data: t.Any) -> list[str]:
    """Reasons the CDI library would reject the decoded spec (empty when it looks valid)."""
    if not isinstance(data, dict):
        return ["the spec is not a mapping"]
    errors = []
    version = data.get("cdiVersion")
    if not version:
        errors.append("cdiVersion is missing")
    elif semver(version) is None:
        errors.append(f"cdiVersion {version!r} is not a semantic version")
    kind = data.get("kind")
    if not kind:
        errors.append("kind is missing")
    else:
        vendor, _slash, klass = str(kind).partition("/")
        if not (_KIND_VENDOR_RE.match(vendor) and _KIND_CLASS_RE.match(klass)):
            errors.append(f"kind {kind!r} is not of the form vendor.com/class")
    devices = data.get("devices")
    if not isinstance(devices, list) or not devices:
        errors.append("devices is missing or empty")
    else:
        for index, dev in enumerate(devices):
            name = dev.get("name") if isinstance(dev, dict) else None
            if not name:
                errors.append(f"device #{index} has no name")
            elif not _DEVICE_NAME_RE.match(str(name)):
                errors.append(f"device name {name!r} is not valid")
    if not errors:
        required, reasons = min_required_version(data)
        if semver(version) < semver(required):
            errors.append(
                f"cdiVersion {version} is too low for its content ({', '.join(reasons)} need {required}); "
                f'the CDI library rejects it ("the spec version must be at least v{required}")'
            )
    return errors


def parse_spec(text: str, path: str = "<spec>") -> dict[str, t.Any]:
    """Everything this collection needs from one spec file; never raises for bad content."""
    fmt = spec_format(path)
    info: dict[str, t.Any] = {
        "path": path,
        "format": fmt,
        "cdiVersion": None,
        "kind": None,
        "devices": [],
        "qualified_devices": [],
        "required_version": None,
        "required_features": [],
        "driver_versions": [],
        "driver_libraries": [],
        "read_by_podman": path.endswith(PODMAN_SPEC_SUFFIXES),
        "errors": [],
    }
    try:
        data = load_spec_text(text, fmt)
    except SpecParseError as exc:
        info["errors"] = [str(exc)]
        info["read_by_podman"] = False
        return info
    if isinstance(data, dict):
        info["cdiVersion"] = None if data.get("cdiVersion") is None else str(data.get("cdiVersion"))
        info["kind"] = None if data.get("kind") is None else str(data.get("kind"))
        names = [str(dev.get("name")) for dev in data.get("devices") or [] if isinstance(dev, dict) and dev.get("name")]
        info["devices"] = names
        if info["kind"]:
            info["qualified_devices"] = [f"{info['kind']}={name}" for name in names]
        info["required_version"], info["required_features"] = min_required_version(data)
        info["driver_versions"] = spec_driver_versions(data)
        info["driver_libraries"] = driver_libraries(data)
    info["errors"] = validate_spec(data)
    if info["errors"]:
        info["read_by_podman"] = False
    return info


def read_spec_file(path: str) -> dict[str, t.Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        info = parse_spec("", path)
        info.update(errors=[f"cannot read: {exc}"], read_by_podman=False)
        return info
    return parse_spec(text, path)


def spec_files(spec_dirs: t.Sequence[str]) -> list[str]:
    """Spec files in each dir, in dir order then name order; subdirectories are skipped like CDI does."""
    found = []
    for spec_dir in spec_dirs:
        try:
            names = sorted(os.listdir(spec_dir))
        except OSError:
            continue
        for name in names:
            path = os.path.join(spec_dir, name)
            if name.endswith(SPEC_SUFFIXES) and os.path.isfile(path):
                found.append(path)
    return found


def available_devices(specs: t.Sequence[dict[str, t.Any]]) -> list[str]:
    """Fully-qualified names podman can resolve, in spec order, without duplicates."""
    names: list[str] = []
    for spec in specs:
        if spec["read_by_podman"]:
            names.extend(name for name in spec["qualified_devices"] if name not in names)
    return names


def missing_devices(required: t.Sequence[str], available: t.Sequence[str]) -> list[str]:
    return [name for name in required if name not in available]


def parse_cdi_list(text: str) -> dict[str, t.Any]:
    """``nvidia-ctk cdi list`` output (stdout and stderr, in any order) -> devices and the logged count.

    The count line is ``INFO[0000] Found N CDI devices`` on a terminal and
    ``time="..." level=info msg="Found N CDI devices"`` otherwise.
    """
    devices = [line.strip() for line in text.splitlines() if _QUALIFIED_RE.match(line.strip())]
    match = _FOUND_RE.search(text)
    return {"devices": devices, "found": int(match.group(1)) if match else None}


# --------------------------------------------------------------------------- host driver


def parse_module_version(text: str | None) -> str | None:
    """``/sys/module/nvidia/version`` holds the loaded module's version and a newline."""
    value = (text or "").strip()
    return value if _DRIVER_VERSION_RE.match(value) else None


def parse_proc_driver_version(text: str | None) -> str | None:
    """``NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build ...``
    or ``NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  <date>``."""
    match = _PROC_VERSION_RE.search(text or "")
    return match.group(1) if match else None


def library_versions(file_names: t.Iterable[str]) -> list[str]:
    """Driver versions of installed ``libcuda.so.X`` / ``libnvidia-ml.so.X`` files."""
    return _sorted_versions(match.group(1) for name in file_names for match in [_DRIVER_LIB_RE.search(name)] if match)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def ldcache_driver_libraries(text: str | None) -> list[str]:
    """Paths of ``libcuda.so.1`` / ``libnvidia-ml.so.1`` in ``ldconfig -p`` output, the way the dynamic
    loader (and nvidia-ctk) finds the driver, wherever it lives (/usr/lib64, /usr/local/nvidia/lib64, ...)."""
    return [match.group(1) for match in _LDCACHE_RE.finditer(text or "")]


def _resolve(path: str, root: str, hops: int = 16) -> str:
    """Follow symlinks of ``path`` (relative to ``root``) to the file: ``libcuda.so.1`` -> ``libcuda.so.580.95.05``."""
    for _hop in range(hops):
        try:
            target = os.readlink(path)
        except OSError:
            return path
        path = (
            os.path.join(root, target.lstrip("/"))
            if os.path.isabs(target)
            else os.path.join(os.path.dirname(path), target)
        )
    return path


def _sorted_versions(versions: t.Iterable[str]) -> list[str]:
    return sorted(set(versions), key=lambda v: tuple(int(p) for p in v.split(".")))


def detect_host_driver(
    root: str = "/",
    library_dirs: t.Sequence[str] = LIBRARY_DIRS,
    ldcache_paths: t.Sequence[str] = (),
) -> dict[str, t.Any]:
    """The host's NVIDIA driver, from the loaded kernel module and the installed libraries.

    Libraries are looked for in ``library_dirs`` and at ``ldcache_paths`` (``ldconfig -p``'s
    ``libcuda.so.1``/``libnvidia-ml.so.1``, followed to their versioned file). ``version`` is what a
    freshly generated spec would name: the installed libraries' version when there is exactly one,
    else the loaded kernel module's. ``reboot_pending`` is true when both are known and differ (the
    libraries were upgraded under a running module: NVML, and so ``nvidia-ctk cdi generate``, fail
    with "Driver/library version mismatch" until a reboot).
    """

    def under_root(path: str) -> str:
        return os.path.join(root, path.lstrip("/"))

    kernel, kernel_source = None, None
    for source, parser in (
        ("/sys/module/nvidia/version", parse_module_version),
        ("/proc/driver/nvidia/version", parse_proc_driver_version),
    ):
        kernel = parser(_read(under_root(source)))
        if kernel:
            kernel_source = source
            break
    found: dict[str, list[str]] = {}  # version -> dirs (as seen from root)
    for lib_dir in library_dirs:
        try:
            names = os.listdir(under_root(lib_dir))
        except OSError:
            continue
        for version in library_versions(names):
            found.setdefault(version, []).append(lib_dir)
    for lib in ldcache_paths:
        real = _resolve(under_root(lib), root)
        for version in library_versions([real]):
            rel = os.path.relpath(os.path.dirname(real), root)
            lib_dir = "/" if rel == "." else "/" + rel
            if lib_dir not in found.setdefault(version, []):
                found[version].append(lib_dir)
    lib_versions = _sorted_versions(found)
    if len(lib_versions) == 1:
        version, source = lib_versions[0], f"libraries in {', '.join(found[lib_versions[0]])}"
    elif kernel:
        version, source = kernel, kernel_source
    else:
        version, source = None, None
    return {
        "version": version,
        "source": source,
        "kernel_module_version": kernel,
        "library_versions": lib_versions,
        "reboot_pending": bool(kernel and lib_versions and kernel not in lib_versions),
    }


def staleness(spec: dict[str, t.Any] | None, host: dict[str, t.Any], root: str = "/") -> list[str]:
    """Why an existing spec no longer fits the host's driver (empty: it fits, or it cannot be told).

    ``spec`` is ``parse_spec`` output; ``host`` is ``detect_host_driver`` output (or a dict with a
    ``version`` given by the user).
    """
    if spec is None:
        return ["the spec does not exist"]
    if spec["errors"]:
        return [f"the spec is not valid: {'; '.join(spec['errors'])}"]
    reasons = []
    named = spec["driver_versions"]
    if host.get("version") and named and host["version"] not in named:
        reasons.append(
            f"the spec names driver {', '.join(named)} but the host has driver {host['version']}"
            + (f" (from {host['source']})" if host.get("source") else "")
        )
    for lib in spec["driver_libraries"]:
        if not os.path.exists(os.path.join(root, lib.lstrip("/"))):
            reasons.append(f"the spec mounts {lib}, which no longer exists on the host")
    return reasons


# --------------------------------------------------------------------------- podman compatibility


def podman_max_spec_version(podman_version: t.Sequence[int]) -> tuple[str | None, str]:
    """Highest cdiVersion the given podman reads, and the evidence; (None, why) below podman 4.1."""
    padded = (*tuple(podman_version), 0, 0, 0)[:3]
    best: tuple[str | None, str] = (None, "podman before 4.1 has no CDI support")
    for first, max_version, evidence in PODMAN_CDI_SUPPORT:
        if padded >= first:
            best = (max_version, evidence)
    return best


def first_podman_reading(version: str) -> str | None:
    """The first podman release line that reads ``version`` (None if none is known to)."""
    wanted = semver(version)
    for first, max_version, _evidence in PODMAN_CDI_SUPPORT:
        if wanted is not None and semver(max_version) >= wanted:
            return version_str(first[:2])
    return None


def _fixes(spec: dict[str, t.Any], podman_max: str) -> list[str]:
    version = spec["cdiVersion"]
    fixes = []
    upgrade = first_podman_reading(version)
    if upgrade:
        fixes.append(f"upgrade podman to {upgrade} or newer (it reads cdiVersion {version})")
    required = spec.get("required_version") or version
    if semver(required) <= semver(podman_max):
        fixes.append(
            f"regenerate the spec with the lowest cdiVersion its content needs ({required}, by the CDI rules): "
            "nvidia-ctk writes that since NVIDIA Container Toolkit 1.16; check the cdiVersion of the result"
        )
    elif "additionalGids" in (spec.get("required_features") or []):
        fixes.append(
            "regenerate it without additionalGids: `nvidia-ctk cdi generate "
            f"--feature-flag={ADDITIONAL_GIDS_FLAG}` (this module: feature_flags: [{ADDITIONAL_GIDS_FLAG}]; "
            "for the nvidia-cdi-refresh service: NVIDIA_CTK_CDI_GENERATE_FEATURE_FLAGS="
            f"{ADDITIONAL_GIDS_FLAG} in /etc/nvidia-container-toolkit/nvidia-cdi-refresh.env), "
            "or generate it with a toolkit older than 1.19.1 (e.g. 1.18.2)"
        )
    return fixes


def check_podman_compat(specs: t.Sequence[dict[str, t.Any]], podman_version: t.Sequence[int]) -> dict[str, t.Any]:
    """Compare every readable spec with what ``podman_version`` reads.

    Returns ``max_cdi_version``, ``evidence``, ``errors`` (messages that name the spec, both versions
    and the fix), ``warnings`` (spec versions newer than any this collection knows) and ``skipped``
    (paths of specs this podman cannot read).
    """
    podman = version_str(tuple(podman_version))
    podman_max, evidence = podman_max_spec_version(podman_version)
    result: dict[str, t.Any] = {
        "max_cdi_version": podman_max,
        "evidence": evidence,
        "errors": [],
        "warnings": [],
        "skipped": [],
    }
    candidates = [spec for spec in specs if spec["cdiVersion"] and not spec["errors"]]
    if podman_max is None:
        result["skipped"] = [spec["path"] for spec in candidates]
        if candidates:
            result["errors"].append(
                f"podman {podman} has no CDI support (podman 4.1 or newer is needed for "
                f"--device vendor.com/class=name); found specs: {', '.join(spec['path'] for spec in candidates)}"
            )
        return result
    for spec in candidates:
        version = semver(spec["cdiVersion"])
        if version is None or version <= semver(podman_max):
            continue
        if version > semver(LATEST_SPEC_VERSION) and semver(podman_max) == semver(LATEST_SPEC_VERSION):
            result["warnings"].append(
                f"{spec['path']}: cdiVersion {spec['cdiVersion']} is newer than any CDI spec version this "
                f"collection knows ({LATEST_SPEC_VERSION}); cannot tell whether podman {podman} reads it"
            )
            continue
        result["skipped"].append(spec["path"])
        kind = spec["kind"] or "vendor.com/class"
        fixes = _fixes(spec, podman_max)
        result["errors"].append(
            f"{spec['path']} has cdiVersion {spec['cdiVersion']}"
            + (
                f" (its content needs only {spec['required_version']})"
                if spec.get("required_version") and semver(spec["required_version"]) < version
                else ""
            )
            + f", but podman {podman} reads CDI specs only up to cdiVersion {podman_max}: it skips this file and "
            f'`podman run --device {kind}=...` fails with "unresolvable CDI devices". Fix: '
            + ("; or ".join(fixes) if fixes else "use a podman that reads this version")
            + "."
        )
    return result
