"""The CDK app: `make synth` writes infra/cdk.out; `cdk deploy` (from infra/, cdk.json) deploys.

The stage comes from `-c stage=<name>` (default: prod) and its settings from
`.chalice/config.json`. cdk-nag's AwsSolutions checks run as a policy-validation plugin: an
unacknowledged finding fails the synth and is listed in cdk.out/validation-report.json.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, this file's folder would shadow the project's own app.py (the Chalice app).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from infra.stage import StageConfig, apply_environment, load_stage  # noqa: E402

DEFAULT_STAGE = "prod"


def main() -> None:
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=os.environ.get("CDK_OUTDIR") or str(HERE / "cdk.out"))
    stage = load_stage(str(app.node.try_get_context("stage") or DEFAULT_STAGE))
    apply_environment(stage)
    build(app, stage)
    # Acknowledged rules are also written into each resource's Metadata (cdk_nag), so the
    # templates themselves carry every suppression and its reason.
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
    )
    app.synth()


def build(app: Any, stage: StageConfig) -> None:
    """Both stacks of `stage`. The stage's environment must already be applied."""
    import aws_cdk as cdk

    from chalicelib import topology
    from chalicelib.settings import get_settings
    from infra import declarations, packaging, registry
    from infra.stacks.stateful import StatefulStack, TopologyError
    from infra.stacks.stateless import StatelessStack, stream_variable

    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    stateful = StatefulStack(
        app,
        stage.resource_name("stateful"),
        stage=stage,
        env=env,
        description="青浦好办 data: DynamoDB tables, SQS queues and DLQs, alarm topic, data key",
    )
    stream_arns: dict[str, str] = {}
    for stream in topology.STREAMS:
        if not stateful.shapes[stream.table].stream_view_type:
            raise TopologyError(f"stream of {stream.table}: its model declares no stream_view_type")
        stream_arns[stream.table] = stateful.tables[stream.table].table_stream_arn
        # Chalice decorators read the ARN at import (topology.stream_arn): give them ours.
        os.environ[stream_variable(stream.table)] = stream_arns[stream.table]

    chalice_module = _import_chalice_module()
    wiring = registry.wire(chalice_module.app, get_settings(), stream_arns)
    cache = packaging.build_dir()
    # CloudFormation holds at most 500 resources per stack; the API's routes fill most of the
    # stateless one, so its alarms live beside it.
    alarms = cdk.Stack(
        app,
        stage.resource_name("alarms"),
        env=env,
        description="青浦好办 alarms: Lambda errors, throttles, silent schedules, business metrics",
    )
    stateless = StatelessStack(
        app,
        stage.resource_name("stateless"),
        stage=stage,
        stateful=stateful,
        chalice_module=chalice_module,
        wiring=wiring,
        stream_arns=stream_arns,
        alarms=alarms,
        app_package=packaging.chalice_app_package(cache),
        function_packages={
            name: packaging.function_package(name, cache) for name in _functions(declarations)
        },
        env=env,
        description="青浦好办 compute: Lambda functions, REST API, WAF, schedules",
    )
    for stack in (stateful, stateless, alarms):
        cdk.Tags.of(stack).add("project", "qingpu-haoban")
        cdk.Tags.of(stack).add("stage", stage.name)


def _import_chalice_module() -> Any:
    module = importlib.import_module("app")
    if Path(module.__file__).resolve() != ROOT / "app.py":
        raise RuntimeError(f"imported {module.__file__} instead of the Chalice app")
    return module


def _functions(declarations: Any) -> list[str]:
    """Every functions/<name>/handler.py, each of which must be declared."""
    found = sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))
    undeclared = [n for n in found if n not in declarations.FUNCTIONS]
    missing = [n for n in declarations.FUNCTIONS if n not in found]
    if undeclared or missing:
        raise ValueError(
            f"functions/ and infra/declarations.py FUNCTIONS disagree: undeclared {undeclared}, "
            f"declared without functions/<name>/handler.py {missing}"
        )
    return found


if __name__ == "__main__":
    main()
