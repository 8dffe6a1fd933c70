"""``python -m remotemedia``: the ``remotemedia`` command (see :mod:`remotemedia.cli`)."""

import sys

from remotemedia.cli import main

if __name__ == "__main__":
    sys.exit(main(["remotemedia", *sys.argv[1:]]))
