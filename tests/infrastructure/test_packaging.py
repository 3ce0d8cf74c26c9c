"""infra/packaging.py on small inputs: what makes an asset hash stable, without a synthesis."""

from __future__ import annotations

import hashlib
import marshal
import sys
import types
import zipfile
from pathlib import Path

import pytest

from infra import packaging

pytestmark = pytest.mark.infrastructure


def _deps_zip(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "lib").mkdir(parents=True)
    (site / "lib" / "__init__.py").write_text("VALUE = 1\n", encoding="utf-8")
    target = tmp_path / "deps.zip"
    packaging._write_zip(target, packaging._tree(site, "", bytecode=True))
    return target


def _code_package(tmp_path: Path, deps: Path, source: str, folder: str, name: str) -> bytes:
    code = tmp_path / folder
    code.mkdir(exist_ok=True)
    (code / "handler.py").write_text(source, encoding="utf-8")
    built = packaging._code_zip(deps, [(code / "handler.py", "handler.py")], tmp_path / name)
    return built.read_bytes()


def test_the_same_code_gives_the_same_bytes_and_changed_code_other_bytes(tmp_path: Path) -> None:
    deps = _deps_zip(tmp_path)
    source = "def handler(event, context):\n    return 1\n"
    first = _code_package(tmp_path, deps, source, "a", "first.zip")
    again = _code_package(tmp_path, deps, source, "b", "again.zip")
    # The same file changed within one synthesis: compiled again, not taken from the first.
    changed = _code_package(tmp_path, deps, source.replace("1", "22"), "a", "changed.zip")
    assert hashlib.sha256(first).digest() == hashlib.sha256(again).digest()
    assert first != changed
    with zipfile.ZipFile(tmp_path / "changed.zip") as archive:
        compiled = archive.read(f"__pycache__/handler.{sys.implementation.cache_tag}.pyc")
    module = marshal.loads(compiled[16:])  # after the pyc header
    handler = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    assert 22 in handler.co_consts


def test_removed_console_scripts_leave_no_line_in_the_records(tmp_path: Path) -> None:
    """pip writes the installing interpreter's path into console scripts: their RECORD lines
    would make the dependency zip differ from one checkout to another."""
    record = tmp_path / "tool-1.0.dist-info" / "RECORD"
    record.parent.mkdir()
    record.write_text(
        "../../bin/tool,sha256=abc,174\ntool/__init__.py,sha256=def,10\n"
        "tool-1.0.dist-info/RECORD,,\n",
        encoding="utf-8",
    )
    packaging._forget_scripts(tmp_path)
    assert record.read_text(encoding="utf-8") == (
        "tool/__init__.py,sha256=def,10\ntool-1.0.dist-info/RECORD,,\n"
    )
