#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
module: vllm_server_info
short_description: Wait for a vLLM server and read its version and models
version_added: 0.1.0
description:
  - Waits until a vLLM OpenAI-compatible server answers C(/health), then reads C(/version) and C(/v1/models).
  - When O(container) names the podman container that runs the server, the wait ends at once if that container
    stops, and the failure carries the container's last log lines (a missing model, a port in use, too little
    C(/dev/shm)), instead of waiting for the whole timeout.
  - Runs on the host that serves vLLM (or any host that can reach O(url)).
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
  - vllm_infra.profiling.attributes.INFO_MODULE
options:
  url:
    description: Base URL of the server.
    type: str
    default: http://127.0.0.1:8000
  api_key:
    description: API key the server requires (sent as a Bearer token).
    type: str
  container:
    description: Name of the podman container that runs the server, watched while waiting.
    type: str
  podman_executable:
    description: The podman binary (a name on E(PATH) or a path).
    type: str
    default: podman
  wait_timeout:
    description:
      - Seconds to wait for C(/health) to answer 200. V(0) asks once and fails if the server is not ready.
      - Loading a large model (and downloading it) takes minutes.
    type: int
    default: 600
  request_timeout:
    description: Seconds for each HTTP request.
    type: int
    default: 10
  log_lines:
    description: How many of the container's last log lines a failure shows.
    type: int
    default: 40
author:
  - vllm_infra.profiling contributors
"""

EXAMPLES = r"""
- name: Wait for the server in container vllm-profile (up to 20 minutes)
  vllm_infra.profiling.vllm_server_info:
    url: http://127.0.0.1:8000
    container: vllm-profile
    wait_timeout: 1200
  register: server

- name: Show what it serves
  ansible.builtin.debug:
    msg: "vLLM {{ server.version }} serves {{ server.models | join(', ') }}"
"""

RETURN = r"""
version:
  description: The server's vLLM version (C(/version)).
  returned: success
  type: str
  sample: 0.32.0
models:
  description: Model ids the server serves (C(/v1/models)).
  returned: success
  type: list
  elements: str
  sample: [/models/tiny-qwen3]
max_model_len:
  description: The first model's context length, when the server says.
  returned: success
  type: int
  sample: 512
waited:
  description: Seconds spent waiting for C(/health).
  returned: always
  type: float
  sample: 27.4
container_state:
  description: The watched container's state (C(running), C(exited), ...), when O(container) is set.
  returned: when O(container) is set
  type: str
  sample: running
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.vllm_infra.profiling.plugins.module_utils._container import (
    container_log_tail,
    container_state,
)


class ServerWaiter:
    """Polls /health, watching the container, then reads /version and /v1/models."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.url = self.params["url"].rstrip("/")
        self.headers = {}
        if self.params["api_key"]:
            self.headers["Authorization"] = f"Bearer {self.params['api_key']}"
        self.podman = module.get_bin_path(self.params["podman_executable"], required=bool(self.params["container"]))

    def get(self, path: str):
        resp = open_url(
            f"{self.url}{path}",
            method="GET",
            headers=self.headers,
            timeout=self.params["request_timeout"],
            validate_certs=True,
        )
        return resp.read()

    def state(self) -> str | None:
        if not self.params["container"]:
            return None
        return container_state(self.module, self.podman, self.params["container"])

    def fail_with_logs(self, msg: str, **extra) -> None:
        if self.params["container"]:
            tail = container_log_tail(self.module, self.podman, self.params["container"], self.params["log_lines"])
            msg = f"{msg}\nLast {self.params['log_lines']} log lines of {self.params['container']}:\n{tail}"
        self.module.fail_json(msg=msg, **extra)

    def wait(self) -> dict:
        start = time.monotonic()
        deadline = start + self.params["wait_timeout"]
        last_error = ""
        while True:
            state = self.state()
            if state is not None and state != "running":
                self.fail_with_logs(
                    f"Container {self.params['container']} is {state}, not running: the server did not start.",
                    waited=round(time.monotonic() - start, 1),
                    container_state=state,
                )
            try:
                self.get("/health")
                break
            except Exception as exc:  # any failure here only means "not ready yet"
                last_error = str(exc)
            if time.monotonic() >= deadline:
                self.fail_with_logs(
                    f"{self.url}/health did not answer within {self.params['wait_timeout']}s "
                    f"(last error: {last_error}).",
                    waited=round(time.monotonic() - start, 1),
                    container_state=state,
                )
            time.sleep(1)
        result = {"waited": round(time.monotonic() - start, 1)}
        if state is not None:
            result["container_state"] = state
        result["version"] = json.loads(self.get("/version")).get("version", "")
        models = json.loads(self.get("/v1/models")).get("data", [])
        result["models"] = [m.get("id") for m in models]
        if models and models[0].get("max_model_len") is not None:
            result["max_model_len"] = models[0]["max_model_len"]
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "default": "http://127.0.0.1:8000"},
            "api_key": {"type": "str", "no_log": True},
            "container": {"type": "str"},
            "podman_executable": {"type": "str", "default": "podman"},
            "wait_timeout": {"type": "int", "default": 600},
            "request_timeout": {"type": "int", "default": 10},
            "log_lines": {"type": "int", "default": 40},
        },
        supports_check_mode=True,
    )
    module.exit_json(changed=False, **ServerWaiter(module).wait())


if __name__ == "__main__":
    main()
