"""Cold-start cost of every Lambda entry point, against `import boto3`.

Each entry point is imported in a fresh interpreter (the part of a cold start our code
controls), several times; the median is compared with `import boto3` measured the same way in
the same run. The goal: `import app` (every route and event handler) within 1.5x boto3.

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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.5

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


def entries() -> list[Entry]:
    """The Chalice app, and each separately deployed function (its folder is the Lambda's
    root, so its handler imports as the top-level module `handler`)."""
    found = [Entry("app", "app")]
    for handler in sorted((ROOT / "functions").glob("*/handler.py")):
        folder = handler.parent
        found.append(Entry(f"functions/{folder.name}", "handler", (str(folder),)))
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
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
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
    # Not counted: writes the bytecode cache (even where PYTHONDONTWRITEBYTECODE is set), as the
    # deployment packages ship it (infra/packaging.py), and as installed libraries have theirs.
    writing = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for entry in measured:
        import_seconds(entry, writing)
    samples: dict[str, list[float]] = {entry.name: [] for entry in measured}
    for _ in range(runs):
        for entry in measured:
            samples[entry.name].append(import_seconds(entry, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def import_profile(env: dict[str, str]) -> list[tuple[str, float, float]]:
    """(module, cumulative s, self s) for every module `import app` loads, from
    `python -X importtime`."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        capture_output=True,
        text=True,
        cwd=ROOT,
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


def explain(env: dict[str, str], top: int = 12) -> None:
    rows = import_profile(env)
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

    boto3 = Entry("boto3", "boto3")
    medians = interleaved_medians([boto3, *entries()], env, runs)
    baseline = medians.pop("boto3")
    results: dict[str, dict[str, float]] = {}
    print(f"{'entry point':<32} {'median s':>9} {'x boto3':>8}  goal ≤ {GOAL_RATIO}x")
    print(f"{'import boto3 (baseline)':<32} {baseline:>9.3f} {1:>8.2f}")
    for name, median in medians.items():
        ratio = median / baseline
        results[name] = {"median_s": round(median, 4), "ratio": round(ratio, 3)}
        verdict = "ok" if ratio <= GOAL_RATIO else "OVER"
        print(f"{'import ' + name:<32} {median:>9.3f} {ratio:>8.2f}  {verdict}")
    print(f"({runs} fresh interpreters per entry, median; interpreter start-up excluded)")

    if args.explain or results["app"]["ratio"] > GOAL_RATIO:
        explain(env)

    summary = {"baseline_boto3_s": round(baseline, 4), "goal_ratio": GOAL_RATIO}
    summary["entries"] = results
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
