"""Every built-in node class is its Rust definition: the same parameters, in the same order,
with the same defaults and types, and the same description (the classes are generated from
the definitions; this test reads the runtime's registry, so it also catches a stale build)."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import remotemedia
from remotemedia import _native
from remotemedia.nodes.builtin import BUILTIN_TYPES

#: Built-in types whose Python class is written by hand: RemotePipelineNode (defined by the
#: gRPC crate) takes a Pipeline object as well as a manifest dict.
HAND_WRITTEN = {"RemotePipelineNode"}
INFOS = {
    i["node_type"]: i
    for i in json.loads(_native.node_types_json())
    if i["runtime"] == "rust" and i["node_type"] not in HAND_WRITTEN
}


def _expected_annotation(schema: dict[str, Any], name: str) -> str:
    """The Python annotation the schema of one parameter calls for."""
    props = schema["properties"][name]
    alts = props.get("anyOf", [props])
    nullable = any(a.get("type") == "null" for a in alts)
    ref = next((a["$ref"] for a in alts if "$ref" in a), None)
    if ref is not None:
        enum = ref.rsplit("/", 1)[1]
        base = "SampleFormatLike" if enum == "SampleFormat" else enum
    else:
        types = props["type"] if isinstance(props["type"], list) else [props["type"]]
        nullable = nullable or "null" in types
        (kind,) = [t for t in types if t != "null"]
        base = {
            "integer": "int",
            "number": "float",
            "boolean": "bool",
            "string": "str | os.PathLike[str]" if props.get("format") == "path" else "str",
            "object": "dict[str, float]",
        }[kind]
    return f"{base} | None" if nullable else base


def test_every_builtin_node_type_has_its_class() -> None:
    assert set(INFOS) <= set(BUILTIN_TYPES), set(INFOS) - set(BUILTIN_TYPES)
    for node_type in INFOS:
        cls = BUILTIN_TYPES[node_type]
        assert getattr(remotemedia, cls.__name__) is cls
        assert cls.node_type == node_type


@pytest.mark.parametrize("node_type", sorted(INFOS))
def test_python_signature_equals_the_schema(node_type: str) -> None:
    info = INFOS[node_type]
    schema = info["params_schema"]
    cls = BUILTIN_TYPES[node_type]
    sig = inspect.signature(cls.__init__)
    params = list(sig.parameters.values())[1:]
    assert [p.name for p in params] == list(schema.get("properties", {}))
    required = set(schema.get("required", []))
    for p in params:
        if p.name in required:
            assert p.default is inspect.Parameter.empty, p.name
        else:
            default = schema["properties"][p.name].get("default")
            assert p.default == default, (p.name, p.default, default)
            assert type(p.default) is type(default), p.name
        # The parameter that picks the output type is typed per value by the overloads; the
        # implementation takes any string.
        chooser = isinstance(info["outputs"], dict) and (
            info["outputs"].get("by_param", {}).get("param") == p.name
        )
        want = "str" if chooser else _expected_annotation(schema, p.name)
        assert p.annotation == want, (p.name, p.annotation, want)


@pytest.mark.parametrize("node_type", sorted(INFOS))
def test_docstring_is_the_description(node_type: str) -> None:
    doc = inspect.getdoc(BUILTIN_TYPES[node_type]) or ""
    first = INFOS[node_type]["description"].split("\n")[0]
    assert doc.startswith(first)
    for name in INFOS[node_type]["params_schema"].get("properties", {}):
        assert f"\n    {name} (" in doc or f"\n{name} (" in doc, name


def test_enum_parameters_are_literal_types_mypy_checks() -> None:
    """A misspelt enum value is a type error (mypy reads the generated Literal types)."""
    from remotemedia.nodes import _generated

    assert _generated.ResampleQuality.__args__ == ("fast", "medium", "high")  # type: ignore[attr-defined]
    sig = inspect.signature(remotemedia.AudioResampleNode.__init__)
    assert sig.parameters["quality"].annotation == "ResampleQuality"


@pytest.mark.skipif(shutil.which("mypy") is None, reason="mypy not installed")
def test_mypy_catches_a_misspelt_enum_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import remotemedia as rm\n"
        'rm.FormatConverterNode("f16")\n'
        'rm.AudioResampleNode(16000, quality="best")\n'
        'rm.SpeechVADNode(engine="webrtc")\n'
        'rm.FormatConverterNode("int16")\n'
    )
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(bad)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert [e.split(":")[1] for e in errors] == ["2", "3", "4"], r.stdout
