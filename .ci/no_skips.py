"""Fail when a pytest JUnit XML report holds a skipped test, or no test at all.

Used by .ci/run for selections that must run every case: a skip there means a rival library
did not import and its comparison silently did not happen.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree


def main(path: str) -> int:
    root = ElementTree.parse(path).getroot()
    cases = root.findall(".//testcase")
    skipped = [case for case in cases if case.find("skipped") is not None]
    for case in skipped:
        reason = case.find("skipped")
        message = reason.get("message", "") if reason is not None else ""
        print(f"skipped: {case.get('classname')}::{case.get('name')}: {message}")
    print(f"{len(cases)} cases, {len(skipped)} skipped")
    return 1 if skipped or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
