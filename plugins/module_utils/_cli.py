# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) vllm_infra.profiling contributors
#
# PRIVATE to the collection: may change at any time. Do not use from other collections.
"""Find a command-line tool, run it, read its version.

Two layers, as in community.docker's ``_common_cli``: ``CliClientBase`` knows the binary and
builds argv but does not know how to run anything; ``ModuleCliClient`` binds it to an
``AnsibleModule`` (``get_bin_path`` with a user override, ``run_command``, ``fail_json``).
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.vllm_infra.profiling.plugins.module_utils._version import parse_version


class CliResult(t.NamedTuple):
    argv: list[str]
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together (tools such as nvidia-smi print errors on stdout)."""
        return "\n".join(part for part in (self.stdout, self.stderr) if part)


class CliClientBase:
    """A binary plus the argv that every call starts with. Subclasses provide ``_execute``."""

    def __init__(self, binary: str, base_args: t.Sequence[str] = ()) -> None:
        self.binary = binary
        self.base_args = list(base_args)
        self._version: tuple[int, ...] | None = None
        self._version_text: str | None = None

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *self.base_args, *args]

    def _execute(self, argv: list[str], environ_update: dict[str, str] | None) -> tuple[int, str, str]:
        raise NotImplementedError

    def call(self, *args: str, environ_update: dict[str, str] | None = None) -> CliResult:
        argv = self.argv(*args)
        rc, stdout, stderr = self._execute(argv, environ_update)
        return CliResult(argv, rc, stdout, stderr)

    def version(self, *args: str) -> tuple[int, ...] | None:
        """Version from ``<binary> --version`` (or ``args``), read once; None if it cannot be read."""
        if self._version_text is None:
            result = self.call(*(args or ("--version",)))
            self._version_text = result.output if result.rc == 0 else ""
            self._version = parse_version(self._version_text)
        return self._version


class ModuleCliClient(CliClientBase):
    """``CliClientBase`` bound to an AnsibleModule."""

    def __init__(
        self,
        module: t.Any,
        name: str,
        path: str | None = None,
        opt_dirs: t.Sequence[str] = (),
        base_args: t.Sequence[str] = (),
    ) -> None:
        self.module = module
        if path:
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise FileNotFoundError(f"{path} does not exist or is not executable")
            binary = path
        else:
            binary = module.get_bin_path(name, required=False, opt_dirs=list(opt_dirs))
            if not binary:
                raise FileNotFoundError(f"{name} was not found on PATH")
        super().__init__(binary, base_args)

    @classmethod
    def find(cls, module: t.Any, name: str, path: str | None = None, **kwargs: t.Any) -> ModuleCliClient | None:
        """The client, or None when the binary (or the explicit ``path``) is missing or not executable."""
        try:
            return cls(module, name, path=path, **kwargs)
        except FileNotFoundError:
            return None

    @classmethod
    def require(cls, module: t.Any, name: str, path: str | None = None, **kwargs: t.Any) -> ModuleCliClient:
        """The client, or the module fails saying the binary is not on this host."""
        client = cls.find(module, name, path=path, **kwargs)
        if client is None:
            module.fail_json(msg=f"{path or name} was not found on this host")
        return client  # type: ignore[return-value]

    def _execute(self, argv: list[str], environ_update: dict[str, str] | None) -> tuple[int, str, str]:
        rc, stdout, stderr = self.module.run_command(argv, environ_update=environ_update or {}, check_rc=False)
        return rc, stdout, stderr

    def call_checked(self, *args: str, **kwargs: t.Any) -> CliResult:
        """Like ``call`` but fails the module, with rc/stdout/stderr, on a non-zero exit."""
        result = self.call(*args, **kwargs)
        if result.rc != 0:
            self.module.fail_json(
                msg=f"{' '.join(result.argv)} failed with exit code {result.rc}: {result.output.strip()[-2000:]}",
                cmd=result.argv,
                rc=result.rc,
                stdout=result.stdout,
                stderr=result.stderr,
            )
        return result
