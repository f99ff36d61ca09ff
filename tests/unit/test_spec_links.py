"""docs/spec.md names the tests that prove each scenario; this keeps it from drifting."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def spec_references() -> list[tuple[str, str]]:
    return REFERENCE.findall((ROOT / "docs" / "spec.md").read_text())


def test_every_named_test_exists():
    references = spec_references()
    assert len(references) >= 30, "the spec should name the tests behind its scenarios"
    missing = [
        f"{file}::{name}"
        for file, name in references
        if not (ROOT / file).is_file() or name not in defined_tests(ROOT / file)
    ]
    assert missing == [], f"docs/spec.md names tests that do not exist: {missing}"


def test_every_scenario_names_a_test():
    text = (ROOT / "docs" / "spec.md").read_text()
    scenarios = re.split(r"\n(?=#### Scenario)", text)[1:]
    assert scenarios, "no scenarios found"
    unproven = [s.splitlines()[0] for s in scenarios if not REFERENCE.search(s)]
    assert unproven == [], f"scenarios without a test: {unproven}"
