"""Which domain errors a function can raise, found by reading the source (no import, no run).

Each function of chalicelib is read once: the errors it constructs or raises, and the functions
it calls. A call is resolved through the module's imports (lazy ones in the body included) and
its own top-level functions; a method call on an object of unknown type resolves to every
method of that name in chalicelib, except names that builtin containers and strings have too
(`get`, `update`, ...), which would tie every dictionary read to every store. The raised sets
are then propagated along the calls to a fixed point. The answer errs on the side of more: a
route may list a status that no request reaches, never miss one it answers.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The error classes people see, by the name they are raised with (subclasses folded in).
ERRORS = {
    "InvalidInput": "InvalidInput",
    "Unauthenticated": "Unauthenticated",
    "Forbidden": "Forbidden",
    "NotFound": "NotFound",
    "Conflict": "Conflict",
    "IllegalTransition": "Conflict",
    "PayloadTooLarge": "PayloadTooLarge",
    "UnsupportedMediaType": "UnsupportedMediaType",
    "RuleViolation": "RuleViolation",
    "DependencyUnavailable": "DependencyUnavailable",
}
_BUILTIN_METHODS = frozenset(
    [
        "get",
        "update",
        "append",
        "pop",
        "items",
        "keys",
        "values",
        "setdefault",
        "copy",
        "format",
        "join",
        "split",
        "strip",
        "replace",
        "startswith",
        "endswith",
        "encode",
        "decode",
        "add",
        "extend",
        "index",
        "sort",
        "insert",
        "remove",
        "clear",
        "lower",
        "upper",
        "read",
        "write",
        "close",
        "isoformat",
        "astimezone",
        "date",
        "time",
        "count",
        "discard",
        "search",
        "match",
        "fullmatch",
        "sub",
        "findall",
        "group",
    ]
)
# Wiring and the request pipeline (whose own refusals the OpenAPI builder adds per route).
_NOT_FOLLOWED = (
    "chalicelib.bootstrap",
    "chalicelib.settings",
    "chalicelib.observability",
    "chalicelib.entrypoints.http.routing",
)

Key = tuple[str, str]  # (module, "function" or "Class.method")


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(node: ast.AST) -> dict[str, tuple[str, str]]:
    found = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith("chalicelib"):
            for alias in sub.names:
                found[alias.asname or alias.name] = (sub.module or "", alias.name)
    return found


class _Index:
    def __init__(self) -> None:
        self.defs: dict[Key, ast.FunctionDef] = {}
        self.methods: dict[str, list[Key]] = defaultdict(list)
        self.module_imports: dict[str, dict[str, tuple[str, str]]] = {}
        for path in sorted((ROOT / "chalicelib").rglob("*.py")):
            module = _module_name(path)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    self.defs[(module, node.name)] = node
                elif isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef):
                            key = (module, f"{node.name}.{item.name}")
                            self.defs[key] = item
                            self.methods[item.name].append(key)
            self.module_imports[module] = _imports(
                ast.Module(body=[n for n in tree.body if isinstance(n, ast.ImportFrom)])
            )
        self.raised: dict[Key, set[str]] = {}
        self.calls: dict[Key, set[Key]] = {}
        for key, node in self.defs.items():
            self._read(key, node)
        self._propagate()

    def _resolve(self, target: Key) -> Key | None:
        """Follow re-exports (`from .articles import create` in a package's `__init__`)."""
        for _ in range(5):
            if target in self.defs:
                return target
            module, name = target
            if name not in self.module_imports.get(module, {}):
                return None
            target = self.module_imports[module][name]
        return None

    def _name(self, module: str, imports: dict[str, tuple[str, str]], name: str) -> list[Key]:
        found = self._resolve(imports.get(name, (module, name)))
        return [found] if found else []

    def _read(self, key: Key, node: ast.FunctionDef) -> None:
        module = key[0]
        raised: set[str] = set()
        calls: set[Key] = set()
        self.raised[key], self.calls[key] = raised, calls
        if module in _NOT_FOLLOWED:
            return
        body = ast.Module(body=node.body, type_ignores=[])  # not the decorators
        imports = {**self.module_imports[module], **_imports(body)}
        for sub in ast.walk(body):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                if sub.id in ERRORS:
                    raised.add(ERRORS[sub.id])
                else:  # called, or passed on as a callback
                    calls.update(self._name(module, imports, sub.id))
            elif isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Load):
                calls.update(self._attribute(key, imports, sub))
                if sub.attr in ERRORS:
                    raised.add(ERRORS[sub.attr])
            if isinstance(sub, ast.Call):
                calls.update(self._by_name(key, sub))

    def _attribute(
        self, key: Key, imports: dict[str, tuple[str, str]], node: ast.Attribute
    ) -> list[Key]:
        if node.attr.startswith("__") or node.attr in ERRORS:
            return []
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in imports:
            package, name = imports[owner.id]
            module = f"{package}.{name}"  # `from chalicelib.x import module`
            found = self._resolve((module, node.attr))
            if found:
                return [found]
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls") and "." in key[1]:
            cls = key[1].split(".")[0]
            own = (key[0], f"{cls}.{node.attr}")
            return [own] if own in self.defs else []
        if node.attr in _BUILTIN_METHODS:
            return []
        return list(self.methods.get(node.attr, []))

    def _by_name(self, key: Key, call: ast.Call) -> list[Key]:
        """Use cases chosen by name: `_transition(call, ticket_id, "reply", ...)` calls `reply`
        of the module `_transition` imports as `service` (`service_layer.tickets.transitions`)."""
        if not (isinstance(call.func, ast.Name) and call.func.id == "_transition"):
            return []
        helper = self.defs.get((key[0], "_transition"))
        if helper is None:
            return []
        package, name = _imports(helper).get("service", ("", ""))
        service = f"{package}.{name}"
        return [
            (service, arg.value)
            for arg in call.args
            if isinstance(arg, ast.Constant)
            and isinstance(arg.value, str)
            and (service, arg.value) in self.defs
        ]

    def _propagate(self) -> None:
        changed = True
        while changed:
            changed = False
            for key, calls in self.calls.items():
                mine = self.raised[key]
                before = len(mine)
                for callee in calls:
                    mine |= self.raised.get(callee, set())
                changed |= len(mine) != before


@functools.cache
def _index() -> _Index:
    return _Index()


def errors_raised(module: str, function: str) -> frozenset[str]:
    """The names of the error classes (folded to those in ERRORS' values) the function can
    raise, through everything it calls."""
    return frozenset(_index().raised.get((module, function), set()))
