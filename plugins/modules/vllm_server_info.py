#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
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
  - vllm_infra.profiling.vllm_api
options:
  container:
    description: Name of the podman container that runs the server, watched while waiting.
    type: str
  podman_executable:
    description: The podman binary (a name on E(PATH) or a path).
    type: str
    default: podman
  log_lines:
    description: How many of the container's last log lines a failure shows.
    type: int
    default: 40
author:
  - vllm_infra.profiling contributors (@vllm-infra)
"""

EXAMPLES = r"""
- name: Wait for the server in container vllm-profile (up to 20 minutes)
  vllm_infra.profiling.vllm_server_info:
    url: http://127.0.0.1:8000
    container: vllm-profile
    ready_timeout: 1200
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
waited:
  description: Seconds spent waiting for C(/health).
  returned: success
  type: float
  sample: 27.4
container_state:
  description: The watched container's state (C(running), C(exited), ...), when O(container) is set.
  returned: when O(container) is set
  type: str
  sample: running
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils._container import (
    container_log_tail,
    container_state,
)
from ansible_collections.vllm_infra.profiling.plugins.module_utils._vllm_api import (
    VLLM_CONNECTION_ARGS,
    VllmApiError,
    client_from_params,
)


class ContainerStopped(Exception):
    """The watched container is no longer running."""


class ServerWaiter:
    """Polls /health while watching the container, then reads /version and /v1/models."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.client = client_from_params(self.params)
        self.podman = module.get_bin_path(self.params["podman_executable"], required=bool(self.params["container"]))
        self.last_state = None

    def check_container(self) -> None:
        if not self.params["container"]:
            return
        self.last_state = container_state(self.module, self.podman, self.params["container"])
        if self.last_state != "running":
            raise ContainerStopped(self.last_state)

    def pause(self, seconds: float) -> None:
        """wait_ready's sleep: look at the container between two polls, so a dead server ends the wait."""
        self.check_container()
        time.sleep(seconds)

    def fail_with_logs(self, msg: str, **extra) -> None:
        if self.params["container"]:
            lines = self.params["log_lines"]
            tail = container_log_tail(self.module, self.podman, self.params["container"], lines)
            msg = f"{msg}\nLast {lines} log lines of {self.params['container']}:\n{tail}"
        self.module.fail_json(msg=msg, container_state=self.last_state, **extra)

    def run(self) -> dict:
        try:
            self.check_container()
            waited = self.client.wait_ready(self.params["ready_timeout"], sleep=self.pause)
            result = {"waited": round(waited, 1), "version": self.client.version(), "models": self.client.models()}
        except ContainerStopped as exc:
            self.fail_with_logs(
                f"Container {self.params['container']} is {exc}, not running: the server did not start."
            )
        except VllmApiError as exc:
            self.fail_with_logs(str(exc))
        if self.last_state is not None:
            result["container_state"] = self.last_state
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **VLLM_CONNECTION_ARGS,
            "container": {"type": "str"},
            "podman_executable": {"type": "str", "default": "podman"},
            "log_lines": {"type": "int", "default": 40},
        },
        supports_check_mode=True,
    )
    module.exit_json(changed=False, **ServerWaiter(module).run())


if __name__ == "__main__":
    main()
