"""The ``remotemedia`` command installed with the package: the Rust CLI, plus Python nodes
(manifest node types written as ``"package.module:Class"``)."""

from __future__ import annotations

import os
import sys

from remotemedia import _native


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code.

    The current directory goes first on ``sys.path`` (as with ``python -m``), so a manifest
    or a one-line pipeline can name ``mynodes:Denoise`` from ``./mynodes.py``."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    args = list(sys.argv if argv is None else argv)
    if not args:
        args = ["remotemedia"]
    return int(_native.cli_main(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
