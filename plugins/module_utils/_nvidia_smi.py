# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
#
# PRIVATE to the collection: may change at any time. Do not use from other collections.
"""Parse nvidia-smi output: ``--query-gpu`` CSV, the table banner, ``-L``, and its failures.

Pure functions: text in, data out. Formats are those of real captures in tests/fixtures/nvidia-smi.
"""

from __future__ import annotations

import re
import typing as t

# The query gpu_facts runs; the order is the column order of the CSV.
QUERY_FIELDS = ("index", "name", "uuid", "driver_version", "memory.total", "mig.mode.current", "pci.bus_id")
QUERY_ARGS = ("--query-gpu=" + ",".join(QUERY_FIELDS), "--format=csv,noheader,nounits")

# Values nvidia-smi prints for a field a GPU lacks or will not report.
_MISSING = {"[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]", "[Insufficient Permissions]", ""}
_HEADER_UNIT_RE = re.compile(r"^(?P<field>[^\[]+?)\s*(?:\[(?P<unit>[^\]]+)\])?$")
_VALUE_UNIT_RE = re.compile(r"^(?P<number>-?\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z%]+)?$")

# "| NVIDIA-SMI 580.126.09   Driver Version: 580.126.09   CUDA Version: 13.0 |" (up to the 5xx drivers)
# "| NVIDIA-SMI 610.43.02    KMD Version: 610.43.02    CUDA UMD Version: 13.3 |" (610 and newer)
_SMI_RE = re.compile(r"NVIDIA-SMI\s+(?P<v>\d+(?:\.\d+)+)")
# (``nvidia-smi -q`` writes "Driver Version    : 580.159.04": the same patterns read it)
_DRIVER_RE = re.compile(r"(?:Driver|KMD) Version\s*:\s*(?P<v>\d+(?:\.\d+)+)")
_CUDA_RE = re.compile(r"CUDA (?:UMD )?Version\s*:\s*(?P<v>\d+(?:\.\d+)+)")
# "GPU 0: NVIDIA H200 (UUID: GPU-7271b7f6-...)"
_L_GPU_RE = re.compile(r"^GPU (?P<index>\d+): (?P<name>.*?) \(UUID: (?P<uuid>GPU-[^)]+)\)\s*$")
# "  MIG 1g.24gb     Device  0: (UUID: MIG-0b090ecd-...)", "  MIG 1c.2g.10gb  Device  1: (UUID: MIG-...)"
_L_MIG_RE = re.compile(r"^\s+MIG (?P<profile>\S+)\s+Device\s+(?P<index>\d+): \(UUID: (?P<uuid>MIG-[^)]+)\)\s*$")

NO_DRIVER_MARKERS = (
    "couldn't communicate with the NVIDIA driver",
    "No devices were found",
    "NVML Shared Library Not Found",
)
MISMATCH_MARKER = "Driver/library version mismatch"
MISMATCH_RC = 18


def _clean(value: str) -> str | None:
    value = value.strip()
    return None if value in _MISSING else value


def _header_field(column: str) -> tuple[str, str | None]:
    """``memory.total [MiB]`` -> (``memory.total``, ``MiB``)."""
    match = _HEADER_UNIT_RE.match(column.strip())
    if not match:
        return column.strip(), None
    return match.group("field").strip(), match.group("unit")


def _split_row(line: str, width: int) -> list[str]:
    """nvidia-smi separates columns with ", " and does not quote; a name with ", " would add
    columns, so surplus pieces are joined back into the ``name`` column (the second)."""
    parts = line.split(", ")
    if width and len(parts) > width:
        extra = len(parts) - width
        parts = [parts[0], ", ".join(parts[1 : 2 + extra]), *parts[2 + extra :]]
    return parts


def parse_query_csv(text: str, fields: t.Sequence[str] = QUERY_FIELDS) -> list[dict[str, str | None]]:
    """``--query-gpu`` CSV -> one dict per GPU, keyed by field name, values as printed (units removed).

    Works with and without the header line (``noheader``) and with and without units (``nounits``):
    a header, when present, names the columns; otherwise ``fields`` does. ``[N/A]`` becomes None.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    columns = list(fields)
    header = [_header_field(col)[0] for col in lines[0].split(", ")]
    if header[0] in {*fields, *QUERY_FIELDS}:
        # A header line (no ``noheader``): it echoes the requested fields, sometimes renamed
        # (clocks.sm -> clocks.current.sm), so keep the requested names when the count matches.
        columns = columns if len(header) == len(columns) else header
        lines = lines[1:]
    rows = []
    for line in lines:
        values = _split_row(line, len(columns))
        row: dict[str, str | None] = {}
        for position, column in enumerate(columns):
            cleaned = _clean(values[position]) if position < len(values) else None
            if cleaned is not None:
                match = _VALUE_UNIT_RE.match(cleaned)
                if match and match.group("unit"):
                    cleaned = match.group("number")
            row[column] = cleaned
        rows.append(row)
    return rows


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(float(value))
    except ValueError:
        return None


def gpus_from_query(rows: t.Sequence[dict[str, str | None]]) -> list[dict[str, t.Any]]:
    """Query rows -> the ``nvidia_gpus`` fact entries (typed, with stable key names)."""
    gpus = []
    for row in rows:
        gpus.append(
            {
                "index": _int(row.get("index")),
                "name": row.get("name"),
                "uuid": row.get("uuid"),
                "driver_version": row.get("driver_version"),
                "memory_total_mib": _int(row.get("memory.total")),
                "mig_mode": row.get("mig.mode.current"),
                "pci_bus_id": row.get("pci.bus_id"),
                "mig_devices": [],
            }
        )
    return gpus


def parse_banner(text: str) -> dict[str, str | None]:
    """Versions from the banner of plain ``nvidia-smi`` (both the classic and the 610+ form)."""
    smi, driver, cuda = _SMI_RE.search(text), _DRIVER_RE.search(text), _CUDA_RE.search(text)
    return {
        "nvidia_smi_version": smi.group("v") if smi else None,
        "driver_version": driver.group("v") if driver else None,
        "cuda_version": cuda.group("v") if cuda else None,
        "banner_style": ("kmd-umd" if "KMD Version:" in text else "classic") if driver else None,
    }


def parse_list(text: str) -> list[dict[str, t.Any]]:
    """``nvidia-smi -L`` -> GPUs with their MIG devices (indented lines under the GPU line)."""
    gpus: list[dict[str, t.Any]] = []
    for line in text.splitlines():
        gpu = _L_GPU_RE.match(line)
        if gpu:
            gpus.append({"index": int(gpu.group("index")), "name": gpu.group("name"), "uuid": gpu.group("uuid")})
            gpus[-1]["mig_devices"] = []
            continue
        mig = _L_MIG_RE.match(line)
        if mig and gpus:
            gpus[-1]["mig_devices"].append(
                {"index": int(mig.group("index")), "profile": mig.group("profile"), "uuid": mig.group("uuid")}
            )
    return gpus


def merge_mig(gpus: list[dict[str, t.Any]], listed: t.Sequence[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Attach ``-L``'s MIG devices to the query's GPUs (matched by UUID, else by index)."""
    by_uuid = {gpu["uuid"]: gpu for gpu in listed}
    by_index = {gpu["index"]: gpu for gpu in listed}
    for gpu in gpus:
        match = by_uuid.get(gpu["uuid"]) or by_index.get(gpu["index"])
        if match:
            gpu["mig_devices"] = list(match["mig_devices"])
    return gpus


def classify_failure(rc: int, output: str) -> dict[str, str] | None:
    """A failed nvidia-smi run -> ``{"kind", "message"}``; None if it did not fail.

    ``kind``: ``no_driver`` (no kernel driver loaded or no GPU), ``version_mismatch`` (user-space
    libraries newer or older than the loaded kernel module, exit 18: a reboot is likely needed), or
    ``error`` (anything else).
    """
    text = output.strip()
    if rc == 0 and not any(marker in text for marker in (*NO_DRIVER_MARKERS, MISMATCH_MARKER)):
        return None
    if MISMATCH_MARKER in text or rc == MISMATCH_RC:
        library = re.search(r"NVML library version:\s*(\S+)", text)
        return {
            "kind": "version_mismatch",
            "message": (
                "nvidia-smi: Driver/library version mismatch"
                + (f" (NVML library {library.group(1)})" if library else "")
                + ": the NVIDIA user-space libraries do not match the loaded kernel module, usually because the "
                "driver was upgraded without a reboot. A reboot is likely needed."
            ),
        }
    if any(marker in text for marker in NO_DRIVER_MARKERS):
        return {
            "kind": "no_driver",
            "message": f"No NVIDIA driver is loaded (or no GPU is present): {text.splitlines()[0] if text else ''}",
        }
    return {"kind": "error", "message": f"nvidia-smi failed with exit code {rc}: {text[-1000:]}"}
