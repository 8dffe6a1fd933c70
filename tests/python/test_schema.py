"""The shipped JSON Schema works in a standard validator: it accepts the bundled examples and
rejects every golden invalid manifest that a schema can express (graph-level rules, such as
cycles or unknown node types, are the runtime's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schema/manifest.v1.schema.json").read_text())


def _is_json(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    return True


# The golden invalid manifests that are JSON (one is deliberately not).
INVALID = [p for p in sorted((REPO / "tests/manifests/invalid").glob("*.json")) if _is_json(p)]

# Rules about the graph as a whole, which JSON Schema cannot state; the runtime checks them
# (their messages are golden files too).
GRAPH_LEVEL = {
    "connection_to_unknown_node",
    "cycle",
    "duplicate_connection",
    "duplicate_ids",
    "self_loop",
    "unknown_node_type",
}


def validator() -> Any:
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    return cls(SCHEMA)


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.json")), ids=lambda p: p.name)
def test_bundled_examples_are_valid(path: Path) -> None:
    errors = list(validator().iter_errors(json.loads(path.read_text())))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifests_are_rejected_by_the_schema(path: Path) -> None:
    errors = list(validator().iter_errors(json.loads(path.read_text())))
    if path.stem in GRAPH_LEVEL:
        assert not errors, "a graph-level case the schema now catches: drop it from GRAPH_LEVEL"
    else:
        assert errors, f"{path.name} passes the schema but the runtime rejects it"


def test_the_golden_set_is_what_this_test_expects() -> None:
    assert len(INVALID) >= 20
    assert GRAPH_LEVEL <= {p.stem for p in INVALID}


def test_the_sample_error_in_the_manifest_docs_is_the_current_one() -> None:
    doc = (REPO / "docs/manifest.md").read_text()
    expected = (REPO / "tests/manifests/invalid/several_problems.expected").read_text().strip()
    assert f"```\n{expected}\n```" in doc
