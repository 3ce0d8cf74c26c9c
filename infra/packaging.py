"""Lambda deployment packages: the Chalice app's, and one per `functions/` directory.

Every package's dependencies come from the runtime lock (`requirements.lock`, hashed, generated
from pyproject.toml by `make lock`), cut down to what its code imports:

- the Chalice app: the runtime dependencies pyproject.toml lists;
- `functions/<name>/`: the names in its `requirements.in` (the app's when it has none);

each with the locked distributions they depend on, read from the lock's `# via` annotations.
`chalice` comes without its own dependencies: a Lambda imports only `chalice.app`, which needs
the standard library alone; click, inquirer, PyYAML and the rest serve its CLI and deployer.

pip installs the subset with `--require-hashes` for the Lambda runtime (CPython 3.11, x86_64,
Amazon Linux 2: manylinux up to glibc 2.26). A distribution with no such wheel is built from its
sdist only when the result is pure Python; anything else fails the build here rather than the
import in AWS. The result is cached by the hash of the subset, so only a changed lock costs a
download. The code (app.py, chalicelib/, a function's directory) is added on every synth.
Zip entries carry a fixed timestamp and a fixed order: unchanged code gives an unchanged asset
hash, and `cdk deploy` leaves the functions alone.
Everything ships with its bytecode (hash-based, never rechecked): Lambda's code directory is
read-only, so without it every cold start would compile chalicelib/ and the libraries again.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.stage import PROJECT_ROOT

LOCK_FILE = PROJECT_ROOT / "requirements.lock"
RUNTIME_PYTHON = "3.11"
RUNTIME_ABI = "cp311"
# Wheel platforms the python3.11 runtime loads (Amazon Linux 2, glibc 2.26, x86_64).
RUNTIME_PLATFORMS = (
    "manylinux1_x86_64",
    "manylinux2010_x86_64",
    "manylinux2014_x86_64",
    *(f"manylinux_2_{minor}_x86_64" for minor in range(5, 27)),
)
# Distributions whose dependencies the Lambda never imports (see the module docstring).
WITHOUT_DEPENDENCIES = frozenset({"chalice"})
# Bump when the way a dependency set is built changes: it is part of the cache key.
_BUILD_VERSION = "lock-3"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


class PackagingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Locked:
    name: str  # normalised distribution name
    requirement: str  # the lock's entry: `name==version` and its hashes
    parents: frozenset[str]  # normalised names of the locked distributions that need it


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK_FILE) -> dict[str, Locked]:
    """The lock's entries by name, with the `# via` parents uv writes under each one."""
    entries: dict[str, Locked] = {}
    name = ""
    lines: list[str] = []
    parents: set[str] = set()

    def close() -> None:
        if name:
            entries[name] = Locked(name, "\n".join(lines), frozenset(parents))

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip()
        if line and not line[0].isspace() and not line.startswith("#"):
            close()
            name = normalise(re.split(r"[=\[ ;]", line, maxsplit=1)[0])
            lines, parents = [line], set()
        elif name and line.lstrip().startswith("--hash="):
            lines.append(line)
        elif name and line.lstrip().startswith("#"):
            text = line.lstrip("# ").strip()
            if text.startswith("via"):
                text = text[3:].strip()
            # Roots are annotated `qingpu-haoban (pyproject.toml)` or `-r <file>`.
            if text and "(" not in text and not text.startswith("-"):
                parents.add(normalise(text))
    close()
    return entries


def runtime_roots() -> list[str]:
    """The runtime dependencies pyproject.toml declares: the Chalice app's package."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [_requirement_name(r) for r in project["project"]["dependencies"]]


def function_roots(name: str) -> list[str]:
    listed = PROJECT_ROOT / "functions" / name / "requirements.in"
    if not listed.is_file():
        return runtime_roots()
    return [
        _requirement_name(line)
        for line in listed.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def closure(roots: Iterable[str], lock: dict[str, Locked]) -> list[Locked]:
    """`roots` and every locked distribution they need, sorted by name."""
    wanted = {normalise(r) for r in roots}
    unknown = sorted(wanted - set(lock))
    if unknown:
        raise PackagingError(f"not in {LOCK_FILE.name}: {unknown} (run `make lock`)")
    grew = True
    while grew:
        grew = False
        for entry in lock.values():
            if entry.name in wanted:
                continue
            if any(p in wanted and p not in WITHOUT_DEPENDENCIES for p in entry.parents):
                wanted.add(entry.name)
                grew = True
    return [lock[n] for n in sorted(wanted)]


def subset_requirements(roots: Iterable[str], lock_file: Path = LOCK_FILE) -> str:
    """A hashed requirements file with `roots` and what they need, all pinned by the lock."""
    return "".join(f"{entry.requirement}\n" for entry in closure(roots, read_lock(lock_file)))


def build_dir() -> Path:
    """Build cache beside the default cloud assembly (ignored by git with it)."""
    return PROJECT_ROOT / "infra" / "cdk.out" / ".build"


def chalice_app_package(cache: Path) -> Path:
    """app.py + chalicelib/ + the runtime dependencies, as Chalice would package them."""
    deps = dependencies_zip(subset_requirements(runtime_roots()), cache)
    files = [(PROJECT_ROOT / "app.py", "app.py"), *_tree(PROJECT_ROOT / "chalicelib", "chalicelib")]
    vendor = PROJECT_ROOT / "vendor"
    if vendor.is_dir():
        files += list(_tree(vendor, ""))
    return _code_zip(deps, files, cache / "code" / "chalice-app.zip")


def function_package(name: str, cache: Path) -> Path:
    """functions/<name>/ at the package root (handler "handler.handler"), chalicelib/, and the
    distributions its `requirements.in` names (the app's when it has none)."""
    source = PROJECT_ROOT / "functions" / name
    deps = dependencies_zip(subset_requirements(function_roots(name)), cache)
    files = [*_tree(PROJECT_ROOT / "chalicelib", "chalicelib"), *_tree(source, "")]
    files = [(path, arcname) for path, arcname in files if arcname != "requirements.in"]
    return _code_zip(deps, files, cache / "code" / f"function-{name}.zip")


def dependencies_zip(requirements: str, cache: Path) -> Path:
    """The installed distributions of a hashed requirements text, zipped, cached by its hash."""
    key = "\n".join((_BUILD_VERSION, RUNTIME_ABI, *RUNTIME_PLATFORMS, requirements))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    target = cache / "deps" / f"{digest}-{RUNTIME_ABI}.zip"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        listed = Path(scratch) / "requirements.txt"
        listed.write_text(requirements, encoding="utf-8")
        site = Path(scratch) / "site"
        install(listed, site)
        partial = _partial(target)
        _write_zip(partial, _tree(site, "", bytecode=True))
        partial.replace(target)
    return target


def install(requirements: Path, site: Path) -> None:
    """pip, hash-checked, for the Lambda runtime; then the runtime check of every wheel tag and
    the bytecode."""
    platforms = [arg for platform in RUNTIME_PLATFORMS for arg in ("--platform", platform)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",  # the subset is closed: every dependency is listed, with its hashes
        "--require-hashes",
        "--target",
        str(site),
        "--implementation",
        "cp",
        "--python-version",
        RUNTIME_PYTHON,
        "--abi",
        RUNTIME_ABI,
        "--abi",
        "abi3",
        "--abi",
        "none",
        *platforms,
        "-r",
        str(requirements),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackagingError(f"pip could not install the Lambda dependencies:\n{done.stderr}")
    foreign = [f"{wheel.parent.name}: {tag}" for wheel, tag in _wheel_tags(site) if not _runs(tag)]
    if foreign:
        raise PackagingError(
            "built for this machine, not for the Lambda runtime (no manylinux wheel and not pure "
            "Python): " + ", ".join(sorted(foreign))
        )
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: nothing runs them
    _forget_scripts(site)
    compileall.compile_dir(
        str(site),
        quiet=2,
        stripdir=str(site),  # package-relative file names: tracebacks find the source
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def _forget_scripts(site: Path) -> None:
    """Drop the removed console scripts' lines from the RECORD files too: pip writes the path
    of the interpreter that installs them into each script, so their hashes there would differ
    from one checkout to another, and with them every asset hash."""
    for record in sorted(site.glob("*.dist-info/RECORD")):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith("../../bin/")]
        if kept != lines:
            record.write_text("".join(kept), encoding="utf-8")


def _wheel_tags(site: Path) -> Iterator[tuple[Path, str]]:
    for wheel in sorted(site.glob("*.dist-info/WHEEL")):
        for line in wheel.read_text(encoding="utf-8").splitlines():
            if line.startswith("Tag:"):
                yield wheel, line.partition(":")[2].strip()


def _runs(tag: str) -> bool:
    _python, abi, platform = tag.split("-")
    return (platform == "any" or platform in RUNTIME_PLATFORMS) and abi in {
        RUNTIME_ABI,
        "abi3",
        "none",
    }


def _requirement_name(requirement: str) -> str:
    return normalise(re.split(r"[=<>!~\[ ;]", requirement.strip(), maxsplit=1)[0])


def _partial(target: Path) -> Path:
    """Where `target` is written before it is renamed into place; one per process, so two
    syntheses sharing the cache (a test run and `make synth`) never write the same file."""
    return target.with_name(f"{target.name}.{os.getpid()}.partial")


def _code_zip(deps: Path, files: list[tuple[Path, str]], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(target)
    shutil.copyfile(deps, partial)
    with zipfile.ZipFile(partial, "a", zipfile.ZIP_DEFLATED) as archive:
        present = set(archive.namelist())
        for path, arcname in sorted(files, key=lambda f: f[1]):
            if arcname in present:
                raise ValueError(f"{arcname} would shadow a dependency of the same name")
            _add(archive, path, arcname)
            if path.suffix == ".py":
                _add_bytecode(archive, path, arcname)
    partial.replace(target)
    return target


def _add_bytecode(archive: zipfile.ZipFile, path: Path, arcname: str) -> None:
    """`dir/name.py` → `dir/__pycache__/name.<tag>.pyc`, where the runtime's importer looks."""
    folder, _, filename = arcname.rpartition("/")
    cached = f"__pycache__/{filename[:-3]}.{sys.implementation.cache_tag}.pyc"
    info = zipfile.ZipInfo(f"{folder}/{cached}" if folder else cached, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, _bytecode(path, arcname))


# chalicelib/ goes into every package: a synthesis compiles each of its files once.
_compiled: dict[tuple[Path, str, int, int], bytes] = {}


def _bytecode(path: Path, arcname: str) -> bytes:
    stat = path.stat()
    key = (path, arcname, stat.st_mtime_ns, stat.st_size)
    if key not in _compiled:
        with tempfile.TemporaryDirectory() as scratch:
            compiled = Path(scratch) / "module.pyc"
            py_compile.compile(
                str(path),
                cfile=str(compiled),
                dfile=arcname,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
            _compiled[key] = compiled.read_bytes()
    return _compiled[key]


def _write_zip(target: Path, files: Iterator[tuple[Path, str]]) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, arcname in sorted(files, key=lambda f: f[1]):
            _add(archive, path, arcname)


def _add(archive: zipfile.ZipFile, path: Path, arcname: str) -> None:
    info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
    archive.writestr(info, path.read_bytes())


def _tree(root: Path, prefix: str, *, bytecode: bool = False) -> Iterator[tuple[Path, str]]:
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_dir():
            continue
        if not bytecode and (
            _SKIPPED_DIRS.intersection(relative.parts) or path.suffix in _SKIPPED_SUFFIXES
        ):
            continue
        yield path, f"{prefix}/{relative.as_posix()}" if prefix else relative.as_posix()
