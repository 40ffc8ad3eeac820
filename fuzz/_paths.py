"""Put ``tests/fuzz`` (the targets) and ``tests`` (``rawhttp``) on ``sys.path``, as pytest's rootdir does."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for folder in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "fuzz")):
    if folder not in sys.path:
        sys.path.insert(0, folder)
