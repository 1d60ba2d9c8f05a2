# SPDX-License-Identifier: GPL-3.0-or-later
"""The vLLM connection options: one argument-spec dict and one doc fragment, the same in every module that
talks to vLLM (names, types, defaults, aliases)."""

from __future__ import annotations

import typing as t

import pytest
import yaml
from support.module_spec import argument_spec

from ansible_collections.vllm_infra.profiling.plugins.doc_fragments import vllm_api as fragment
from ansible_collections.vllm_infra.profiling.plugins.module_utils._vllm_api import VLLM_CONNECTION_ARGS
from ansible_collections.vllm_infra.profiling.plugins.modules import vllm_profiler_session, vllm_server_info

MODULES = [vllm_profiler_session, vllm_server_info]


def test_the_fragment_documents_the_shared_spec() -> None:
    options = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(options) == set(VLLM_CONNECTION_ARGS)
    for name, spec in VLLM_CONNECTION_ARGS.items():
        assert options[name]["type"] == spec["type"], name
        assert options[name].get("default") == spec.get("default"), name
        assert options[name].get("aliases") == spec.get("aliases"), name
        assert options[name]["description"], name
    assert VLLM_CONNECTION_ARGS["api_key"]["no_log"] is True


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_every_vllm_module_takes_the_shared_options(module: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = argument_spec(module, monkeypatch)
    assert {name: spec[name] for name in VLLM_CONNECTION_ARGS} == VLLM_CONNECTION_ARGS
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert "vllm_infra.profiling.vllm_api" in doc["extends_documentation_fragment"]
    # The module documents only its own options; the shared ones come from the fragment.
    assert set(doc["options"]) == set(spec) - set(VLLM_CONNECTION_ARGS)
    for name, option in doc["options"].items():
        assert option["type"] == spec[name]["type"], name
        assert option.get("default") == spec[name].get("default"), name
