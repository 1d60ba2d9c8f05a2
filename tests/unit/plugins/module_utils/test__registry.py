# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _registry

# podman 4.3.1's own error lines (recorded against tests/support/registry.py's registry, 2026-11-30).
WRONG_PASSWORD = 'Error: logging into "127.0.0.1:52013": invalid username/password\n'
PULL_NO_AUTH = (
    "Trying to pull 127.0.0.1:52013/test/nope:1...\n"
    "Error: initializing source docker://127.0.0.1:52013/test/nope:1: reading manifest 1 in "
    "127.0.0.1:52013/test/nope: unauthorized: authentication required\n"
)


@pytest.mark.parametrize(
    ("ref", "registry"),
    [
        ("registry.redhat.io/rhaiis/vllm-cuda-rhel9:3.2.1", "registry.redhat.io"),
        ("127.0.0.1:5000/team/vllm-nsys:1", "127.0.0.1:5000"),
        ("localhost/vllm-profile-nsys:latest", "localhost"),
        ("docker://quay.io/x/y", "quay.io"),
        ("vllm/vllm-openai:latest", ""),
        ("ubuntu", ""),
    ],
)
def test_registry_of(ref: str, registry: str) -> None:
    assert _registry.registry_of(ref) == registry


@pytest.mark.parametrize(
    ("setting", "image", "expected"),
    [
        ("auto", "localhost/vllm-profile-nsys:latest", "local"),
        ("auto", "registry.example.internal/vllm-profile/vllm-nsys:3.2.1", "registry"),
        ("archive", "localhost/vllm-profile-nsys:latest", "archive"),
        ("local", "registry.example.internal/x:1", "local"),
    ],
)
def test_nsys_distribution(setting: str, image: str, expected: str) -> None:
    assert _registry.nsys_distribution(setting, image) == expected


def test_nsys_distribution_registry_needs_a_registry_name() -> None:
    with pytest.raises(_registry.RegistryError, match="named in a registry"):
        _registry.nsys_distribution("registry", "localhost/vllm-profile-nsys:latest")
    with pytest.raises(_registry.RegistryError, match="one of"):
        _registry.nsys_distribution("sometimes", "x")


def test_auth_entries_never_return_the_password() -> None:
    text = json.dumps({"auths": {"r.example:5000": {"auth": _registry.encode_auth("op", "s3cret")}}})
    assert _registry.auth_entry(text, "r.example:5000") == "b3A6czNjcmV0"
    assert _registry.auth_entry(text, "other") is None
    assert _registry.auth_entry("not json", "r") is None and _registry.auth_entry(None, "r") is None
    assert _registry.stored_username(text, "r.example:5000") == "op"
    assert _registry.default_auth_file("/home/u") == "/home/u/.config/containers/auth.json"


@pytest.mark.parametrize(
    ("action", "stderr", "kind", "words"),
    [
        ("login", WRONG_PASSWORD, "credentials", ["rejected the username or password", "vllm_profile_registry_logins"]),
        ("pull", PULL_NO_AUTH, "unauthorized", ["unauthorised", "vllm_profile_registry_logins", "pull from"]),
        ("pull", "Error: x509: certificate signed by unknown authority", "tls", ["/etc/containers/certs.d/R:1/ca.crt"]),
        ("pull", "Error: dial tcp 127.0.0.1:9: connect: connection refused", "unreachable", ["image archive"]),
        ("pull", "Error: reading manifest 1 in R:1/x: manifest unknown", "missing", ["push it first"]),
        ("push", "Error: something odd", "other", ["answered with an error"]),
    ],
)
def test_failure_sentence_names_the_registry_and_the_fix(action, stderr, kind, words) -> None:
    assert _registry.classify(stderr) == kind
    sentence = _registry.failure_sentence(action, "R:1", stderr, ref="R:1/x")
    assert sentence.startswith(f"The {action} of R:1/x failed: ") and "R:1" in sentence
    assert sentence.endswith("podman said: " + _registry.first_error_line(stderr))
    for word in words:
        assert word in sentence


def test_first_error_line_prefers_podmans_error() -> None:
    assert _registry.first_error_line(PULL_NO_AUTH).startswith("Error: initializing source")
    assert _registry.first_error_line("a\n\nb\n") == "b" and _registry.first_error_line("") == ""


def make_archive(path: Path, entries: list[dict]) -> None:
    with tarfile.open(path, "w") as archive:
        for name, data in (("abc/layer.tar", b"x" * 10), ("manifest.json", json.dumps(entries).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_read_archive_and_decide_what_to_load(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    image_id = "c31f31f68954047c5d50f03a6bddb8543724558e3c3ea5821a8e3d18bd9391a2"
    make_archive(path, [{"Config": f"{image_id}.json", "RepoTags": ["localhost/x:1"], "Layers": ["abc/layer.tar"]}])
    images = _registry.read_archive(str(path))
    assert images == [{"id": image_id, "names": ["localhost/x:1"]}]
    assert _registry.archive_matches(images, {"localhost/x:1": image_id}) == []
    assert _registry.archive_matches(images, {"localhost/x:1": "sha256:" + image_id}) == []
    assert _registry.archive_matches(images, {"localhost/x:1": "0" * 64}) == ["localhost/x:1"]
    assert _registry.archive_matches(images, {}) == ["localhost/x:1"]
    assert _registry.normalise_name("localhost/x") == "localhost/x:latest"


def test_read_archive_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w"):
        pass
    with pytest.raises(_registry.RegistryError, match=r"no manifest\.json"):
        _registry.read_archive(str(bad))
    (tmp_path / "junk.tar").write_text("junk")
    with pytest.raises(_registry.RegistryError, match="cannot be read"):
        _registry.read_archive(str(tmp_path / "junk.tar"))
