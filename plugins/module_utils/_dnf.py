# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
#
# PRIVATE to the collection: no compatibility guarantees for other collections.
"""Parsers of `dnf module` output (dnf 4, RHEL 8/9): which streams a module has, which one is enabled, and
what a stream's artifacts are. Pure functions over the text, for the module dnf_module_info.

`dnf module list NAME` prints, per repository, a table whose rows start with the module name, then the
stream with its flags (`[d]` default, `[e]` enabled, `[x]` disabled; written `[d][e]` or `open-dkms [e]`),
the profiles and a summary; then a `Hint:` line. `dnf module info NAME:STREAM` prints `Key : value` lines,
`Artifacts` continuing on lines that start with ` : `.
"""

from __future__ import annotations

import re

_FLAG = re.compile(r"\[([a-z])\]")
_FLAG_GROUP = re.compile(r"(\[[a-z]\])+")


def parse_module_list(text: str, name: str) -> dict:
    """``{"streams": [...], "enabled": str, "default": str}`` from ``dnf module list NAME``'s output.

    Streams are listed once each, in dnf's order (a stream offered by two repositories is listed once);
    ``enabled``/``default`` are "" when no stream has the flag. Only the stream column's flags count: the
    profiles column has its own (``default [d]``).
    """
    streams, enabled, default = [], "", ""
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != name:
            continue
        column = [words[1]]
        for word in words[2:]:
            if not _FLAG_GROUP.fullmatch(word):
                break
            column.append(word)
        flags = set(_FLAG.findall("".join(column)))
        stream = _FLAG.sub("", words[1])
        if stream not in streams:
            streams.append(stream)
        if "e" in flags and not enabled:
            enabled = stream
        if "d" in flags and not default:
            default = stream
    return {"streams": streams, "enabled": enabled, "default": default}


def parse_artifacts(text: str) -> list[str]:
    """The NEVRAs under ``Artifacts`` in ``dnf module info NAME:STREAM``'s output (all streams shown)."""
    artifacts, inside = [], False
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "Artifacts":
            inside = True
        elif sep and key.strip():
            inside = False
        if inside and value.strip():
            artifacts.append(value.strip())
    return artifacts


def package_versions(artifacts: list[str], package: str) -> list[str]:
    """Version-release of each artifact of ``package`` (epoch and arch dropped), unique, in order:
    ``nvidia-open-3:580.95.05-1.el9.noarch`` -> ``580.95.05-1.el9``."""
    pattern = re.compile(r"^" + re.escape(package) + r"-(?:[0-9]+:)?([0-9][^\s]*)\.[A-Za-z0-9_]+$")
    versions = []
    for artifact in artifacts:
        match = pattern.match(artifact)
        if match and match.group(1) not in versions:
            versions.append(match.group(1))
    return versions
