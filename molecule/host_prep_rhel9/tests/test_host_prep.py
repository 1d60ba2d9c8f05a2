# SPDX-License-Identifier: GPL-3.0-or-later
"""Verify the converged RHEL 9 stand-in (molecule verifier: testinfra over podman exec).

Stand-in packages, real dnf/rpm/podman: versions, repository files, the enabled module stream, the
CDI spec the stand-in nvidia-ctk wrote and a real podman run that applies it.
"""

from __future__ import annotations

import pytest

TOOLKIT = (
    "nvidia-container-toolkit",
    "nvidia-container-toolkit-base",
    "libnvidia-container-tools",
    "libnvidia-container1",
)


@pytest.mark.parametrize("name", TOOLKIT)
def test_toolkit_pinned_to_one_version(host, name):
    pkg = host.package(name)
    assert pkg.is_installed
    assert (pkg.version, pkg.release) == ("1.17.8", "1")


def test_driver_is_the_newest_of_the_floating_stream(host):
    for name in ("nvidia-open", "nvidia-driver-cuda", "kmod-nvidia-open-dkms"):
        pkg = host.package(name)
        assert (pkg.version, pkg.release) == ("580.105.08", "1.el9"), name
    assert not host.package("cuda-drivers").is_installed


def test_open_dkms_stream_enabled(host):
    out = host.check_output("dnf -q module list --enabled nvidia-driver")
    enabled = [line.split()[1] for line in out.splitlines() if line.startswith("nvidia-driver ")]
    assert enabled == ["open-dkms"]


def test_prerequisites(host):
    assert host.package("kernel-devel-matched").is_installed
    assert host.package("kernel-headers").is_installed
    assert host.package("epel-release").is_installed
    assert host.package("dkms").is_installed  # from the (stand-in) EPEL repository
    repos = host.check_output("dnf -q repolist --enabled")
    assert "codeready-builder-for-rhel-9-x86_64-rpms" in repos


def test_repository_files(host):
    cuda = host.file("/etc/yum.repos.d/cuda-rhel9.repo")
    assert cuda.is_file and cuda.mode == 0o644
    assert "baseurl=http://127.0.0.1:8080/compute/cuda/repos/rhel9/x86_64" in cuda.content_string
    assert "gpgcheck=1" in cuda.content_string
    toolkit = host.file("/etc/yum.repos.d/nvidia-container-toolkit.repo")
    assert "[nvidia-container-toolkit]" in toolkit.content_string
    assert "repo_gpgcheck=1" in toolkit.content_string


def test_packages_are_signature_checked(host):
    # gpgcheck is on: rpm verified the stand-in key's signature on what was installed
    out = host.check_output("rpm -q --qf '%{NAME} %{RSAHEADER:pgpsig}\\n' nvidia-open nvidia-container-toolkit")
    for line in out.splitlines():
        assert "Key ID" in line, line


def test_nouveau_blacklisted(host):
    conf = host.file("/etc/modprobe.d/blacklist-nouveau.conf")
    assert "blacklist nouveau" in conf.content_string
    assert "options nouveau modeset=0" in conf.content_string


def test_cdi_spec_written_by_the_standin_nvidia_ctk(host):
    spec = host.file("/etc/cdi/nvidia.yaml").content_string
    assert 'cdiVersion: "0.5.0"' in spec
    assert 'kind: "nvidia.com/gpu"' in spec
    assert "/usr/lib64/libcuda.so.580.105.08" in spec
    assert "STAND-IN" in host.check_output("nvidia-ctk --version")


def test_real_podman_applies_the_spec(host):
    run = host.run(
        "podman run --rm --network=none --device nvidia.com/gpu=all localhost/nvidia-gpu-check-standin nvidia-smi -L"
    )
    assert run.rc == 0, run.stderr
    assert run.stdout.startswith("GPU 0: NVIDIA Stand-in GPU")
    assert "driver 580.105.08" in run.stdout
    # without the device podman injects nothing, and the stand-in nvidia-smi fails as the real one does
    bare = host.run("podman run --rm --network=none localhost/nvidia-gpu-check-standin nvidia-smi -L")
    assert bare.rc == 9
    assert "couldn't communicate with the NVIDIA driver" in bare.stdout
