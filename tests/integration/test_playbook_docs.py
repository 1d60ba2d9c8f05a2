# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet playbooks' documentation is true: examples, docs/variables.md, AWX surveys and job templates.

* every variable of playbooks/vars/examples/*.yml is a documented one and passes its role's argument spec
  (ansible-core's own validator, as the role runs it at its start);
* docs/variables.md is generated from the current argument specs (tools/docs/variables.py --check);
* every survey question sets a documented variable, its choices are choices the role accepts, and its default
  is the role's default (so a survey left at its defaults runs what the docs describe);
* the job templates name playbooks that exist and pass ansible-playbook --syntax-check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from support import ansible

REPO = ansible.REPO
ROLES = ("nvidia_driver", "container_toolkit", "vllm_profile")
EXAMPLES = sorted((REPO / "playbooks" / "vars" / "examples").glob("*.yml"))

sys.path.insert(0, str(REPO / "tools" / "docs"))
import variables as variables_doc  # noqa: E402  (tools/docs/variables.py)


def role_options() -> dict[str, tuple[str, dict]]:
    out = {}
    for role in ROLES:
        spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
        for name, option in spec["argument_specs"]["main"]["options"].items():
            out[name] = (role, option)
    return out


OPTIONS = role_options()
PLAYBOOK_VARS = {row[0] for row in variables_doc.PLAYBOOK_VARS}


def test_there_are_the_four_documented_examples() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"rhel9_l4_qwen3_fp8", "pinned_driver_branch", "private_registry_mirror", "airgapped_local_repos"} <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_variables_are_documented_and_valid(example: Path) -> None:
    data = yaml.safe_load(example.read_text())
    unknown = sorted(set(data) - set(OPTIONS) - PLAYBOOK_VARS)
    assert not unknown, f"{example.name}: not documented in docs/variables.md: {unknown}"
    for role in ROLES:
        spec = {name: option for name, (r, option) in OPTIONS.items() if r == role and name in data}
        if not spec:
            continue
        # defaults are the role's business; here only the example's own values are checked
        spec = {
            name: {k: v for k, v in option.items() if k not in ("default", "description")}
            for name, option in spec.items()
        }
        result = ArgumentSpecValidator(spec).validate({name: data[name] for name in spec})
        assert not result.error_messages, f"{example.name} ({role}): {result.error_messages}"


def test_variables_doc_is_up_to_date() -> None:
    assert variables_doc.main(["--check"]) == 0, "run tools/docs/variables.py"
    text = (REPO / "docs" / "variables.md").read_text()
    for name in list(OPTIONS) + sorted(PLAYBOOK_VARS):
        assert f"`{name}`" in text, name


def test_every_role_option_is_described() -> None:
    assert variables_doc.undescribed_options() == []


@pytest.mark.parametrize(
    ("description", "undescribed"),
    [
        ("", True),
        (None, True),
        ("vllm_profile_port", True),
        ("`vllm_profile_port`.", True),
        ("VLLM_PROFILE_PORT", True),
        ("Host port the server's API is published on.", False),
        ("vllm_profile_port of the server", False),
    ],
)
def test_the_generator_refuses_name_only_descriptions(
    description: str | None, undescribed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    role = tmp_path / "roles" / "r" / "meta"
    role.mkdir(parents=True)
    option = {"type": "int"} if description is None else {"type": "int", "description": description}
    spec = {"argument_specs": {"main": {"options": {"vllm_profile_port": option}}}}
    (role / "argument_specs.yml").write_text(yaml.safe_dump(spec))
    monkeypatch.setattr(variables_doc, "REPO", tmp_path)
    assert variables_doc.undescribed_options() == (["r main vllm_profile_port"] if undescribed else [])
    if undescribed:
        assert variables_doc.main(["--check"]) == 1
        assert "r main vllm_profile_port" in capsys.readouterr().err


@pytest.mark.parametrize("survey", sorted((REPO / "docs" / "awx").glob("survey_*.json")), ids=lambda p: p.stem)
def test_survey_questions_match_the_roles(survey: Path) -> None:
    spec = json.loads(survey.read_text())["spec"]
    assert spec and len({q["variable"] for q in spec}) == len(spec)
    for question in spec:
        var = question["variable"]
        assert var in OPTIONS or var in PLAYBOOK_VARS, f"{survey.name}: {var} is not documented"
        assert question["type"] in ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
        if var not in OPTIONS:
            continue
        option = OPTIONS[var][1]
        choices = question.get("choices", "").split("\n") if question["type"] == "multiplechoice" else []
        if option.get("choices"):
            assert set(choices) <= {str(c) for c in option["choices"]}, (var, choices)
        if option.get("type") == "bool":
            assert set(choices) == {"true", "false"}, var
        if option.get("type") == "int":
            assert question["type"] == "integer", var
        if "default" in option and option["default"] not in (None, ""):
            expected = str(option["default"]).lower() if option.get("type") == "bool" else option["default"]
            assert question["default"] == expected, (var, question["default"], option["default"])


def test_job_templates_name_playbooks_that_parse() -> None:
    data = yaml.safe_load((REPO / "docs" / "awx" / "job_templates.yml").read_text())
    playbooks = {jt["playbook"] for jt in data["job_templates"]}
    assert playbooks == {"playbooks/prepare_hosts.yml", "playbooks/site.yml"}
    for jt in data["job_templates"]:
        assert (REPO / "docs" / "awx" / jt["survey"]).is_file()
    for playbook in sorted(
        playbooks | {"playbooks/profile.yml", "playbooks/profile_nsys.yml", "playbooks/profile_torch.yml"}
    ):
        proc = subprocess.run(
            ["ansible-playbook", "--syntax-check", playbook],
            cwd=REPO, env=ansible.env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
