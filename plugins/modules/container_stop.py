#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors

from __future__ import annotations

DOCUMENTATION = r"""
module: container_stop
short_description: Stop a podman container gracefully, escalating from one signal to the next
version_added: 0.1.0
description:
  - Sends the first signal of O(signals) to the running container O(name) and waits up to its timeout for the
    container to exit; if it still runs, sends the next signal, and so on. When the last wait ends and it still
    runs, the container is killed and removed (C(podman rm --force --time 0)); RV(signal) is then V(SIGKILL).
  - Made for processes that write their results only when they end normally, such as Nsight Systems' C(nsys profile),
    which writes its report on SIGINT (the image's C(STOPSIGNAL); podman's init forwards it).
  - A container that is not running (exited, or missing) is left alone.
extends_documentation_fragment:
  - vllm_infra.profiling.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the container's state and reports whether it would be stopped; sends nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A stopped container is not touched again.
options:
  name:
    description: Name or id of the container.
    type: str
    required: true
  signals:
    description:
      - The signals to send in turn, each with the seconds to wait for the exit before the next one.
    type: list
    elements: dict
    default: [{signal: SIGINT, timeout: 600}, {signal: SIGTERM, timeout: 60}]
    suboptions:
      signal:
        description: Signal name or number as C(podman kill --signal) takes it.
        type: str
        required: true
      timeout:
        description: Seconds to wait for the exit after sending it.
        type: float
        required: true
  podman_executable:
    description: The podman binary (a name on E(PATH) or a path).
    type: str
    default: podman
author:
  - vllm_infra.profiling contributors (@vllm-infra)
"""

EXAMPLES = r"""
- name: Stop the nsys-wrapped server so that nsys writes its report
  vllm_infra.profiling.container_stop:
    name: vllm-profile
    signals:
      - {signal: SIGINT, timeout: 600}
      - {signal: SIGTERM, timeout: 60}
  register: stopped

- name: Fail when it had to be killed
  ansible.builtin.fail:
    msg: nsys was killed after {{ stopped.seconds }}s; no report was written
  when: stopped.signal == 'SIGKILL'
"""

RETURN = r"""
was_running:
  description: Whether the container was running (and so was stopped).
  returned: always
  type: bool
signal:
  description: The signal that ended the container, V(SIGKILL) when it was killed, V(none) when it was not running.
  returned: always
  type: str
  sample: SIGINT
sent:
  description: The signals sent, in order (without the final kill). In check mode, the first one that would be.
  returned: always
  type: list
  elements: str
  sample: [SIGINT]
seconds:
  description: Seconds from the first signal to the exit, or to the removal.
  returned: always
  type: float
  sample: 1.3
exit_code:
  description: The container's exit code, as podman reports it; empty when it was killed or not running.
  returned: always
  type: str
  sample: "0"
removed:
  description: Whether the container was killed and removed.
  returned: always
  type: bool
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vllm_infra.profiling.plugins.module_utils._container import (
    StopFailed,
    escalate,
    parse_running,
)

# How often the container's state is read while waiting (podman wait polls at 250 ms too).
POLL_INTERVAL = 0.2


class ContainerStopper:
    """The podman side of ``escalate``: read the state, send a signal, wait, remove."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.name = module.params["name"]
        self.podman = module.get_bin_path(module.params["podman_executable"], required=True)

    def state(self) -> tuple[bool, str]:
        fmt = "{{.State.Running}} {{.State.ExitCode}}"
        rc, out, _err = self.module.run_command([self.podman, "container", "inspect", "--format", fmt, self.name])
        return parse_running(out) if rc == 0 else (False, "")

    def is_running(self) -> bool:
        return self.state()[0]

    def send(self, signal: str) -> None:
        rc, _out, err = self.module.run_command([self.podman, "kill", "--signal", signal, self.name])
        # It may have exited between the state read and the signal: then the wait ends at once.
        if rc != 0 and "running" not in err:
            raise StopFailed(f"podman kill --signal {signal} {self.name} failed: {err.strip()}")

    def wait(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            running, code = self.state()
            if not running:
                return code
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_INTERVAL)

    def remove(self) -> None:
        rc, _out, err = self.module.run_command([self.podman, "rm", "--force", "--time", "0", self.name])
        if rc != 0:
            raise StopFailed(f"podman rm --force {self.name} failed: {err.strip()}")

    def run(self) -> dict:
        steps = [(step["signal"], step["timeout"]) for step in self.module.params["signals"]]
        if not steps:
            self.module.fail_json(msg="signals must name at least one signal")
        if self.module.check_mode:
            running = self.is_running()
            would = {"was_running": running, "signal": "none", "sent": [steps[0][0]] if running else []}
            return {"changed": running, "seconds": 0.0, "exit_code": "", "removed": False, **would}
        try:
            result = escalate(
                steps,
                is_running=self.is_running,
                send=self.send,
                wait=self.wait,
                remove=self.remove,
                clock=time.monotonic,
            )
        except StopFailed as exc:
            self.module.fail_json(msg=str(exc))
        return {"changed": result["was_running"], **result}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "signals": {
                "type": "list",
                "elements": "dict",
                "default": [{"signal": "SIGINT", "timeout": 600}, {"signal": "SIGTERM", "timeout": 60}],
                "options": {
                    "signal": {"type": "str", "required": True},
                    "timeout": {"type": "float", "required": True},
                },
            },
            "podman_executable": {"type": "str", "default": "podman"},
        },
        supports_check_mode=True,
    )
    module.exit_json(**ContainerStopper(module).run())


if __name__ == "__main__":
    main()
