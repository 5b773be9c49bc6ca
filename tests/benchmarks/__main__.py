"""``python -m tests.benchmarks``: see ``README.md`` in this directory."""

import sys

from .runner import main

sys.exit(main())
