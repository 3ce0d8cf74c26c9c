"""A deployable stage, read from `.chalice/config.json`: the same file `chalice package` reads.

The stage's environment variables are applied to this process before anything in chalicelib
is imported, because the settings, the PynamoDB models' table names and the Chalice decorators
(queue names, stream ARNs) are all fixed at import time.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_FILE = PROJECT_ROOT / ".chalice" / "config.json"

API_HANDLER = "api_handler"  # Chalice's name for the function that serves every route
_DEFAULT_TIMEOUT = 60
_DEFAULT_MEMORY = 128
# Secrets never come from config.json outside the local stage: the stack provides them.
_FORBIDDEN_FRAGMENTS = ("SECRET", "PUBLIC_KEYS", "PASSWORD")
# Variables a developer's shell may carry from `make run` that must not leak into a synth.
_STRIPPED_PREFIXES = ("QPHB_",)
_STRIPPED = ("AWS_ENDPOINT_URL",)


class StageConfigError(ValueError):
    pass


@dataclass(frozen=True)
class FunctionConfig:
    timeout_seconds: int
    memory_mb: int


@dataclass(frozen=True)
class StageConfig:
    name: str
    api_gateway_stage: str
    environment: dict[str, str]
    default: FunctionConfig
    functions: dict[str, FunctionConfig] = field(default_factory=dict)
    # Functions whose `lambda_timeout` config.json sets itself (not inherited from the stage).
    declared_timeouts: dict[str, int] = field(default_factory=dict)

    @property
    def resource_prefix(self) -> str:
        return self.environment["QPHB_RESOURCE_PREFIX"]

    def resource_name(self, name: str) -> str:
        return f"{self.resource_prefix}-{name}"

    def function(self, name: str) -> FunctionConfig:
        return self.functions.get(name, self.default)


def load_stage(name: str, config_file: Path = CONFIG_FILE) -> StageConfig:
    raw = json.loads(config_file.read_text(encoding="utf-8"))
    stages = raw.get("stages", {})
    if name not in stages:
        raise StageConfigError(f"stage {name!r} is not in {config_file.name} ({sorted(stages)})")
    if name == "local":
        raise StageConfigError("the local stage runs on the embedded AWS (make run), not on AWS")
    stage = stages[name]
    environment = {**raw.get("environment_variables", {}), **stage.get("environment_variables", {})}
    _check_environment(name, environment)
    default = FunctionConfig(
        timeout_seconds=int(
            stage.get("lambda_timeout", raw.get("lambda_timeout", _DEFAULT_TIMEOUT))
        ),
        memory_mb=int(
            stage.get("lambda_memory_size", raw.get("lambda_memory_size", _DEFAULT_MEMORY))
        ),
    )
    functions = {
        fn: FunctionConfig(
            timeout_seconds=int(values.get("lambda_timeout", default.timeout_seconds)),
            memory_mb=int(values.get("lambda_memory_size", default.memory_mb)),
        )
        for fn, values in stage.get("lambda_functions", {}).items()
    }
    return StageConfig(
        name=name,
        api_gateway_stage=stage.get("api_gateway_stage", raw.get("api_gateway_stage", "api")),
        environment=environment,
        default=default,
        functions=functions,
        declared_timeouts={
            fn: int(values["lambda_timeout"])
            for fn, values in stage.get("lambda_functions", {}).items()
            if "lambda_timeout" in values
        },
    )


def _check_environment(stage: str, environment: dict[str, str]) -> None:
    if environment.get("QPHB_STAGE") != stage:
        raise StageConfigError(f"stage {stage!r} must set QPHB_STAGE={stage}")
    if not environment.get("QPHB_RESOURCE_PREFIX"):
        raise StageConfigError(f"stage {stage!r} must set QPHB_RESOURCE_PREFIX")
    leaked = [k for k in environment if any(f in k.upper() for f in _FORBIDDEN_FRAGMENTS)]
    if leaked:
        raise StageConfigError(
            f"stage {stage!r} puts secrets in config.json ({', '.join(sorted(leaked))}); "
            "they come from Secrets Manager / SSM through the stack"
        )


def apply_environment(stage: StageConfig, environ: MutableMapping[str, str] | None = None) -> None:
    """Make this process look like the stage's Lambda before chalicelib is imported."""
    env = os.environ if environ is None else environ
    for key in list(env):
        if key.startswith(_STRIPPED_PREFIXES) or key in _STRIPPED:
            del env[key]
    env.update(stage.environment)
    # boto3 and chalice want a region; in Lambda the runtime sets it.
    env.setdefault("AWS_DEFAULT_REGION", env.get("CDK_DEFAULT_REGION") or "cn-northwest-1")
