"""The shape issue #12 asked for, kept: no service module over 400 lines (a longer one is several things), and
the lab's harness helpers defined once (nexus_lab/benchmark.py), never copied into a command or a study module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400
HARNESS = ROOT / "nexus_lab" / "benchmark.py"
ONE_DEFINITION = {"percentile", "git_commit", "write_json", "TextTable"}


def python_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def long_files(files: list[Path]) -> dict[str, int]:
    lengths = {_name(p): len(p.read_text().splitlines()) for p in files}
    return {name: n for name, n in lengths.items() if n > MAX_LINES}


def definitions(files: list[Path], names: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in names:
                found.setdefault(node.name, []).append(_name(path))
    return found


def test_no_service_module_is_over_400_lines():
    assert long_files(python_files("nexus_backend")) == {}


def test_the_length_check_notices(tmp_path):
    long = tmp_path / "long.py"
    long.write_text("x = 1\n" * (MAX_LINES + 1))
    short = tmp_path / "short.py"
    short.write_text("x = 1\n" * MAX_LINES)
    assert long_files([long, short]) == {str(long): MAX_LINES + 1}


def test_each_harness_helper_is_defined_once_in_the_harness():
    found = definitions(python_files("nexus_backend", "nexus_lab"), ONE_DEFINITION)
    assert found == {name: [str(HARNESS.relative_to(ROOT))] for name in ONE_DEFINITION}


def test_the_definition_scan_notices_a_copy(tmp_path):
    copy = tmp_path / "copy.py"
    copy.write_text("def percentile(values, q):\n    return 0\n\nclass TextTable:\n    pass\n")
    assert definitions([copy], ONE_DEFINITION) == {"percentile": [str(copy)], "TextTable": [str(copy)]}
