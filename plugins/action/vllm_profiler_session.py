# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright (c) vllm_infra.profiling contributors
"""Action plugin of vllm_profiler_session: runs the module on the host, then, with ``fetch_dest``, copies the
session's traces to the controller in the same task.

One task instead of a capture task plus a fetch task per file: each task costs Ansible a worker, templating
and callbacks, and ansible.builtin.fetch runs a stat module per file before it copies. Here the module
returns the SHA-1 of each trace and key-averages table (it has just read the traces to check them), the file
is copied through the connection and checked against it. Under become the connection's user may not read the
files (the server writes them as the container's uid): then each is read through ansible.builtin.slurp, as
ansible.builtin.fetch does.
"""

from __future__ import annotations

import base64
import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase
from ansible.utils.hashing import checksum_s, secure_hash
from ansible.utils.path import makedirs_safe

MODULE = "vllm_infra.profiling.vllm_profiler_session"


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        try:
            result.update(self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars))
            dest = self._task.args.get("fetch_dest")
            if dest and not result.get("failed") and not self._task.check_mode:
                # The key-averages tables too (vLLM 0.13-0.15 rewrite profiler_out_<rank>.txt at every capture).
                outputs = result.get("traces", []) + result.get("tables", [])
                result["fetched"] = [self._fetch(output, dest, task_vars) for output in outputs]
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=str(exc))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _fetch(self, trace, dest_dir, task_vars):
        source = trace["path"]
        dest_dir = self._loader.path_dwim(os.path.expanduser(dest_dir))
        dest = os.path.join(dest_dir, os.path.basename(source))
        makedirs_safe(dest_dir)
        expected = trace.get("checksum")
        slurp = bool(self._connection.become) or not expected
        if slurp:
            slurped = self._execute_module(
                module_name="ansible.legacy.slurp", module_args={"src": source}, task_vars=task_vars
            )
            if slurped.get("failed"):
                raise AnsibleActionFail(f"could not read {source} to fetch it: {slurped.get('msg')}")
            data = base64.b64decode(slurped["content"])
            expected = expected or checksum_s(data)
            with open(to_bytes(dest, errors="surrogate_or_strict"), "wb") as fh:
                fh.write(data)
        else:
            self._connection.fetch_file(source, dest)
        got = secure_hash(dest)
        if got != expected:
            raise AnsibleActionFail(f"checksum mismatch fetching {source} to {dest}: {got} != {expected}")
        return {"path": source, "dest": dest, "checksum": got, "via": "slurp" if slurp else "connection"}
