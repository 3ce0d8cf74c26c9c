"""Every Lambda of the synthesized templates, run from its own package.

The packages are the cloud assembly's assets, built by infra/packaging.py during the synth
(dependencies cached by the hash of their lock subset). Each package is unpacked and run in a
separate `python -I -S` (packaged_runner.py): no site-packages, so only the package and the
standard library import. There every handler of the package is invoked with the environment
its template gives it, against one embedded AWS (local/moto_server.py, provisioned by
local/provision.py), fed its sample event from events/; and every third-party module the code
imports (lazy imports included, found by walking the AST) is imported. A library missing from a
package fails here, not in AWS.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chalicelib import topology
from infra import declarations, packaging
from infra.stage import API_HANDLER
from tests.infrastructure.conftest import shared_synth
from tests.infrastructure.synthesis import PROD, ROOT, Synth

pytestmark = pytest.mark.infrastructure

EVENTS = ROOT / "events"
RUNNER = Path(__file__).with_name("packaged_runner.py")
REGION = "us-east-1"
# Lambda's quota for a function's code, unzipped.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
# Linux's in-memory file system for shared memory, present on every glibc system.
MEMORY_FS = Path("/dev/shm")
# Not the Lambda's to carry: the Chalice CLI's own dependencies.
CHALICE_CLI_ONLY = {"click", "inquirer", "pyyaml", "blessed", "readchar", "pip", "wheel"}
# Functions whose schedule sample is not named after the function.
SCHEDULE_SAMPLES = {"audit_verifier": "audit_verify"}
# What CloudFormation would resolve from SSM and Secrets Manager at deploy time.
DEPLOY_TIME_VALUES = {
    "QPHB_JWT_ISSUER": "https://auth.qingpu.example/packaged-test",
}
# Made in the embedded AWS by the `embedded_aws` fixture, as the stateful stack makes them.
AUDIT_RESOURCES = ("QPHB_AUDIT_KMS_KEY_ID", "QPHB_AUDIT_SEAL_BUCKET")


# -- what the code imports ------------------------------------------------------------------


def imported_modules(sources: list[Path]) -> set[str]:
    """Top-level names of every absolute import in `sources` (files or trees), lazy imports
    inside functions included; `if TYPE_CHECKING:` blocks are not run, so not counted."""
    found: set[str] = set()
    files = [f for s in sources for f in ([s] if s.is_file() else sorted(s.rglob("*.py")))]
    for path in files:
        found |= _file_imports(path)
    return found


@functools.cache  # every package ships chalicelib/: its files are parsed once per run
def _file_imports(path: Path) -> frozenset[str]:
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in node.body
        for n in ast.walk(child)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return frozenset(found)


def third_party(modules: set[str], own: set[str]) -> list[str]:
    return sorted(m for m in modules if m not in sys.stdlib_module_names and m not in own)


# -- the Lambdas of the templates -----------------------------------------------------------


@dataclass
class Lambda:
    name: str  # logical name: api_handler, a Chalice handler, a functions/ directory
    function_name: str
    handler: str
    asset: Path
    environment: dict[str, Any]


@dataclass
class Package:
    asset: Path
    root: Path
    lambdas: list[Lambda] = field(default_factory=list)

    @property
    def function_dir(self) -> str | None:
        """functions/<name>/ when this is a function's package."""
        names = {lam.name for lam in self.lambdas}
        found = names & set(declarations.FUNCTIONS)
        assert len(found) <= 1 and (not found or names == found), names
        return next(iter(found), None)

    def sources(self) -> tuple[list[Path], set[str]]:
        """The code this package ships, and the top-level names that are its own."""
        own = {"chalicelib", "functions"}
        sources = [ROOT / "chalicelib"]
        if self.function_dir:
            folder = ROOT / "functions" / self.function_dir
            sources.append(folder)
            own |= {p.stem for p in folder.glob("*.py")}
        else:
            sources.append(ROOT / "app.py")
            own.add("app")
        return sources, own


def lambdas(synth: Synth) -> list[Lambda]:
    found = []
    prefix = f"{PROD.resource_prefix}-"
    for resource in synth.resources("AWS::Lambda::Function", "stateless").values():
        props = resource["Properties"]
        asset = synth.outdir / f"asset.{props['Code']['S3Key']}"
        assert asset.is_file(), f"{props['FunctionName']}: no asset {asset.name}"
        found.append(
            Lambda(
                name=props["FunctionName"].removeprefix(prefix).replace("-", "_"),
                function_name=props["FunctionName"],
                handler=props["Handler"],
                asset=asset,
                environment=props.get("Environment", {}).get("Variables", {}),
            )
        )
    return sorted(found, key=lambda lam: lam.name)


def sample_event(name: str) -> tuple[str, dict[str, Any]]:
    """(kind of answer expected, sample event) for the Lambda `name`."""
    if name == API_HANDLER:
        return "http", _load("apigateway/kb_search.json")
    if name in declarations.FUNCTIONS:
        decl = declarations.FUNCTIONS[name]
        if decl.queue:
            return "batch", _load(f"sqs/{decl.queue.replace('-', '_')}.json")
        return "plain", _load(f"schedule/{SCHEDULE_SAMPLES.get(name, name)}.json")
    for queue in topology.QUEUES:
        if queue.consumer == name:
            return "batch", _load(f"sqs/{queue.name.replace('-', '_')}.json")
    for stream in topology.STREAMS:
        if stream.consumer == name:
            for path in sorted((EVENTS / "dynamodb").glob("*.json")):
                event = json.loads(path.read_text(encoding="utf-8"))
                if f"/{topology.table_name(stream.table, _LOCAL)}/stream/" in json.dumps(event):
                    return "batch", event
            raise AssertionError(f"{name}: no sample under events/dynamodb for {stream.table}")
    for schedule in topology.SCHEDULES:
        if schedule.consumer == name:
            return "plain", _load(f"schedule/{schedule.name.replace('-', '_')}.json")
    raise AssertionError(f"{name}: no sample event in events/ for this Lambda")


def _load(relative: str) -> dict[str, Any]:
    path = EVENTS / relative
    assert path.is_file(), f"missing sample event {path.relative_to(ROOT)}"
    return json.loads(path.read_text(encoding="utf-8"))


class _Local:
    resource_prefix = "qphb-local"

    def resource_name(self, name: str) -> str:
        return f"{self.resource_prefix}-{name}"


_LOCAL = _Local()


# -- the embedded AWS -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }


def _start_moto_server() -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "local.moto_server", "--port", str(port)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, port


def _provision(server: subprocess.Popen[bytes], port: int) -> tuple[str, dict[str, str]]:
    """Waits for the server, then provisions it; returns the endpoint and the stream ARNs and
    audit resources made."""
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, "the moto server stopped"
            assert time.monotonic() < deadline, "the moto server did not start"
            time.sleep(0.1)  # waiting for a process, not for time to pass
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QPHB_", "AWS_"))}
    env.update(_aws_env(endpoint))
    env.update({"QPHB_STAGE": "local", "QPHB_RESOURCE_PREFIX": PROD.resource_prefix})
    script = (
        "import json\n"
        "from chalicelib.settings import settings_from_env\n"
        "from local.provision import provision\n"
        "done = provision(settings_from_env())\n"
        # What operators and the stateful stack put there in AWS: a real key set (the local
        # defaults are refused outside the local stage), the login keys' parameter, the
        # audit heads' HMAC key and the seal bucket.
        "import boto3, secrets\n"
        f"prefix = {PROD.resource_prefix!r}\n"
        "boto3.client('secretsmanager').put_secret_value(SecretId=prefix + '/signing-keys',"
        " SecretString=json.dumps({'current': 'k1', 'k1': secrets.token_hex(32)}))\n"
        "boto3.client('ssm').put_parameter(Name='/' + prefix + '/jwt/rs256-public-keys',"
        " Value='{}', Type='String', Overwrite=True)\n"
        "key = boto3.client('kms').create_key(KeySpec='HMAC_256',"
        " KeyUsage='GENERATE_VERIFY_MAC')['KeyMetadata']['Arn']\n"
        "boto3.client('s3').create_bucket(Bucket=prefix + '-audit-seals')\n"
        "print(json.dumps({'streams': done.stream_arns, 'audit': {"
        "'QPHB_AUDIT_KMS_KEY_ID': key, 'QPHB_AUDIT_SEAL_BUCKET': prefix + '-audit-seals'}}))\n"
    )
    provisioned = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert provisioned.returncode == 0, provisioned.stderr[-4000:]
    made = json.loads(provisioned.stdout.strip().splitlines()[-1])
    return endpoint, {**made["streams"], **made["audit"]}


@pytest.fixture(scope="module")
def starting_aws() -> Iterator[Future[tuple[str, dict[str, str]]]]:
    """One moto server for every package, provisioned with the prod stage's resource names:
    started before the synthesis (see `synth` below) and made ready while it runs."""
    server, port = _start_moto_server()
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            yield pool.submit(_provision, server, port)
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def synth(request: pytest.FixtureRequest, testrun_uid: str) -> Synth:
    """The run's one synthesis (tests/infrastructure/conftest.py), requested after the
    embedded AWS has started, when a test of this module will use it, so that the two overlap."""
    if any(
        item.module is request.module and "embedded_aws" in item.fixturenames
        for item in request.session.items
        if isinstance(item, pytest.Function)
    ):
        request.getfixturevalue("starting_aws")
    return shared_synth(testrun_uid)


@pytest.fixture(scope="module")
def embedded_aws(starting_aws, synth) -> tuple[str, dict[str, str]]:
    return starting_aws.result(timeout=600)


def lambda_environment(
    synth: Synth, lam: Lambda, endpoint: str, stream_arns: dict[str, str]
) -> dict[str, str]:
    """The template's variables, with what CloudFormation would resolve at deploy time
    resolved against the embedded AWS (stream ARNs) or given test values (SSM parameters,
    secrets), plus what the Lambda runtime sets."""
    tables = {
        logical_id: resource["Properties"]["TableName"]
        for logical_id, resource in synth.resources("AWS::DynamoDB::Table").items()
    }
    logical_of = {topology.table_name(t.name, PROD): t.name for t in topology.TABLES}
    env: dict[str, str] = {}
    for key, raw in lam.environment.items():
        value = synth.resolve(raw)
        if key in AUDIT_RESOURCES:
            env[key] = stream_arns[key]
        elif isinstance(value, dict) and value.get("Fn::GetAtt", [None, None])[1] == "StreamArn":
            env[key] = stream_arns[logical_of[tables[value["Fn::GetAtt"][0]]]]
        elif isinstance(value, str) and "{{resolve:" not in value:
            env[key] = value
        else:
            assert key in DEPLOY_TIME_VALUES, f"{lam.name}: no test value for {key} ({value})"
            env[key] = DEPLOY_TIME_VALUES[key]
    env.update(_aws_env(endpoint))
    env["AWS_EXECUTION_ENV"] = "AWS_Lambda_python3.11"
    env["AWS_LAMBDA_FUNCTION_NAME"] = lam.function_name
    env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = "512"
    return env


# -- the packages ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the packages are unpacked: in memory (tmpfs) where Linux offers one with room, as
    writing their ~200 MB of small files to a disk costs seconds of file-system work and a
    tmpfs a fraction of it; elsewhere pytest's temporary folder. Removed after the module."""
    in_memory = (
        MEMORY_FS.is_dir()
        and os.access(MEMORY_FS, os.W_OK)
        and shutil.disk_usage(MEMORY_FS).free > 4 * UNZIPPED_LIMIT_BYTES
    )
    if not in_memory:
        yield tmp_path_factory.mktemp("packages")
        return
    # A run killed before its teardown leaves its folder behind, in memory: the next removes it.
    for stale in MEMORY_FS.glob("packaged-test-*-*"):
        owner = stale.name.split("-")[2]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
    prefix = f"packaged-test-{os.getpid()}-"
    with tempfile.TemporaryDirectory(dir=MEMORY_FS, prefix=prefix) as folder:
        yield Path(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        pass
    return True


@pytest.fixture(scope="module")
def packages(synth: Synth, unpacked: Path) -> list[Package]:
    by_asset: dict[Path, Package] = {}
    extracted: dict[tuple[str, int, int], Path] = {}
    for lam in lambdas(synth):
        if lam.asset not in by_asset:
            root = unpacked / lam.asset.stem
            unpack(lam.asset, root, extracted)
            by_asset[lam.asset] = Package(lam.asset, root)
        by_asset[lam.asset].lambdas.append(lam)
    return sorted(by_asset.values(), key=lambda p: p.function_dir or "")


def unpack(asset: Path, root: Path, extracted: dict[tuple[str, int, int], Path]) -> None:
    """Every entry of `asset` under `root`. The packages share their dependencies: an entry
    whose name, CRC and size equal one already extracted from another package is hard-linked
    to that file (whose bytes were decompressed and CRC-checked) instead of decompressed again.
    `extracted` maps (name, CRC, size) to the file written, across calls."""
    made: set[Path] = set()
    with zipfile.ZipFile(asset) as archive:
        for info in archive.infolist():
            name = info.filename
            assert not name.startswith("/") and ".." not in name.split("/"), name
            if info.is_dir():
                continue
            target = root / name
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            key = (name, info.CRC, info.file_size)
            if key in extracted:
                os.link(extracted[key], target)
            else:
                with archive.open(info) as source, open(target, "wb") as copy:
                    shutil.copyfileobj(source, copy, 1 << 20)
                extracted[key] = target


def run_package(
    package: Package,
    synth: Synth,
    embedded_aws: tuple[str, dict[str, str]],
    modules: list[str],
    invoke: bool = True,
) -> dict[str, Any]:
    endpoint, stream_arns = embedded_aws
    environments = {
        lam.name: lambda_environment(synth, lam, endpoint, stream_arns) for lam in package.lambdas
    }
    shared = {k: v for k, v in environments[package.lambdas[0].name].items() if "FUNCTION" not in k}
    for name, env in environments.items():
        differs = {k for k in env if "FUNCTION" not in k and env[k] != shared.get(k)}
        assert not differs, f"{name}: its own variables {differs}"
    invocations = []
    if invoke:
        for lam in package.lambdas:
            _, event = sample_event(lam.name)
            invocations.append({"function_name": lam.name, "handler": lam.handler, "event": event})
    spec = package.root.parent / f"{package.root.name}.spec.json"
    spec.write_text(
        json.dumps({"package": str(package.root), "modules": modules, "invocations": invocations}),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(RUNNER), str(spec)],
        cwd=package.root,
        env={**environments[package.lambdas[0].name], "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    marker = "PACKAGED-RESULT "
    line = next(ln for ln in reversed(done.stdout.splitlines()) if ln.startswith(marker))
    result = json.loads(line[len(marker) :])
    result["output"] = done.stdout + done.stderr
    return result


@pytest.fixture(scope="module")
def runs(packages, synth, embedded_aws) -> dict[str, dict[str, Any]]:
    results = {}
    for package in packages:
        sources, own = package.sources()
        modules = third_party(imported_modules(sources), own)
        results[package.asset.name] = run_package(package, synth, embedded_aws, modules)
    return results


def test_every_lambda_of_the_templates_is_run_from_its_package(packages, runs) -> None:
    names = [lam.name for p in packages for lam in p.lambdas]
    assert API_HANDLER in names and set(declarations.FUNCTIONS) <= set(names)
    for package in packages:
        result = runs[package.asset.name]
        assert [p for p in result["sys_path"] if "site-packages" in p] == []
        assert result["sys_path"][0] == str(package.root)
        outside = [
            f
            for f in result["loaded_from"]
            if not f.startswith((str(package.root), sys.base_prefix)) and f != str(RUNNER)
        ]
        assert outside == [], f"{package.asset.name} imported from outside itself: {outside}"


def test_every_third_party_module_the_code_imports_is_in_its_package(packages, runs) -> None:
    for package in packages:
        imports = runs[package.asset.name]["imports"]
        assert imports, f"{package.asset.name}: no third-party import found"
        failed = {m: r["error"][-1500:] for m, r in imports.items() if not r["ok"]}
        assert failed == {}, f"{package.asset.name} cannot import: {failed}"
        for module, outcome in imports.items():
            assert outcome["file"] is None or outcome["file"].startswith(str(package.root)), (
                module,
                outcome,
            )


def test_every_handler_answers_its_sample_event_from_its_package(packages, runs) -> None:
    for package in packages:
        result = runs[package.asset.name]
        # A batch handler reports a failed record instead of raising: read its log as well.
        assert "ModuleNotFoundError" not in result["output"], result["output"][-6000:]
        for lam in package.lambdas:
            outcome = result["invocations"][lam.name]
            assert outcome["ok"], f"{lam.name} ({lam.handler}):\n{outcome['error']}"
            kind, _ = sample_event(lam.name)
            answer = outcome["result"]
            if kind == "http":
                assert answer["statusCode"] == 200, answer
                assert "results" in json.loads(answer["body"])
            elif kind == "batch":
                assert isinstance(answer, dict), (lam.name, answer)
                assert isinstance(answer.get("batchItemFailures"), list), (lam.name, answer)


def test_each_package_holds_what_its_code_imports_and_nothing_more(packages) -> None:
    lock = packaging.read_lock()
    for package in packages:
        sources, own = package.sources()
        modules = set(third_party(imported_modules(sources), own))
        provides: dict[str, set[str]] = {}
        for record in package.root.glob("*.dist-info/RECORD"):
            distribution = record.parent.name.removesuffix(".dist-info")
            name = packaging.normalise(distribution.rsplit("-", 1)[0])
            tops = {
                line.split(",")[0].split("/")[0].removesuffix(".py")
                for line in record.read_text(encoding="utf-8").splitlines()
            }
            provides[name] = {t for t in tops if not t.endswith((".dist-info", ".data"))}
        imported = {name for name, tops in provides.items() if tops & modules}
        needed = {entry.name for entry in packaging.closure(imported, lock)}
        assert set(provides) == needed, (
            f"{package.asset.name}: extra {sorted(set(provides) - needed)}, "
            f"missing {sorted(needed - set(provides))}"
        )
        assert not CHALICE_CLI_ONLY & set(provides)
        size = sum(f.stat().st_size for f in package.root.rglob("*") if f.is_file())
        assert size < UNZIPPED_LIMIT_BYTES, f"{package.asset.name}: {size / 2**20:.0f} MiB"


def test_a_library_missing_from_a_package_fails_the_import(packages, synth, embedded_aws) -> None:
    """The isolation is real: what the venv has but the package lacks does not import."""
    api = next(p for p in packages if p.function_dir is None)
    # Beside the packages: hard links (see unpack) need the same file system.
    crippled = Package(api.asset, api.root.parent / "crippled", api.lambdas)
    shutil.copytree(api.root, crippled.root, copy_function=os.link)
    try:
        shutil.rmtree(crippled.root / "jieba")
        result = run_package(crippled, synth, embedded_aws, ["jieba", "pytest", "boto3"], False)
    finally:
        shutil.rmtree(crippled.root)
    assert not result["imports"]["jieba"]["ok"]
    assert not result["imports"]["pytest"]["ok"]
    assert result["imports"]["boto3"]["ok"]


def test_packages_come_from_the_lock_with_hashes() -> None:
    lock = packaging.read_lock()
    assert lock and all("--hash=sha256:" in entry.requirement for entry in lock.values())
    dev = packaging.read_lock(ROOT / "requirements-dev.lock")
    for name, entry in lock.items():
        assert dev[name].requirement.splitlines()[0] == entry.requirement.splitlines()[0], name
    assert not (ROOT / "requirements.txt").exists(), "hand-kept requirements drift: use the lock"


def test_the_lock_pins_what_pyproject_declares() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lock = packaging.read_lock()
    dev = packaging.read_lock(ROOT / "requirements-dev.lock")
    for declared, locked in (
        (project["dependencies"], lock),
        (project["optional-dependencies"]["dev"], dev),
    ):
        for requirement in declared:
            name = packaging.normalise(requirement.split("[")[0].split("==")[0])
            version = requirement.split("==")[1]
            assert locked[name].requirement.split()[0] == f"{name}=={version}", (
                f"{requirement}: run `make lock`"
            )


def test_lambdas_share_packages_by_kind(packages) -> None:
    kinds = defaultdict(set)
    for package in packages:
        kinds[package.function_dir or "app"].add(package.asset.name)
    assert all(len(v) == 1 for v in kinds.values()), kinds
