# SPDX-License-Identifier: GPL-3.0-or-later
"""Verify the converged Debian 12 host (molecule verifier: testinfra over podman exec).

Stand-in packages, real apt/dpkg/podman: versions, the apt sources with their signed-by keys, the
driver's apt pin, the CDI spec the stand-in nvidia-ctk wrote and a real podman run that applies it.
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
    assert pkg.version == "1.17.8-1"


def test_driver_is_the_newest(host):
    for name in ("nvidia-open", "nvidia-driver-cuda", "nvidia-kernel-open-dkms"):
        assert host.package(name).version == "580.105.08-1", name
    assert not host.package("cuda-drivers").is_installed
    assert host.package("cuda-keyring").is_installed
    assert host.package(f"linux-headers-{host.check_output('uname -r')}").is_installed


def test_driver_held_by_an_apt_pin(host):
    pin = host.file("/etc/apt/preferences.d/vllm-infra-nvidia-driver").content_string
    assert "Pin: version 580.105.08-1" in pin
    assert "Pin-Priority: 1001" in pin
    policy = host.check_output("apt-cache policy nvidia-open")
    assert "Candidate: 580.105.08-1" in policy


def test_apt_sources_are_signed_by(host):
    cuda = host.file("/etc/apt/sources.list.d/cuda-debian12-x86_64.list").content_string
    assert (
        "deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] "
        "http://127.0.0.1:8080/compute/cuda/repos/debian12/x86_64/ /" in cuda
    )
    assert host.file("/usr/share/keyrings/cuda-archive-keyring.gpg").is_file
    toolkit = host.file("/etc/apt/sources.list.d/nvidia-container-toolkit.list").content_string
    assert (
        "deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.asc] "
        "http://127.0.0.1:8080/libnvidia-container/stable/deb/$(ARCH) /" in toolkit
    )
    assert (
        "BEGIN PGP PUBLIC KEY BLOCK"
        in host.file("/usr/share/keyrings/nvidia-container-toolkit-keyring.asc").content_string
    )


def test_nouveau_blacklisted(host):
    assert "blacklist nouveau" in host.file("/etc/modprobe.d/blacklist-nouveau.conf").content_string


def test_cdi_spec_written_by_the_standin_nvidia_ctk(host):
    spec = host.file("/etc/cdi/nvidia.yaml").content_string
    assert 'cdiVersion: "0.5.0"' in spec
    assert "/usr/lib/x86_64-linux-gnu/libcuda.so.580.105.08" in spec


def test_real_podman_applies_the_spec(host):
    run = host.run(
        "podman run --rm --network=none --device nvidia.com/gpu=all localhost/nvidia-gpu-check-standin nvidia-smi -L"
    )
    assert run.rc == 0, run.stderr
    assert run.stdout.startswith("GPU 0: NVIDIA Stand-in GPU")
    assert "driver 580.105.08" in run.stdout
