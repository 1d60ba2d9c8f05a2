# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
#
# PRIVATE to the collection: no compatibility guarantees for other collections.
"""The one version parser of the collection: tools' ``--version`` output, vLLM versions, CDI spec versions."""

from __future__ import annotations

import re
import typing as t

# X.Y or X.Y.Z, optionally after a "v", not in the middle of a longer dotted number.
_VERSION_RE = re.compile(r"(?<![\d.])v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: t.Any, how: str = "search") -> tuple[int, ...] | None:
    """``X.Y[.Z]`` in ``text`` as a tuple of two or three ints; None when there is none.

    ``how``:
      - ``search``: the first one anywhere (tool output: ``podman version 4.3.1`` -> (4, 3, 1));
      - ``prefix``: at the start, anything may follow (vLLM: ``v0.12.0``, ``0.11.2.post2``, ``0.10.1.1+rhai1``,
        ``0.9.0rc1`` -> (0, 12, 0), (0, 11, 2), (0, 10, 1), (0, 9, 0));
      - ``exact``: the whole text, three parts (semver as the CDI library wants it: ``0.5.0``; not ``0.5``).
    """
    if text is None:
        return None
    text = str(text).strip()
    if how == "search":
        match = _VERSION_RE.search(text)
    elif how == "prefix":
        match = _VERSION_RE.match(text)
    elif how == "exact":
        match = _VERSION_RE.fullmatch(text)
        if match and match.group(3) is None:
            match = None
    else:
        raise ValueError(f"how must be search, prefix or exact, not {how!r}")
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def version_str(version: t.Sequence[int] | None) -> str | None:
    """(4, 3, 1) -> ``4.3.1``; None stays None."""
    return None if version is None else ".".join(str(part) for part in version)


def version_key(version: t.Sequence[int]) -> tuple[int, int, int]:
    """Pad to three parts so that (5, 1) == (5, 1, 0) when comparing."""
    parts = [*list(version)[:3], 0, 0, 0]
    return (parts[0], parts[1], parts[2])
