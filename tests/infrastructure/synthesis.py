"""The production stacks synthesized as `make synth` does, into a temporary cloud assembly:
shared by the template checks (test_cdk.py) and the packaged-handler test (test_packages.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings
from infra.stage import apply_environment, load_stage

ROOT = Path(__file__).resolve().parents[2]
STAGE = load_stage("prod")
PROD = Settings(stage="prod", resource_prefix=STAGE.resource_prefix)


def prod_env() -> dict[str, str]:
    env = dict(os.environ)
    apply_environment(STAGE, env)
    return env


@dataclass
class Synth:
    outdir: Path
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resources(self, type_: str, stack: str | None = None) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for name, template in self.templates.items()
            if stack is None or name == stack
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == type_
        }

    def one(self, type_: str, **properties: Any) -> tuple[str, dict[str, Any]]:
        found = [
            (logical_id, resource)
            for logical_id, resource in self.resources(type_).items()
            if all(resource["Properties"].get(k) == v for k, v in properties.items())
        ]
        assert len(found) == 1, f"{type_} {properties}: {len(found)} found"
        return found[0]

    def function(self, name: str) -> tuple[str, dict[str, Any]]:
        return self.one("AWS::Lambda::Function", FunctionName=function_name(name))

    def exports(self) -> dict[str, Any]:
        return {
            output["Export"]["Name"]: output["Value"]
            for template in self.templates.values()
            for output in template.get("Outputs", {}).values()
            if "Export" in output
        }

    def resolve(self, value: Any) -> Any:
        """Follow a cross-stack import to the value the other stack exported."""
        if isinstance(value, dict) and "Fn::ImportValue" in value:
            return self.exports()[value["Fn::ImportValue"]]
        return value

    @cached_property
    def stateful(self):
        from aws_cdk.assertions import Template

        return Template.from_json(self.templates["stateful"])

    @cached_property
    def stateless(self):
        from aws_cdk.assertions import Template

        return Template.from_json(self.templates["stateless"])


def function_name(name: str) -> str:
    return PROD.resource_name(name.replace("_", "-"))


def synthesize(outdir: Path) -> Synth:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QPHB_")}
    env["CDK_OUTDIR"] = str(outdir)
    done = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"synth failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    return load(outdir)


def load(outdir: Path) -> Synth:
    result = Synth(outdir)
    for kind in ("stateful", "stateless", "alarms"):
        path = outdir / f"{PROD.resource_name(kind)}.template.json"
        result.templates[kind] = json.loads(path.read_text(encoding="utf-8"))
    return result
