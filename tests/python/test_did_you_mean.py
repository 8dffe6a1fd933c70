"""Errors that suggest the fix (issue 36, item 4): keyword typos in node constructors, manifest
field and node-type typos, and GainNode's one-of rule naming what was given."""

from __future__ import annotations

import json
from typing import Any

import pytest

import remotemedia as rm
from remotemedia import ManifestError, Pipeline

import cli_nodes


def test_a_keyword_typo_names_the_closest_parameter() -> None:
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument 'treshold'; did you mean 'threshold'\?"
    ):
        rm.SpeechVADNode(treshold=0.5)  # type: ignore[call-arg]
    with pytest.raises(
        TypeError,
        match=r"'target_rat'; did you mean 'target_rate'\? \(it takes: target_rate, quality\)",
    ):
        rm.AudioResampleNode(target_rat=16000)  # type: ignore[call-arg]
    # The user's own nodes too.
    with pytest.raises(
        TypeError,
        match=r"Gain\(\) got an unexpected keyword argument 'factr'; did you mean 'factor'\?",
    ):
        cli_nodes.Gain(factr=2.0)  # type: ignore[call-arg]
    # Nothing close: no guess, but the parameters are listed.
    with pytest.raises(TypeError, match=r"'frobnicate' \(it takes: target_rate, quality\)"):
        rm.AudioResampleNode(16000, frobnicate=1)  # type: ignore[call-arg]


def manifest(*nodes: dict[str, Any], **top: Any) -> str:
    return json.dumps({"version": "v1", "nodes": list(nodes), **top})


def test_manifest_typos_are_suggested_with_and_without_python_nodes() -> None:
    native = {"id": "r", "node_type": "AudioResampleNode", "parms": {"target_rate": 16000}}
    with pytest.raises(
        ManifestError, match=r"parms: unknown field `parms`.*did you mean `params`\?"
    ):
        Pipeline.from_manifest(manifest(native))
    param = {"id": "r", "node_type": "AudioResampleNode", "params": {"target_rat": 16000}}
    with pytest.raises(ManifestError, match=r"did you mean `target_rate`\?"):
        Pipeline.from_manifest(manifest(param))
    # With a Python node the misspelt field is refused too, not silently dropped (a node with
    # its default parameters would run instead of the one asked for).
    py = {"id": "g", "node_type": "cli_nodes:Gain", "parms": {"factor": 2.0}}
    with pytest.raises(
        ManifestError, match=r"node 'g': parms: unknown field; did you mean 'params'\?"
    ):
        Pipeline.from_manifest(manifest(py))
    with pytest.raises(ManifestError, match=r"node: unknown field; did you mean 'nodes'\?"):
        Pipeline.from_manifest(
            json.dumps(
                {"version": "v1", "node": [], "nodes": [{"id": "g", "node_type": "cli_nodes:Gain"}]}
            )
        )
    for nodes in (
        [{"id": "v", "node_type": "VADNod"}],
        [{"id": "v", "node_type": "VADNod"}, {"id": "g", "node_type": "cli_nodes:Gain"}],
    ):
        with pytest.raises(ManifestError, match=r"did you mean 'VADNode'\?"):
            Pipeline.from_manifest(manifest(*nodes))


def test_gain_node_names_the_fields_given() -> None:
    with pytest.raises(ManifestError) as e:
        rm.GainNode(db=-3, peak_db=-1)
    msg = str(e.value)
    assert "params.db/peak_db: db and peak_db were both given; give exactly one" in msg
    assert "linear:" not in msg
    with pytest.raises(
        ManifestError, match=r"params.db: missing: give exactly one of db, linear, peak_db"
    ):
        rm.GainNode()
