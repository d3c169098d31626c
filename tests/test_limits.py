"""Size limits the project keeps: a README users can read, functions that fit on a screen."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_README_LINES = 300
MAX_FUNCTION_LINES = 60


def _functions(folder: str):
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(ROOT), node


def test_readme_is_at_most_300_lines():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move design detail to docs/"


def test_no_function_is_over_60_lines():
    long = [f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for folder in ("tuner", "probes", "reports") for path, node in _functions(folder)
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, "functions over 60 lines: " + "; ".join(long)

