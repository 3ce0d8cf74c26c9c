"""Cold-start cost of every Lambda entry point, against `import boto3`, from the packages.

The Lambda packages are built as `make synth` builds them (infra/packaging.py, dependencies
from the lock, cached) and unpacked. Each entry point is imported from its package in a fresh
`python -I -S -B` (no site-packages, nothing written: only what the zip ships, bytecode
included), several times; the median is compared with `import boto3` from the Chalice app's
package, measured the same way in the same run. The goal: `import app` (every route and event
handler) within 1.5x boto3.

    python bench/cold_start.py [--runs 9] [--explain]

Prints a table, then, as the last line, one JSON object:
{"baseline_boto3_s": ..., "goal_ratio": 1.5, "entries": {"app": {"median_s": ..., "ratio": ...}}}
With --explain (or when `import app` misses the goal) it also lists the modules that cost the
most in `import app`, from `python -X importtime`.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.5
# The Lambda runtime's interpreter flags, as near as a local interpreter gets: no user or
# site-packages paths, no environment-driven paths, no bytecode written.
_ISOLATED = ("-I", "-S", "-B")

# Measures only the import, not the interpreter's own start-up.
_TIMER = (
    "import sys, time; sys.path[:0] = {paths!r}; "
    "t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
)


@dataclass(frozen=True)
class Entry:
    name: str
    module: str
    paths: tuple[str, ...] = ()


def entries(unpacked: Path) -> list[Entry]:
    """The Chalice app, and each separately deployed function, each from its own package
    (unpacked under `unpacked`), where the handler imports as the top-level module `handler`."""
    sys.path.insert(0, str(ROOT))
    from infra import packaging

    cache = packaging.build_dir()
    packages = {"app": packaging.chalice_app_package(cache)}
    for handler in sorted((ROOT / "functions").glob("*/handler.py")):
        name = handler.parent.name
        packages[f"functions/{name}"] = packaging.function_package(name, cache)
    found = []
    for name, package in packages.items():
        root = unpacked / name.replace("/", "-")
        with zipfile.ZipFile(package) as archive:
            archive.extractall(root)
        found.append(Entry(name, "app" if name == "app" else "handler", (str(root),)))
    return found


def test_environment() -> dict[str, str]:
    """The environment the test suite runs with (tests/conftest.py sets it on import)."""
    saved = dict(os.environ)
    try:
        runpy.run_path(str(ROOT / "tests" / "conftest.py"))
        return dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def import_seconds(entry: Entry, env: dict[str, str]) -> float:
    code = _TIMER.format(paths=list(entry.paths), module=entry.module)
    result = subprocess.run(
        [sys.executable, *_ISOLATED, "-c", code],
        capture_output=True,
        text=True,
        cwd=entry.paths[0],
        env=env,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"import {entry.module} failed for {entry.name}:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def interleaved_medians(measured: list[Entry], env: dict[str, str], runs: int) -> dict[str, float]:
    """Median import time of each entry, the entries taking turns in every round so that a
    busy moment of the machine weighs on the baseline and the others alike."""
    for entry in measured:  # not counted: the first read of the package from disk
        import_seconds(entry, env)
    samples: dict[str, list[float]] = {entry.name: [] for entry in measured}
    for _ in range(runs):
        for entry in measured:
            samples[entry.name].append(import_seconds(entry, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def import_profile(app: Entry, env: dict[str, str]) -> list[tuple[str, float, float]]:
    """(module, cumulative s, self s) for every module `import app` loads from its package,
    from `python -X importtime`."""
    code = f"import sys; sys.path[:0] = {list(app.paths)!r}; import app"
    result = subprocess.run(
        [sys.executable, *_ISOLATED, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        cwd=app.paths[0],
        env=env,
        check=True,
        timeout=120,
    )
    rows = []
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3:
            continue
        try:
            self_us, cumulative_us = int(parts[0].split(":")[1]), int(parts[1])
        except ValueError:  # the header line
            continue
        rows.append((parts[2].strip(), cumulative_us / 1e6, self_us / 1e6))
    return rows


def explain(app: Entry, env: dict[str, str], top: int = 12) -> None:
    rows = import_profile(app, env)
    print(
        f"\n`import app` loads {len(rows)} modules. Costliest by own time (self s, cumulative s):"
    )
    for name, cumulative, own in sorted(rows, key=lambda r: r[2], reverse=True)[:top]:
        print(f"  {own:>7.3f} {cumulative:>7.3f}  {name}")
    print("Packages and project modules by cumulative time (cumulative s):")
    packages = [r for r in rows if "." not in r[0] or r[0].startswith("chalicelib.")]
    for name, cumulative, _ in sorted(packages, key=lambda r: r[1], reverse=True)[:top]:
        print(f"  {cumulative:>7.3f}  {name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="imports per entry (at least 7)")
    parser.add_argument("--explain", action="store_true", help="list the costliest imports")
    args = parser.parse_args(argv)
    runs = max(args.runs, 7)
    env = test_environment()

    with tempfile.TemporaryDirectory() as unpacked:
        measured = entries(Path(unpacked))
        app = measured[0]
        # boto3 from the app's own package: the same files the Lambda would load.
        boto3 = Entry("boto3", "boto3", app.paths)
        medians = interleaved_medians([boto3, *measured], env, runs)
        if args.explain or medians["app"] / medians["boto3"] > GOAL_RATIO:
            explain(app, env)
    baseline = medians.pop("boto3")
    results: dict[str, dict[str, float]] = {}
    print(f"{'entry point':<32} {'median s':>9} {'x boto3':>8}  goal ≤ {GOAL_RATIO}x")
    print(f"{'import boto3 (baseline)':<32} {baseline:>9.3f} {1:>8.2f}")
    for name, median in medians.items():
        ratio = median / baseline
        results[name] = {"median_s": round(median, 4), "ratio": round(ratio, 3)}
        verdict = "ok" if ratio <= GOAL_RATIO else "OVER"
        print(f"{'import ' + name:<32} {median:>9.3f} {ratio:>8.2f}  {verdict}")
    print(
        f"({runs} fresh `python -I -S -B` per entry, each from its unpacked Lambda package, "
        "median; interpreter start-up excluded)"
    )

    summary = {
        "baseline_boto3_s": round(baseline, 4),
        "goal_ratio": GOAL_RATIO,
        "measured_on": "packaged",
    }
    summary["entries"] = results
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
