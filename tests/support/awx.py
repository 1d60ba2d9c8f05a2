# SPDX-License-Identifier: GPL-3.0-or-later
"""What AWX hands to ansible-runner for a job template of docs/awx/: the survey's extra vars, typed as AWX types
them. Used by the tests that run the site job the way AWX does (test_awx_runner.py, test_execution_environment.py).
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import yaml

from . import podman

AWX = podman.REPO / "docs" / "awx"


def job_template(playbook: str) -> dict[str, t.Any]:
    """The job template of docs/awx/job_templates.yml that runs ``playbook``."""
    (template,) = [jt for jt in load()["job_templates"] if jt["playbook"] == playbook]
    return template


def load() -> dict[str, t.Any]:
    return yaml.safe_load((AWX / "job_templates.yml").read_text())


def survey(template: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    return json.loads((AWX / template["survey"]).read_text())


def survey_extra_vars(survey: dict, answers: dict) -> dict:
    """What AWX passes for a survey: answers (or defaults) typed as AWX types them."""
    out = {}
    for question in survey["spec"]:
        var, kind = question["variable"], question["type"]
        value = answers.get(var, question.get("default", ""))
        if value in ("", None) and not question.get("required"):
            continue  # AWX leaves unanswered optional questions out
        if kind == "multiplechoice":
            assert str(value) in question["choices"].split("\n"), (var, value)
        out[var] = int(value) if kind == "integer" else (float(value) if kind == "float" else str(value))
    return out


def job_extra_vars(template: t.Mapping[str, t.Any], answers: dict) -> dict[str, t.Any]:
    """The job's extra vars: the template's own, then the survey's."""
    return {**template.get("extra_vars", {}), **survey_extra_vars(survey(template), answers)}


def write_private_data_dir(private: Path, inventory: dict, extra_vars: dict, envvars: dict[str, str]) -> None:
    """inventory/hosts.yml, env/extravars, env/envvars: the private data dir AWX writes for ansible-runner."""
    (private / "inventory").mkdir(parents=True, exist_ok=True)
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (private / "env").mkdir(exist_ok=True)
    (private / "env" / "extravars").write_text(json.dumps(extra_vars))
    (private / "env" / "envvars").write_text(json.dumps(envvars))
