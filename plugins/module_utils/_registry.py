# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
#
# PRIVATE to the collection: may change at any time. Do not use from other collections.
"""Registries, logins and image archives, pure Python.

Nothing here runs podman. It finds the registry an image reference names, reads and compares
the entries of podman's auth file (containers-auth.json(5)), turns podman's registry errors into
one sentence that names the registry and the fix, reads which images a ``podman save`` archive
holds (without unpacking it), and decides how the fleet gets its nsys image.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tarfile
import typing as t

NSYS_DISTRIBUTIONS = ("auto", "local", "registry", "archive")


class RegistryError(ValueError):
    """Invalid settings, or an archive that cannot be read."""


# --------------------------------------------------------------------------- image references


def registry_of(ref: str) -> str:
    """The registry host (``host[:port]``) an image reference names; "" for an unqualified one.

    As containers/image parses it: the first path component is a registry when it has a dot or a
    colon, or is ``localhost`` (``localhost/x`` is podman's name for local-only images).
    """
    ref = ref.strip()
    for prefix in ("docker://", "containers-storage:"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
    if "/" not in ref:
        return ""
    first = ref.split("/", 1)[0]
    if first == "localhost" or "." in first or ":" in first:
        return first
    return ""


def is_local_only(ref: str) -> bool:
    """``localhost/...`` and unqualified names are never pushed to nor pulled from a registry."""
    return registry_of(ref) in ("", "localhost")


def nsys_distribution(setting: str, nsys_image: str) -> str:
    """How the nsys image reaches the fleet: ``local`` (each host builds its own), ``registry`` (one
    host builds and pushes, the others pull) or ``archive`` (one host builds and saves, the controller
    carries the archive to the others). ``auto``: ``registry`` when the image is named in a registry,
    ``local`` for a ``localhost/`` name."""
    if setting not in NSYS_DISTRIBUTIONS:
        raise RegistryError(
            f"vllm_profile_nsys_distribution must be one of {', '.join(NSYS_DISTRIBUTIONS)}, got {setting!r}"
        )
    if setting == "auto":
        return "local" if is_local_only(nsys_image) else "registry"
    if setting == "registry" and is_local_only(nsys_image):
        raise RegistryError(
            f"vllm_profile_nsys_distribution=registry needs vllm_profile_nsys_image named in a registry "
            f"(registry.example.com/team/vllm-nsys:tag), not {nsys_image!r}"
        )
    return setting


# --------------------------------------------------------------------------- auth file


def encode_auth(username: str, password: str) -> str:
    """The ``auth`` value podman stores for a login: base64 of ``username:password``."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def auth_entry(text: str | None, registry: str) -> str | None:
    """The stored ``auth`` value for ``registry`` in an auth file's text, or None."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    entry = (data.get("auths") or {}).get(registry) if isinstance(data, dict) else None
    return entry.get("auth") if isinstance(entry, dict) else None


def stored_username(text: str | None, registry: str) -> str | None:
    """Who is logged in to ``registry`` according to an auth file's text (never the password)."""
    value = auth_entry(text, registry)
    if not value:
        return None
    try:
        return base64.b64decode(value).decode().split(":", 1)[0]
    except ValueError:
        return None


def default_auth_file(home: str) -> str:
    """The persistent auth file of a user: ``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config``).

    podman writes ``${XDG_RUNTIME_DIR}/containers/auth.json`` (rootless) or ``/run/containers/0/auth.json``
    (root) by default: both are on tmpfs and gone after a reboot or logout. The persistent file is one
    that podman also reads by itself (containers-auth.json(5)), so a pull by hand finds the login too.
    """
    return os.path.join(home, ".config", "containers", "auth.json")


# --------------------------------------------------------------------------- errors


def first_error_line(text: str) -> str:
    """podman's own error line (``Error: ...``), else the last non-empty line."""
    lines = [line.strip() for line in (text or "").replace("\r", "\n").splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error:"):
            return line
    return lines[-1] if lines else ""


_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("credentials", re.compile(r"invalid username/password|incorrect username or password|bad credentials", re.I)),
    ("unauthorized", re.compile(r"unauthorized|authentication required|denied|forbidden|401|403", re.I)),
    ("tls", re.compile(r"x509|certificate|tls: ", re.I)),
    ("unreachable", re.compile(r"connection refused|no such host|i/o timeout|network is unreachable|no route", re.I)),
    ("missing", re.compile(r"manifest unknown|not found|name unknown|no such image", re.I)),
)


def classify(stderr: str) -> str:
    """What went wrong talking to a registry: credentials, unauthorized, tls, unreachable, missing or other."""
    for kind, pattern in _KINDS:
        if pattern.search(stderr or ""):
            return kind
    return "other"


def failure_sentence(action: str, registry: str, stderr: str, *, ref: str = "", auth_file: str = "") -> str:
    """One sentence: what failed, on which registry, the fix, then podman's own error line.

    ``action`` is ``login``, ``pull`` or ``push``.
    """
    kind = classify(stderr)
    what = f"{action} of {ref}" if ref else action
    where = registry or "the registry"
    auth = f" (auth file {auth_file})" if auth_file else ""
    fixes = {
        "credentials": f"{where} rejected the username or password: correct the entry for {where} in "
        "vllm_profile_registry_logins (a token or password that is still valid)",
        "unauthorized": f"{where} refused it as unauthorised{auth}: add {where} to vllm_profile_registry_logins "
        "with a user that may " + ("push to" if action == "push" else "pull from") + " this repository",
        "tls": f"{where}'s TLS certificate is not trusted: put its CA certificate in "
        f"/etc/containers/certs.d/{where}/ca.crt on the host (or vllm_profile_registry_logins[].cert_dir)",
        "unreachable": f"{where} cannot be reached from this host: check the name, port and firewall, or use "
        "an image archive for hosts without a registry (vllm_profile_image_archive)",
        "missing": f"{where} has no {ref or 'such image'}: check the name and tag"
        + (", or push it first (the build host pushes the nsys image)" if action == "pull" else ""),
        "other": f"{where} answered with an error",
    }
    line = first_error_line(stderr)
    return f"The {what} failed: {fixes[kind]}." + (f" podman said: {line}" if line else "")


# --------------------------------------------------------------------------- image archives


def read_archive(path: str) -> list[dict[str, t.Any]]:
    """The images in a ``podman save`` archive (docker-archive, the default format): id and names.

    Reads only the tar headers and ``manifest.json``, never the layers: the controller can tell
    which image a multi-GB archive holds before copying it anywhere.
    """
    try:
        with tarfile.open(path, "r:") as archive:
            member = archive.getmember("manifest.json")
            handle = archive.extractfile(member)
            data = json.loads(handle.read() if handle else b"[]")
    except KeyError as exc:
        raise RegistryError(
            f"{path} has no manifest.json: not a docker-archive (save it with `podman save --format docker-archive`)"
        ) from exc
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise RegistryError(f"{path} cannot be read as an image archive: {exc}") from exc
    images = []
    for entry in data:
        config = str(entry.get("Config", ""))
        image_id = os.path.basename(config)
        image_id = image_id[: -len(".json")] if image_id.endswith(".json") else image_id
        image_id = image_id.removeprefix("sha256:")
        images.append({"id": image_id, "names": list(entry.get("RepoTags") or [])})
    return images


def normalise_name(name: str) -> str:
    """``podman save`` writes ``localhost/x:tag`` for local images; compare names with an explicit tag."""
    last = name.rsplit("/", 1)[-1]
    return name if (":" in last or "@" in name) else f"{name}:latest"


def archive_matches(archive: t.Sequence[t.Mapping[str, t.Any]], local: t.Mapping[str, str]) -> list[str]:
    """Names in the archive that the host does not have with the archive's image id.

    ``local`` maps names the host has to their image ids. An empty result: nothing to load.
    """
    have = {normalise_name(name): image_id.removeprefix("sha256:") for name, image_id in local.items()}
    missing = []
    for image in archive:
        names = image.get("names") or [image["id"]]
        for name in names:
            if have.get(normalise_name(name)) != image["id"]:
                missing.append(name)
    return missing
