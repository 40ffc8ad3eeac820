"""The long fuzzing job, outside the default test run: ``python -m fuzz --examples 100000 [target ...]``.

It runs the targets of ``tests/fuzz/fuzz_targets.py`` (the same strategies and checks as the bounded
tests in ``tests/fuzz``) for as many generated inputs as asked, on both builds of the core in one process
(only the plain-Python one under ``WARPCALL_PURE=1``), and prints per target the inputs checked, the time
and how the inputs came out. ``fuzz/atheris_<target>.py`` are coverage-guided harnesses for the
plain-Python build. See fuzz/README.md.
"""
