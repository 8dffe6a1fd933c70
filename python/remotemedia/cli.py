"""The ``remotemedia`` command installed with the package: the Rust CLI, plus Python nodes
(manifest node types written as ``"package.module:Class"``)."""

from __future__ import annotations

import sys

from remotemedia import _runtime


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    args = list(sys.argv if argv is None else argv)
    if not args:
        args = ["remotemedia"]
    try:
        native = _runtime.native()
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return int(native.cli_main(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
