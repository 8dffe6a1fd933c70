"""``TypeVar`` with a default (PEP 696) on every supported Python, without a dependency:
type checkers read ``typing_extensions`` (bundled with them); at run time a default only
matters for introspection, so older Pythons without ``typing_extensions`` get a plain
``TypeVar``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

__all__ = ["TypeVar"]

if TYPE_CHECKING:
    from typing_extensions import TypeVar
elif sys.version_info >= (3, 13):
    from typing import TypeVar
else:
    try:
        from typing_extensions import TypeVar
    except ImportError:  # pragma: no cover - depends on the environment
        import typing

        def TypeVar(name: str, *constraints: Any, default: Any = None, **kwargs: Any) -> Any:
            return typing.TypeVar(name, *constraints, **kwargs)
