# SPDX-License-Identifier: GPL-3.0-or-later
"""Start the harness's real vLLM CPU image for a test, and always remove it."""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
import typing as t
from pathlib import Path

import requests

from . import podman

# The tiny model baked into localhost/vllm-cpu-tiny (tools/images/vllm-cpu-tiny).
TINY_MODEL = "/models/tiny-qwen3"
# Small enough for 2 CPU cores and a few GB of memory.
TINY_SERVER_ARGS = ("--max-model-len", "512", "--enforce-eager", "--kv-cache-memory-bytes", "67108864")

# vLLM's cache (VLLM_CACHE_ROOT) for the servers of the tests, one directory per image, kept between the servers
# as a real host keeps its cache directory between runs. vLLM writes there what it learns of the model class
# (modelinfos/); without it every start inspects the class again in a Python process of its own. Measured here:
# a start costs 31 CPU-s and is ready in 29 s without it, 23 CPU-s and 21 s with it. One directory per image,
# because the role makes the directory the image user's (uid 1001 or 2000).
CACHE_ROOT = Path(tempfile.gettempdir()) / "vllm-infra-tests" / "vllm-cache"


def shared_cache_dir(image: str) -> str:
    """The host directory for ``image``'s servers' vLLM cache: the role's vllm_profile_cache_dir, or the
    harness container's VLLM_CACHE_ROOT. Created open to the image's user; the role then takes it over."""
    path = CACHE_ROOT / re.sub(r"[^A-Za-z0-9_.-]+", "_", image)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
    return str(path)


class VllmServer:
    """A running vLLM container on a loopback port."""

    def __init__(self, name: str, port: int, api_key: str | None = None) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = podman.inspect(self.name)["State"]
            if not state["Running"]:
                raise AssertionError(
                    f"vLLM container {self.name} exited ({state['ExitCode']}):\n{podman.logs_tail(self.name)}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(1)
        raise AssertionError(f"vLLM not ready after {timeout}s:\n{podman.logs_tail(self.name)}")

    def complete(self, prompt: str = "What is the capital of France?", max_tokens: int = 10) -> dict[str, t.Any]:
        resp = requests.post(
            f"{self.url}/v1/completions",
            json={"model": TINY_MODEL, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True},
            headers=self.headers,
            timeout=60,
        )
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, **kw: t.Any) -> requests.Response:
        return requests.post(f"{self.url}{path}", headers=self.headers, timeout=kw.pop("timeout", 120), **kw)


@contextlib.contextmanager
def vllm_container(
    *,
    extra_args: t.Sequence[str] = (),
    volumes: t.Sequence[str] = (),
    env: t.Mapping[str, str] | None = None,
    prefix: str = "vllm",
    ready_timeout: float = 240,
    api_key: str | None = None,
) -> t.Iterator[VllmServer]:
    """Run the vLLM CPU image on 127.0.0.1:<free port>; removed on exit, also on failure. With ``api_key``
    the server requires it (--api-key) and the returned client sends it."""
    image = podman.ensure_image("vllm-cpu-tiny")
    name = podman.unique_name(prefix)
    port = podman.free_port()
    # vLLM's engine and workers share buffers through /dev/shm (160 MiB here).
    cmd = ["run", "-d", "--init", "--shm-size", "1g", "--name", name, "-p", f"127.0.0.1:{port}:8000"]
    # The layout the role gives its servers (VLLM_CACHE_ROOT under the cache directory), to share the cache.
    cmd += ["-v", f"{shared_cache_dir(image)}:/vllm-cache:z", "-e", "VLLM_CACHE_ROOT=/vllm-cache/vllm"]
    for volume in volumes:
        cmd += ["-v", volume]
    for key, value in (env or {}).items():
        cmd += ["-e", f"{key}={value}"]
    cmd += [image, "--model", TINY_MODEL, *TINY_SERVER_ARGS, *extra_args]
    if api_key:
        cmd += ["--api-key", api_key]
    try:
        podman.run(*cmd)
        server = VllmServer(name, port, api_key)
        server.wait_ready(ready_timeout)
        yield server
    finally:
        podman.remove(name)
