"""``python -m warpcall``: the ``warpcall`` command."""

import sys

from warpcall.cli import main

sys.exit(main())
