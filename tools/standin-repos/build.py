#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the STAND-IN package repositories the host-preparation roles are tested against.

There is no GPU, no NVIDIA repository and no RHEL here, so the molecule scenarios install
stand-in packages: real package names, versions and inter-dependencies, but contents that are
only marker files, a stand-in ``nvidia-ctk`` and stand-in ``libcuda.so.<version>`` files.
Everything is signed with a throwaway GPG key made for each build, so ``gpgcheck`` stays on.

The tree mirrors NVIDIA's URL layout under one web root, served inside each test container on
http://127.0.0.1:8080 (the container's own loopback):

  libnvidia-container/gpgkey, .../stable/rpm/{nvidia-container-toolkit.repo,x86_64/}
  libnvidia-container/stable/deb/{nvidia-container-toolkit.list,amd64/}     flat apt repo
  compute/cuda/repos/rhel9/x86_64/{cuda-rhel9.repo,D42D0685.pub,...}       + dnf module metadata
  compute/cuda/repos/debian12/x86_64/{cuda-keyring_1.1-1_all.deb,...}      flat apt repo
  standin/rhel9/{appstream,crb,epel}/, standin/rhel9/standin-rhel9.repo     "the distro's" repos
  standin/debian12/, standin/debian12/standin-debian12.list                 linux-headers-$(uname -r)
  standin/gpu-check-image.tar       a tiny image (dash + stand-in nvidia-smi) for `podman import`

The output is cached under $VLLM_INFRA_CACHE/standin-repos/<inputs hash>/ (the hash covers this
directory's files, the running kernel's release and the tool versions).

CLI: build.py [--force]   prints the web root; build.py env   prints VLLM_INFRA_STANDIN_REPOS=<root>
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import gzip
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tools" / "harness"))

import images  # noqa: E402  (tools/harness/images.py: cache_dir)

BUILD_FORMAT = "4"  # bump to invalidate every cached build
BASE_URL = "http://127.0.0.1:8080"
KEY_UID = "vllm_infra.profiling STAND-IN repository key (throwaway, tests only) <standin@vllm-infra.invalid>"
MARKER_DIR = "/usr/share/vllm-infra-standin"

TOOLKIT_VERSIONS = ("1.17.8-1", "1.18.0-1")
DRIVER_VERSIONS = ("575.57.08", "580.95.05", "580.105.08")
DRIVER_EPOCH = "3"  # NVIDIA's driver rpms carry epoch 3 (nvidia-open-3:580...); cuda-drivers has none
EL9_KERNEL = ("5.14.0", "570.12.1.el9_6")
# dnf module streams of nvidia-driver: stream -> (package of its default profile, driver versions)
STREAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "open-dkms": ("nvidia-open", DRIVER_VERSIONS),
    "latest-dkms": ("cuda-drivers", DRIVER_VERSIONS),
    "580-open": ("nvidia-open", ("580.95.05", "580.105.08")),
    "580-dkms": ("cuda-drivers", ("580.95.05", "580.105.08")),
    "575-open": ("nvidia-open", ("575.57.08",)),
    "575-dkms": ("cuda-drivers", ("575.57.08",)),
}
DEFAULT_STREAM = "latest-dkms"


@dataclasses.dataclass
class Pkg:
    name: str
    version: str
    release: str = "1"
    epoch: str = ""
    requires: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    # path -> (content, mode)
    files: dict[str, tuple[bytes, int]] = dataclasses.field(default_factory=dict)

    @property
    def evr(self) -> str:
        return f"{self.epoch + ':' if self.epoch else ''}{self.version}-{self.release}"

    def summary(self) -> str:
        return f"STAND-IN for {self.name} (vllm_infra.profiling tests; not the real package)"

    def all_files(self) -> dict[str, tuple[bytes, int]]:
        marker = f"STAND-IN {self.name} {self.evr}: installed by vllm_infra.profiling's test repositories\n"
        return {f"{MARKER_DIR}/{self.name}": (marker.encode(), 0o644), **self.files}


def run(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdout=subprocess.DEVNULL) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")


def tool_version(cmd: str) -> str:
    proc = subprocess.run([cmd, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.splitlines()[0] if proc.stdout else cmd


def inputs_hash() -> str:
    digest = hashlib.sha256(BUILD_FORMAT.encode())
    for path in sorted(HERE.iterdir()):
        if path.is_file() and path.suffix != ".pyc":
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    digest.update(platform.release().encode())
    for cmd in ("rpmbuild", "createrepo_c", "dpkg-deb", "apt-ftparchive", "gpg"):
        digest.update(tool_version(cmd).encode())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- the packages


def toolkit_packages(fmt: str) -> list[Pkg]:
    ctk = (HERE / "nvidia-ctk.standin").read_text()
    pkgs = []
    for full in TOOLKIT_VERSIONS:
        version, release = full.split("-")
        if fmt == "rpm":
            base_req = f"nvidia-container-toolkit-base == {full}"
            tools_req = (f"libnvidia-container-tools >= {full}", "libnvidia-container-tools < 2.0.0")
            lib_req = f"libnvidia-container1 >= {full}"
        else:
            base_req = f"nvidia-container-toolkit-base (= {full})"
            tools_req = (f"libnvidia-container-tools (>= {full})", "libnvidia-container-tools (<< 2.0.0)")
            lib_req = f"libnvidia-container1 (>= {full})"
        cli = f"#!/bin/sh\necho 'cli-version: {version} (STAND-IN nvidia-container-cli, not NVIDIA's)'\n"
        hook = f"#!/bin/sh\necho 'STAND-IN nvidia-container-runtime-hook {version}' >&2\nexit 1\n"
        pkgs += [
            Pkg("libnvidia-container1", version, release),
            Pkg(
                "libnvidia-container-tools",
                version,
                release,
                requires=(lib_req,),
                files={"/usr/bin/nvidia-container-cli": (cli.encode(), 0o755)},
            ),
            Pkg(
                "nvidia-container-toolkit-base",
                version,
                release,
                files={"/usr/bin/nvidia-ctk": (ctk.replace("@VERSION@", version).encode(), 0o755)},
            ),
            Pkg(
                "nvidia-container-toolkit",
                version,
                release,
                requires=(base_req, *tools_req),
                files={"/usr/bin/nvidia-container-runtime-hook": (hook.encode(), 0o755)},
            ),
        ]
    return pkgs


def driver_packages_rpm(dist: str = "el9") -> list[Pkg]:
    pkgs = []
    for version in DRIVER_VERSIONS:
        evr = f"{DRIVER_EPOCH}:{version}-1.{dist}"
        libcuda = f"STAND-IN libcuda.so.{version}: not a library (vllm_infra.profiling tests)\n".encode()
        pkgs += [
            Pkg(
                "nvidia-driver-cuda",
                version,
                f"1.{dist}",
                DRIVER_EPOCH,
                files={f"/usr/lib64/libcuda.so.{version}": (libcuda, 0o644)},
            ),
            Pkg(
                "kmod-nvidia-open-dkms",
                version,
                f"1.{dist}",
                DRIVER_EPOCH,
                requires=("dkms",),
                conflicts=("kmod-nvidia-latest-dkms",),
            ),
            Pkg(
                "kmod-nvidia-latest-dkms",
                version,
                f"1.{dist}",
                DRIVER_EPOCH,
                requires=("dkms",),
                conflicts=("kmod-nvidia-open-dkms",),
            ),
            Pkg(
                "nvidia-open",
                version,
                f"1.{dist}",
                DRIVER_EPOCH,
                requires=(f"nvidia-driver-cuda = {evr}", f"kmod-nvidia-open-dkms = {evr}"),
            ),
            Pkg(
                "cuda-drivers",
                version,
                "1",
                requires=(f"nvidia-driver-cuda = {evr}", f"kmod-nvidia-latest-dkms = {evr}"),
            ),
        ]
    return pkgs


def driver_packages_deb() -> list[Pkg]:
    pkgs = []
    for version in DRIVER_VERSIONS:
        full = f"{version}-1"
        libcuda = f"STAND-IN libcuda.so.{version}: not a library (vllm_infra.profiling tests)\n".encode()
        pkgs += [
            Pkg(
                "nvidia-driver-cuda",
                version,
                files={f"/usr/lib/x86_64-linux-gnu/libcuda.so.{version}": (libcuda, 0o644)},
            ),
            Pkg("nvidia-kernel-open-dkms", version, conflicts=("nvidia-kernel-dkms",)),
            Pkg("nvidia-kernel-dkms", version, conflicts=("nvidia-kernel-open-dkms",)),
            Pkg(
                "nvidia-open",
                version,
                requires=(f"nvidia-driver-cuda (= {full})", f"nvidia-kernel-open-dkms (= {full})"),
            ),
            Pkg(
                "cuda-drivers",
                version,
                requires=(f"nvidia-driver-cuda (= {full})", f"nvidia-kernel-dkms (= {full})"),
            ),
        ]
    return pkgs


# --------------------------------------------------------------------------- rpm


RPM_SPEC = """\
Name: {name}
{epoch_line}Version: {version}
Release: {release}
Summary: {summary}
License: GPL-3.0-or-later
BuildArch: noarch
# the stand-in host's rpmdb knows nothing of its Debian userland (/bin/sh, python3)
AutoReq: no
{deps}
%description
{summary}. Installs marker files only.

%install
{install}

%files
{files}
"""


def build_rpm(pkg: Pkg, top: Path, out: Path) -> None:
    sources = top / "SOURCES"
    sources.mkdir(parents=True, exist_ok=True)
    install, files = [], []
    for index, (path, (content, mode)) in enumerate(sorted(pkg.all_files().items())):
        src = f"{pkg.name}-{pkg.version}-{index}"
        (sources / src).write_bytes(content)
        install.append(f"install -D -m {mode:04o} %{{_sourcedir}}/{src} %{{buildroot}}{path}")
        files.append(path)
    deps = [f"Requires: {req}" for req in pkg.requires]
    deps += [f"Conflicts: {con}" for con in pkg.conflicts]
    deps += [f"Provides: {prov}" for prov in pkg.provides]
    spec = RPM_SPEC.format(
        name=pkg.name,
        epoch_line=f"Epoch: {pkg.epoch}\n" if pkg.epoch else "",
        version=pkg.version,
        release=pkg.release,
        summary=pkg.summary(),
        deps="\n".join(deps),
        install="\n".join(install),
        files="\n".join(files),
    )
    spec_path = top / f"{pkg.name}-{pkg.version}.spec"
    spec_path.write_text(spec)
    run(
        "rpmbuild",
        "-bb",
        "--define",
        f"_topdir {top}",
        "--define",
        f"_rpmdir {out}",
        "--define",
        "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
        "--define",
        "__os_install_post %{nil}",
        "--define",
        "debug_package %{nil}",
        "--define",
        "_buildhost standin.vllm-infra.invalid",
        "--define",
        "_source_date_epoch_from_changelog 0",
        "--define",
        "use_source_date_epoch_as_buildtime 1",
        "--define",
        "clamp_mtime_to_source_date_epoch 1",
        str(spec_path),
        env={**os.environ, "SOURCE_DATE_EPOCH": "1767225600"},
    )


def rpm_repo(pkgs: list[Pkg], dest: Path, work: Path, gnupg: Path, modules_yaml: str | None = None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    top = work / f"rpmbuild-{dest.name}-{len(list(work.iterdir()))}"
    for pkg in pkgs:
        build_rpm(pkg, top, dest)
    rpms = sorted(str(p) for p in dest.glob("*.rpm"))
    if rpms:
        run(
            "rpmsign",
            "--define",
            f"_gpg_path {gnupg}",
            "--define",
            f"_gpg_name {KEY_UID}",
            "--define",
            "__gpg /usr/bin/gpg",
            "--addsign",
            *rpms,
        )
    run(
        "createrepo_c", "--quiet", "--no-database", "--set-timestamp-to-revision", "--revision", "1767225600", str(dest)
    )
    if modules_yaml is not None:
        # module metadata lives outside the repo dir; modifyrepo_c copies it into repodata/
        yaml_path = work / "modules.yaml"
        yaml_path.write_text(modules_yaml)
        run("modulemd-validator", str(yaml_path))
        run("modifyrepo_c", "--mdtype=modules", str(yaml_path), str(dest / "repodata"))
    # repo_gpgcheck: a detached, armored signature of repomd.xml
    gpg(
        gnupg,
        "--detach-sign",
        "--armor",
        "--output",
        str(dest / "repodata" / "repomd.xml.asc"),
        str(dest / "repodata" / "repomd.xml"),
    )


def modules_yaml(driver_pkgs: list[Pkg]) -> str:
    by_name: dict[str, list[Pkg]] = {}
    for pkg in driver_pkgs:
        by_name.setdefault(pkg.name, []).append(pkg)
    deps_of = {
        "nvidia-open": ("nvidia-open", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"),
        "cuda-drivers": ("cuda-drivers", "nvidia-driver-cuda", "kmod-nvidia-latest-dkms"),
    }
    docs = []
    for stream, (package, versions) in STREAMS.items():
        artifacts = [
            f"      - {pkg.name}-{pkg.epoch or '0'}:{pkg.version}-{pkg.release}.noarch"
            for name in deps_of[package]
            for pkg in by_name[name]
            if pkg.version in versions
        ]
        docs.append(
            "\n".join(
                [
                    "---",
                    "document: modulemd",
                    "version: 2",
                    "data:",
                    "  name: nvidia-driver",
                    f"  stream: {stream}",
                    "  version: 20260101000000",
                    "  context: 5354414e",
                    "  arch: x86_64",
                    f"  summary: STAND-IN Nvidia driver for {stream} branch",
                    "  description: >-",
                    f"    STAND-IN module stream {stream} of vllm_infra.profiling's test repository (not NVIDIA's).",
                    "  license:",
                    "    module:",
                    "      - MIT",
                    "  profiles:",
                    "    default:",
                    "      description: Default installation",
                    "      rpms:",
                    f"        - {package}",
                    "  artifacts:",
                    "    rpms:",
                    *artifacts,
                ]
            )
        )
    docs.append(
        "\n".join(
            [
                "---",
                "document: modulemd-defaults",
                "version: 1",
                "data:",
                "  module: nvidia-driver",
                f"  stream: {DEFAULT_STREAM}",
                "  profiles:",
                f"    {DEFAULT_STREAM}: [default]",
            ]
        )
    )
    return "\n".join(docs) + "\n...\n"


# --------------------------------------------------------------------------- deb


def build_deb(pkg: Pkg, stage_root: Path, out: Path) -> None:
    stage = stage_root / f"{pkg.name}_{pkg.version}-{pkg.release}"
    (stage / "DEBIAN").mkdir(parents=True)
    for path, (content, mode) in pkg.all_files().items():
        target = stage / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    control = [
        f"Package: {pkg.name}",
        f"Version: {pkg.version}-{pkg.release}",
        "Architecture: all",
        "Maintainer: vllm_infra.profiling tests <standin@vllm-infra.invalid>",
    ]
    if pkg.requires:
        control.append(f"Depends: {', '.join(pkg.requires)}")
    if pkg.conflicts:
        control.append(f"Conflicts: {', '.join(pkg.conflicts)}")
    control.append(f"Description: {pkg.summary()}\n Installs marker files only.")
    (stage / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
    out.mkdir(parents=True, exist_ok=True)
    run(
        "dpkg-deb",
        "--root-owner-group",
        "-Zgzip",
        "--build",
        str(stage),
        str(out / f"{pkg.name}_{pkg.version}-{pkg.release}_all.deb"),
        env={**os.environ, "SOURCE_DATE_EPOCH": "1767225600"},
    )


def apt_flat_repo(pkgs: list[Pkg], dest: Path, work: Path, gnupg: Path) -> None:
    stage = work / f"debstage-{dest.name}-{len(list(work.iterdir()))}"
    for pkg in pkgs:
        build_deb(pkg, stage, dest)
    packages = subprocess.run(
        ["apt-ftparchive", "packages", "."], cwd=dest, capture_output=True, text=True, check=True
    ).stdout
    (dest / "Packages").write_text(packages)
    (dest / "Packages.gz").write_bytes(gzip.compress(packages.encode(), mtime=0))
    release = subprocess.run(
        ["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=vllm_infra.profiling STAND-IN", "release", "."],
        cwd=dest,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (dest / "Release").write_text(release)
    gpg(gnupg, "--clearsign", "--output", str(dest / "InRelease"), str(dest / "Release"))
    gpg(gnupg, "--detach-sign", "--armor", "--output", str(dest / "Release.gpg"), str(dest / "Release"))


# --------------------------------------------------------------------------- gpg, image, files


def gpg(home: Path, *args: str) -> bytes:
    proc = subprocess.run(
        ["gpg", "--batch", "--yes", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", "", *args],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gpg {' '.join(args)} failed:\n{proc.stderr.decode(errors='replace')}")
    return proc.stdout


def gpu_check_image_tar(dest: Path) -> None:
    """A tiny root filesystem for `podman import`: dash, its libc, and the stand-in nvidia-smi."""

    def add(tar: tarfile.TarFile, name: str, data: bytes | None = None, mode: int = 0o755, link: str = "") -> None:
        info = tarfile.TarInfo(name)
        info.mtime = 1767225600
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
        elif data is None:
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        else:
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

    libc = Path(os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6"))
    ldso = Path(os.path.realpath("/lib64/ld-linux-x86-64.so.2"))
    with tarfile.open(dest, "w") as tar:
        for directory in ("usr", "usr/bin", "usr/lib", "usr/lib/x86_64-linux-gnu", "usr/lib64", "dev", "proc", "sys"):
            add(tar, directory)
        for directory in ("etc", "run", "tmp"):
            add(tar, directory, mode=0o1777 if directory == "tmp" else 0o755)
        add(tar, "bin", link="usr/bin")
        add(tar, "lib", link="usr/lib")
        add(tar, "lib64", link="usr/lib64")
        add(tar, "usr/bin/dash", Path("/usr/bin/dash").read_bytes())
        add(tar, "usr/bin/sh", link="dash")
        add(tar, "usr/lib/x86_64-linux-gnu/libc.so.6", libc.read_bytes())
        add(tar, "usr/lib64/ld-linux-x86-64.so.2", ldso.read_bytes())
        add(tar, "usr/bin/nvidia-smi", (HERE / "nvidia-smi.standin").read_bytes())


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def build(www: Path, work: Path) -> None:
    gnupg = Path(tempfile.mkdtemp(prefix="vi-gpg-"))
    try:
        gnupg.chmod(0o700)
        gpg(gnupg, "--quick-gen-key", KEY_UID, "rsa3072", "sign", "never")
        armored = gpg(gnupg, "--armor", "--export", KEY_UID)
        binary = gpg(gnupg, "--export", KEY_UID)
        _build(www, work, gnupg, armored, binary)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(gnupg, ignore_errors=True)


def _build(www: Path, work: Path, gnupg: Path, armored: bytes, binary: bytes) -> None:
    stamp = "# STAND-IN repository of vllm_infra.profiling's tests (tools/standin-repos/build.py), not NVIDIA's.\n"
    write(www / "standin" / "RPM-GPG-KEY-vllm-infra-standin", armored)
    write(www / "standin" / "vllm-infra-standin.gpg", binary)

    # --- NVIDIA Container Toolkit: rpm and apt, at the URLs of nvidia.github.io/libnvidia-container
    nct = www / "libnvidia-container"
    write(nct / "gpgkey", armored)
    rpm_repo(toolkit_packages("rpm"), nct / "stable" / "rpm" / "x86_64", work, gnupg)
    write(
        nct / "stable" / "rpm" / "nvidia-container-toolkit.repo",
        stamp
        + "[nvidia-container-toolkit]\n"
        + "name=nvidia-container-toolkit\n"
        + f"baseurl={BASE_URL}/libnvidia-container/stable/rpm/$basearch\n"
        + "repo_gpgcheck=1\ngpgcheck=1\nenabled=1\n"
        + f"gpgkey={BASE_URL}/libnvidia-container/gpgkey\n\n"
        + "[nvidia-container-toolkit-experimental]\n"
        + "name=nvidia-container-toolkit-experimental\n"
        + f"baseurl={BASE_URL}/libnvidia-container/experimental/rpm/$basearch\n"
        + "repo_gpgcheck=1\ngpgcheck=1\nenabled=0\n"
        + f"gpgkey={BASE_URL}/libnvidia-container/gpgkey\n",
    )
    apt_flat_repo(toolkit_packages("deb"), nct / "stable" / "deb" / "amd64", work, gnupg)
    write(
        nct / "stable" / "deb" / "nvidia-container-toolkit.list",
        f"deb {BASE_URL}/libnvidia-container/stable/deb/$(ARCH) /\n",
    )

    # --- CUDA repository for RHEL 9: driver packages + dnf module metadata
    cuda9 = www / "compute" / "cuda" / "repos" / "rhel9" / "x86_64"
    driver_rpms = driver_packages_rpm()
    rpm_repo(driver_rpms, cuda9, work, gnupg, modules_yaml(driver_rpms))
    write(cuda9 / "D42D0685.pub", armored)
    write(
        cuda9 / "cuda-rhel9.repo",
        stamp
        + "[cuda-rhel9-x86_64]\n"
        + "name=cuda-rhel9-x86_64\n"
        + f"baseurl={BASE_URL}/compute/cuda/repos/rhel9/x86_64\n"
        + "enabled=1\ngpgcheck=1\n"
        + f"gpgkey={BASE_URL}/compute/cuda/repos/rhel9/x86_64/D42D0685.pub\n",
    )

    # --- CUDA repository for RHEL 10: the same driver packages, no module streams
    cuda10 = www / "compute" / "cuda" / "repos" / "rhel10" / "x86_64"
    rpm_repo(driver_packages_rpm("el10"), cuda10, work, gnupg)
    write(cuda10 / "D42D0685.pub", armored)
    write(
        cuda10 / "cuda-rhel10.repo",
        stamp
        + "[cuda-rhel10-x86_64]\n"
        + "name=cuda-rhel10-x86_64\n"
        + f"baseurl={BASE_URL}/compute/cuda/repos/rhel10/x86_64\n"
        + "enabled=1\ngpgcheck=1\n"
        + f"gpgkey={BASE_URL}/compute/cuda/repos/rhel10/x86_64/D42D0685.pub\n",
    )

    # --- CUDA repository for Debian 12 (flat, as NVIDIA's) and its cuda-keyring package
    cuda12 = www / "compute" / "cuda" / "repos" / "debian12" / "x86_64"
    apt_flat_repo(driver_packages_deb(), cuda12, work, gnupg)
    build_deb(
        Pkg("cuda-keyring", "1.1", files={"/usr/share/keyrings/cuda-archive-keyring.gpg": (binary, 0o644)}),
        work / "keyring",
        cuda12,
    )

    # --- "the distribution's own" repositories the roles expect on the host
    el9 = www / "standin" / "rhel9"
    rpm_repo(
        [
            Pkg("kernel-headers", EL9_KERNEL[0], EL9_KERNEL[1]),
            Pkg("kernel-devel", EL9_KERNEL[0], EL9_KERNEL[1]),
            Pkg(
                "kernel-devel-matched",
                EL9_KERNEL[0],
                EL9_KERNEL[1],
                requires=(f"kernel-devel = {'-'.join(EL9_KERNEL)}",),
            ),
            # marker only: the library itself is the image's Debian python3-yaml
            Pkg("python3-pyyaml", "5.4.1", "6.el9"),
            # marker only: the plugin itself is the image's Debian dnf-plugins-core (RHEL 10 path)
            Pkg("python3-dnf-plugin-versionlock", "4.3.0", "20.el9"),
        ],
        el9 / "appstream",
        work,
        gnupg,
    )
    rpm_repo([], el9 / "crb", work, gnupg)
    epel_repo = (
        stamp
        + "[epel]\nname=STAND-IN Extra Packages for Enterprise Linux 9\n"
        + f"baseurl={BASE_URL}/standin/rhel9/epel\n"
        + "enabled=1\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL-9\n"
    )
    rpm_repo([Pkg("dkms", "3.2.1", "1.el9")], el9 / "epel", work, gnupg)
    epel_release = Pkg(
        "epel-release",
        "9",
        "10.el9",
        files={
            "/etc/yum.repos.d/epel.repo": (epel_repo.encode(), 0o644),
            "/etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL-9": (armored, 0o644),
        },
    )
    build_rpm(epel_release, work / "rpmbuild-epel-release", el9)
    run(
        "rpmsign",
        "--define",
        f"_gpg_path {gnupg}",
        "--define",
        f"_gpg_name {KEY_UID}",
        "--define",
        "__gpg /usr/bin/gpg",
        "--addsign",
        str(el9 / "epel-release-9-10.el9.noarch.rpm"),
    )
    key_url = f"{BASE_URL}/standin/RPM-GPG-KEY-vllm-infra-standin"
    write(
        el9 / "standin-rhel9.repo",
        stamp
        + "[rhel-9-for-x86_64-appstream-rpms]\n"
        + "name=STAND-IN Red Hat Enterprise Linux 9 for x86_64 - AppStream\n"
        + f"baseurl={BASE_URL}/standin/rhel9/appstream\n"
        + f"enabled=1\ngpgcheck=1\ngpgkey={key_url}\n\n"
        + "[codeready-builder-for-rhel-9-x86_64-rpms]\n"
        + "name=STAND-IN Red Hat CodeReady Linux Builder for RHEL 9 x86_64\n"
        + f"baseurl={BASE_URL}/standin/rhel9/crb\n"
        + f"enabled=0\ngpgcheck=1\ngpgkey={key_url}\n",
    )

    deb12 = www / "standin" / "debian12"
    apt_flat_repo([Pkg(f"linux-headers-{platform.release()}", "6.1.0", "1")], deb12, work, gnupg)
    write(
        deb12 / "standin-debian12.list",
        stamp + f"deb [signed-by=/usr/share/keyrings/vllm-infra-standin.gpg] {BASE_URL}/standin/debian12 /\n",
    )

    gpu_check_image_tar(www / "standin" / "gpu-check-image.tar")


def ensure(force: bool = False) -> Path:
    """Return the web root of the stand-in repositories, building them when their inputs changed."""
    parent = images.cache_dir() / "standin-repos"
    key = inputs_hash()
    root = parent / key
    if not force and (root / ".complete").is_file():
        return root / "www"
    parent.mkdir(parents=True, exist_ok=True)
    # Test processes running side by side (pytest -n) may both find it missing: one builds, the other waits.
    with open(parent / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and (root / ".complete").is_file():
            return root / "www"
        return _build_into(parent, key, root)


def _build_into(parent: Path, key: str, root: Path) -> Path:
    print(f"standin-repos: building {root}", file=sys.stderr, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=parent))
    try:
        (tmp / "work").mkdir()
        build(tmp / "www", tmp / "work")
        shutil.rmtree(tmp / "work")
        (tmp / ".complete").write_text(key + "\n")
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Older builds go after a day, not at once: a concurrent test run may still serve one.
    for old in parent.iterdir():
        if old.name != key and time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    # world-readable: the tree is bind-mounted into containers and served there
    root.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return root / "www"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=("path", "env"), default="path")
    parser.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    args = parser.parse_args(argv)
    www = ensure(force=args.force)
    print(f"VLLM_INFRA_STANDIN_REPOS={www}" if args.command == "env" else www)
    return 0


if __name__ == "__main__":
    sys.exit(main())
