"""Lambda deployment packages: the Chalice app's, and one per `functions/` directory.

Dependencies are resolved by Chalice's own DependencyBuilder (what `chalice package` uses: it
downloads manylinux wheels for the Lambda runtime from PyPI, building pure sdists when needed)
and cached by the hash of their requirements file, so only a changed requirements file costs a
download. The code (app.py, chalicelib/, a function's directory) is added on every synth.
Zip entries carry a fixed timestamp and a fixed order: unchanged code gives an unchanged asset
hash, and `cdk deploy` leaves the functions alone.
Our own modules ship with their bytecode (hash-based, never rechecked): Lambda's code directory
is read-only, so without it every cold start would compile all of chalicelib/ again.
"""

from __future__ import annotations

import hashlib
import py_compile
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from infra.stage import PROJECT_ROOT

RUNTIME_ABI = f"cp{sys.version_info.major}{sys.version_info.minor}"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def build_dir() -> Path:
    """Build cache beside the default cloud assembly (ignored by git with it)."""
    return PROJECT_ROOT / "infra" / "cdk.out" / ".build"


def chalice_app_package(cache: Path) -> Path:
    """app.py + chalicelib/ + the project's runtime requirements, as Chalice would package them."""
    deps = dependencies_zip(PROJECT_ROOT / "requirements.txt", cache)
    files = [(PROJECT_ROOT / "app.py", "app.py"), *_tree(PROJECT_ROOT / "chalicelib", "chalicelib")]
    vendor = PROJECT_ROOT / "vendor"
    if vendor.is_dir():
        files += list(_tree(vendor, ""))
    return _code_zip(deps, files, cache / "code" / "chalice-app.zip")


def function_package(name: str, cache: Path) -> Path:
    """functions/<name>/ at the package root (handler "handler.handler"), chalicelib/, and the
    function's own requirements.txt, or the project's when it has none."""
    source = PROJECT_ROOT / "functions" / name
    requirements = source / "requirements.txt"
    if not requirements.is_file():
        requirements = PROJECT_ROOT / "requirements.txt"
    deps = dependencies_zip(requirements, cache)
    files = [*_tree(PROJECT_ROOT / "chalicelib", "chalicelib"), *_tree(source, "")]
    files = [(path, arcname) for path, arcname in files if arcname != "requirements.txt"]
    return _code_zip(deps, files, cache / "code" / f"function-{name}.zip")


def dependencies_zip(requirements: Path, cache: Path) -> Path:
    digest = hashlib.sha256(requirements.read_bytes() + RUNTIME_ABI.encode()).hexdigest()[:16]
    target = cache / "deps" / f"{digest}-{RUNTIME_ABI}.zip"
    if target.is_file():
        return target
    from chalice.deploy.packager import DependencyBuilder
    from chalice.utils import OSUtils

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as site_packages:
        DependencyBuilder(OSUtils()).build_site_packages(
            RUNTIME_ABI, str(requirements), site_packages
        )
        partial = target.with_suffix(".partial")
        _write_zip(partial, _tree(Path(site_packages), ""))
        partial.replace(target)
    return target


def _code_zip(deps: Path, files: list[tuple[Path, str]], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
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
    with tempfile.TemporaryDirectory() as scratch:
        compiled = Path(scratch) / "module.pyc"
        py_compile.compile(
            str(path),
            cfile=str(compiled),
            dfile=arcname,
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        info = zipfile.ZipInfo(f"{folder}/{cached}" if folder else cached, date_time=_FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        archive.writestr(info, compiled.read_bytes())


def _write_zip(target: Path, files: Iterator[tuple[Path, str]]) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, arcname in sorted(files, key=lambda f: f[1]):
            _add(archive, path, arcname)


def _add(archive: zipfile.ZipFile, path: Path, arcname: str) -> None:
    info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
    archive.writestr(info, path.read_bytes())


def _tree(root: Path, prefix: str) -> Iterator[tuple[Path, str]]:
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_dir() or _SKIPPED_DIRS.intersection(relative.parts):
            continue
        if path.suffix in _SKIPPED_SUFFIXES:
            continue
        yield path, f"{prefix}/{relative.as_posix()}" if prefix else relative.as_posix()
