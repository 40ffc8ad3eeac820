"""The summary of one area's mutation session: counts, score with its 95% Wilson interval, survivors.

``python mutation/summary.py --area core`` (or ``run.py --report``) writes
``<workdir>/<area>/report.md`` and ``report.json``.

score = killed / (sampled - listed equivalents - compiled-only), where killed includes the runs cosmic-ray stopped
at the area's timeout (its semantics: a mutant that makes the tests hang is detected); those are
also counted apart. Compiled-only mutants sit in a branch under ``if cython.compiled:``, which the
pure build never runs: they are reported and left out of the score. A run that could not be made (incompetent) counts as not killed. An
equivalent mutant is one listed in ``mutation/equivalents.toml``, matched by module, operator,
the original source line and the mutated line (not by line number, which moves as the code does);
``operator = "*"`` with ``mutant = "*"`` covers every mutant of that line (for a line that is an
annotation and nothing else).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import math
import sqlite3
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
EQUIVALENTS = HERE / "equivalents.toml"


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% for z = 1.96)."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def load_equivalents() -> list[dict]:
    """The listed equivalent mutants (each with module, operator, original, mutant, reason)."""
    with EQUIVALENTS.open("rb") as handle:
        return list(tomllib.load(handle).get("equivalent", []))


def changed_lines(original: str, mutated: str) -> tuple[str, str]:
    """The first original line a mutant changes and what it became (both stripped)."""
    before, after = original.splitlines(), mutated.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        if tag != "equal":
            old = " ".join(line.strip() for line in before[i1:i2])
            new = " ".join(line.strip() for line in after[j1:j2])
            return old, new
    return "", ""


def compiled_only_lines(path: str) -> set[int]:
    """Lines of the branches under ``if cython.compiled:``: the pure build never runs them.

    A mutant there cannot be measured on the Python source (and most would not compile with Cython,
    e.g. ``pointer | int``); the summary counts such mutants apart and leaves them out of the score.
    """
    import ast

    lines: set[int] = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        test = getattr(node, "test", None)
        if (
            isinstance(node, ast.If)
            and isinstance(test, ast.Attribute)
            and test.attr == "compiled"
            and isinstance(test.value, ast.Name)
            and test.value.id == "cython"
        ):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


ANNOTATION_REASON = (
    "an annotation: the module has 'from __future__ import annotations', so it is a string nothing evaluates "
    "(found from the mutant's position in the syntax tree)"
)


#: decorators that never read a function's annotations (the DI decorators, dataclass, pydantic do)
PLAIN_DECORATORS = {"property", "staticmethod", "classmethod", "abstractmethod", "overload"}


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def annotation_spans(path: str) -> list[tuple[int, int, int, int]]:
    """(line, col, end line, end col) of the annotations no code evaluates, in a module with postponed
    annotations (else []): those of functions without decorators that read them (``@property`` and the
    like are fine; the DI decorators, which resolve hints, are not) and not ``__init__`` of a decorated
    class, and those of assignments in function bodies. Class-level fields are left out (dataclasses,
    pydantic and the marshal plans evaluate them)."""
    tree = ast.parse(Path(path).read_text())
    postponed = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not postponed:
        return []
    spans: list[tuple[int, int, int, int]] = []

    def add(annotation: ast.expr | None) -> None:
        if annotation is not None:
            spans.append(
                (
                    annotation.lineno,
                    annotation.col_offset,
                    annotation.end_lineno or 0,
                    annotation.end_col_offset or 0,
                )
            )

    def visit(node: ast.AST, decorated_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, bool(child.decorator_list))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                plain = all(_decorator_name(d) in PLAIN_DECORATORS for d in child.decorator_list)
                if plain and not (decorated_class and child.name in ("__init__", "__post_init__")):
                    arguments = child.args
                    for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                        add(arg.annotation)
                    add(arguments.vararg.annotation if arguments.vararg else None)
                    add(arguments.kwarg.annotation if arguments.kwarg else None)
                    add(child.returns)
                    for inner in ast.walk(child):
                        if isinstance(inner, ast.AnnAssign):
                            add(inner.annotation)
                visit(child, False)

    visit(tree, False)
    return spans


def in_annotation(spans: list[tuple[int, int, int, int]], row: int, col: int) -> bool:
    """Whether (row, col) lies inside one of ``spans``."""
    return any((line, start) <= (row, col) < (end_line, end) for line, start, end_line, end in spans)


def describe(copy: Path, module_path: str, operator: str, occurrence: int, args: str) -> tuple[str, str]:
    """(original line, mutated line) of one mutant, computed without touching any file."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    source = Path(module_path).read_text()
    operator_args = args or {}
    while isinstance(operator_args, str):  # the JSON column comes back encoded
        operator_args = json.loads(operator_args)
    try:
        mutated = mutate_code(source, cosmic_ray.plugins.get_operator(operator)(**operator_args), occurrence)
    except AttributeError as exc:  # cosmic-ray 8.7's ExceptionReplacer on `except a.B as e:` (a PythonNode)
        return f"(cosmic-ray cannot apply {operator} #{occurrence} here: {exc})", ""
    return changed_lines(source, mutated) if mutated is not None else ("", "")


def collect(area: str, base: Path, copy: Path, session: Path) -> dict:
    """Every sampled mutant of the session with its outcome, and the counts."""
    equivalents = load_equivalents()
    rows = (
        sqlite3.connect(session)
        .execute(
            "SELECT s.job_id, s.module_path, s.operator_name, s.occurrence, s.start_pos_row, s.start_pos_col, "
            "s.operator_args, r.worker_outcome, r.test_outcome, r.output "
            "FROM mutation_specs s LEFT JOIN work_results r ON r.job_id = s.job_id "
            "WHERE r.worker_outcome IS NULL OR r.worker_outcome != 'SKIPPED'"
        )
        .fetchall()
    )
    mutants = []
    compiled_only: dict[str, set[int]] = {}
    annotations: dict[str, list[tuple[int, int, int, int]]] = {}
    lines: dict[str, list[str]] = {}
    cache_path = base / "described.json"  # describing a mutant parses its module: once per mutant
    cache: dict[str, list[str]] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    for job_id, module_path, operator, occurrence, row, col, args, worker, outcome, output in rows:
        module = str(Path(module_path).relative_to(copy))
        sampled = base / "sampled" / module  # the source as sampled, whatever the copy holds now
        source_path = str(sampled) if sampled.exists() else module_path
        key = f"{module}|{operator}|{occurrence}|{args}"
        if key not in cache:
            cache[key] = list(describe(copy, source_path, operator, occurrence, args))
        original, mutant = cache[key]
        outcome = (outcome or "").lower()  # cosmic-ray stores the enum names
        if source_path not in compiled_only:
            compiled_only[source_path] = compiled_only_lines(source_path)
        if row in compiled_only[source_path]:
            status = "compiled-only"
        elif worker is None:
            status = "pending"
        elif outcome == "killed":
            status = "timeout" if (output or "").strip() == "timeout" else "killed"
        elif outcome == "survived":
            status = "survived"
        else:
            status = "incompetent"
        if source_path not in annotations:
            annotations[source_path] = annotation_spans(source_path)
        reason = ANNOTATION_REASON if in_annotation(annotations[source_path], row, col) else None
        # the line above, for an entry whose line alone is too common to name one place ("continue")
        if source_path not in lines:
            lines[source_path] = Path(source_path).read_text().splitlines()
        previous = lines[source_path][row - 2].strip() if row >= 2 else ""
        reason = reason or next(
            (
                entry["reason"]
                for entry in equivalents
                if entry["module"] == module
                and entry["operator"] in (operator, "*")
                and entry["original"] == original
                and entry["mutant"] in (mutant, "*")
                and entry.get("previous", previous) == previous
            ),
            None,
        )
        mutants.append(
            {
                "job_id": job_id,
                "module": module,
                "line": row,
                "col": col,
                "operator": operator,
                "occurrence": occurrence,
                "original": original,
                "mutant": mutant,
                "status": status,
                "equivalent": reason,
            }
        )
    cache_path.write_text(json.dumps(cache))
    mutants.sort(key=lambda m: (m["module"], m["line"], m["col"], m["operator"]))
    count = {
        status: sum(m["status"] == status for m in mutants)
        for status in ("killed", "timeout", "survived", "incompetent", "pending", "compiled-only")
    }
    equivalent = sum(m["equivalent"] is not None for m in mutants)
    killed = count["killed"] + count["timeout"]
    denominator = len(mutants) - equivalent - count["compiled-only"]
    low, high = wilson(killed, denominator)
    sample_info = (base / "sample.txt").read_text().strip() if (base / "sample.txt").exists() else ""
    ran = [m for m in mutants if m["status"] not in ("pending", "compiled-only")]
    ran_denominator = len(ran) - sum(m["equivalent"] is not None for m in ran)
    ran_low, ran_high = wilson(killed, ran_denominator)
    return {
        "ran": len(ran),
        "score_of_ran": killed / ran_denominator if ran_denominator else 0.0,
        "interval95_of_ran": [ran_low, ran_high],
        "ran_denominator": ran_denominator,
        "area": area,
        "sample": sample_info,
        "sampled": len(mutants),
        "counts": count,
        "equivalents": equivalent,
        "killed_listed_equivalent": sum(
            m["equivalent"] is not None and m["status"] in ("killed", "timeout") for m in mutants
        ),
        "score": killed / denominator if denominator else 0.0,
        "interval95": [low, high],
        "survivors": [
            m
            for m in mutants
            if m["status"] in ("survived", "incompetent", "pending") and m["equivalent"] is None
        ],
        "listed_equivalent": [m for m in mutants if m["equivalent"] is not None],
        "mutants": mutants,
    }


def render(result: dict) -> str:
    """The Markdown report of one area."""
    c = result["counts"]
    low, high = result["interval95"]
    lines = [
        f"# Mutation testing: {result['area']}",
        "",
        f"{result['sample']}",
        "",
        f"- sampled: {result['sampled']}",
        f"- killed: {c['killed'] + c['timeout']} (of which {c['timeout']} by timeout, which cosmic-ray counts as killed)",
        f"- survived: {c['survived']}, incompetent: {c['incompetent']}, not yet run: {c['pending']}",
        f"- listed equivalent: {result['equivalents']}",
        f"- compiled-only (under `if cython.compiled:`, never run by the pure build; left out): "
        f"{c['compiled-only']}",
        f"- score = killed / (sampled - equivalents - compiled-only) = {c['killed'] + c['timeout']}/"
        f"{result['sampled'] - result['equivalents'] - c['compiled-only']} = {result['score']:.1%} "
        f"(95% Wilson interval {low:.1%} - {high:.1%})",
        *(
            [
                f"- not all run: over the {result['ran']} mutants run (a random part of the sample), "
                f"killed / (run - equivalents) = {c['killed'] + c['timeout']}/{result['ran_denominator']} = "
                f"{result['score_of_ran']:.1%} (95% Wilson interval {result['interval95_of_ran'][0]:.1%} - "
                f"{result['interval95_of_ran'][1]:.1%})"
            ]
            if c["pending"]
            else []
        ),
        "",
        "## Survivors (not listed as equivalent)",
        "",
    ]
    for m in result["survivors"]:
        lines.append(
            f"- {m['status']} {m['module']}:{m['line']} {m['operator']}#{m['occurrence']}: "
            f"`{m['original']}` -> `{m['mutant']}`"
        )
    lines += ["", "## Compiled-only (not measurable on the Python source)", ""]
    for m in result["mutants"]:
        if m["status"] == "compiled-only":
            lines.append(f"- {m['module']}:{m['line']} {m['operator']}: `{m['original']}` -> `{m['mutant']}`")
    lines += ["", "## Listed equivalent", ""]
    for m in result["listed_equivalent"]:
        lines.append(
            f"- {m['status']} {m['module']}:{m['line']} {m['operator']}: `{m['original']}` -> "
            f"`{m['mutant']}`: {m['equivalent']}"
        )
    return "\n".join(lines) + "\n"


def write_report(area: str, spec: dict, base: Path, copy: Path, session: Path) -> dict:
    """Write report.md and report.json of the area and print the headline."""
    result = collect(area, base, copy, session)
    (base / "report.json").write_text(json.dumps(result, indent=1))
    text = render(result)
    (base / "report.md").write_text(text)
    print("\n".join(text.splitlines()[:10]), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: write the report of one area's session."""
    sys.path.insert(0, str(HERE))
    from run import DEFAULT_WORKDIR, area_dirs, load_areas

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--area", required=True)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    options = parser.parse_args(argv)
    base, copy, session = area_dirs(options.workdir, options.area)
    write_report(options.area, load_areas()[options.area], base, copy, session)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
