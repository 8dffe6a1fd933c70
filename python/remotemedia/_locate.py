"""Finds a ``module:Class`` node type without running any of the module's code.

``remotemedia validate`` uses this by default (``--import`` imports instead): importing a
module runs its top-level code, and checking a manifest must not run what it names. The
module is located the way ``import`` would locate it (every finder on ``sys.meta_path``, each
package level through its parent's search path, no parent ``__init__`` executed), and when it
has Python source, that source is parsed (not run) to see that it defines or imports the class
name at top level.
"""

from __future__ import annotations

import ast
import importlib.machinery
import sys
from importlib.machinery import ModuleSpec


def locate_class(path: str) -> str:
    """Checks that ``path`` (``package.module:Class``) names a top-level name of a findable
    module, without importing it. Returns where the module is (its file, or a note when its
    source cannot be read); raises ``LookupError`` saying what is missing."""
    module, _, attr = path.partition(":")
    name = attr.split(".")[0]
    spec = _find_spec(module)
    if spec is None:
        raise LookupError(f"no module named {module!r} on the Python path (not imported)")
    loaded = sys.modules.get(module)
    if loaded is not None:
        # Already imported (by Python itself or the package): looking runs nothing new.
        from remotemedia.nodes.base import Node

        obj = getattr(loaded, name, None)
        if obj is None:
            raise LookupError(f"module {module!r} has no attribute {name!r}")
        if not (isinstance(obj, type) and issubclass(obj, Node)):
            raise LookupError(f"{path!r} is not a remotemedia.Node subclass")
        return spec.origin or module
    origin = spec.origin
    if (
        origin is None
        or not isinstance(spec.loader, importlib.machinery.SourceFileLoader)
        or not origin.endswith(".py")
    ):
        return f"{origin or module} (not Python source: {name!r} not checked)"
    try:
        with open(origin, "rb") as f:
            tree = ast.parse(f.read(), filename=origin)
    except (OSError, SyntaxError, ValueError) as exc:
        raise LookupError(f"cannot read module {module!r} ({origin}): {exc}") from None
    defined = _top_level_names(tree)
    if defined.get(name) == "function":
        raise LookupError(f"{path!r} is a function in {origin}, not a remotemedia.Node class")
    if name not in defined and "*" not in defined:
        raise LookupError(
            f"module {module!r} ({origin}) defines no top-level {name!r} "
            "(read without running it; `remotemedia validate --import` imports it)"
        )
    return origin


def _find_spec(module: str) -> ModuleSpec | None:
    """The spec ``import module`` would use, found level by level without executing any
    package's ``__init__``."""
    search: list[str] | None = None
    spec: ModuleSpec | None = None
    parts = module.split(".")
    for i in range(len(parts)):
        full = ".".join(parts[: i + 1])
        loaded = sys.modules.get(full)
        if loaded is not None and getattr(loaded, "__spec__", None) is not None:
            spec = loaded.__spec__
        else:
            spec = None
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                try:
                    spec = find(full, search)
                except (ImportError, ValueError):
                    spec = None
                if spec is not None:
                    break
        if spec is None:
            return None
        locations = spec.submodule_search_locations
        search = list(locations) if locations is not None else None
        if search is None and i < len(parts) - 1:
            return None  # a module, not a package: it has no submodules
    return spec


def _top_level_names(tree: ast.Module) -> dict[str, str]:
    """Names a module binds at top level, each with how ("class", "function", "name"):
    classes, functions, assignments, imports (``*`` for a star import, whose names cannot be
    known without running it)."""
    names: dict[str, str] = {}

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                names[node.name] = "class"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names[node.name] = "function"
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    for n in ast.walk(target):
                        if isinstance(n, ast.Name):
                            names[n.id] = "name"
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(
                node.target, ast.Name
            ):
                names[node.target.id] = "name"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names[alias.asname or alias.name.split(".")[0]] = "name"
            elif isinstance(node, (ast.If, ast.Try)):
                # `if TYPE_CHECKING:` / `try: import x except ImportError: ...` branches.
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names
