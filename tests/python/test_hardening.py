"""Issue 9 hardening, seen from Python: breakers only where configured, clear rate errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import remotemedia
from remotemedia import AudioResampleNode, PassThroughNode, Pipeline


def test_circuit_breaker_round_trips_and_is_validated() -> None:
    p = Pipeline("b").add_node(
        AudioResampleNode(16000), "r", circuit_breaker={"failure_threshold": 2, "cooldown_ms": 500}
    )
    p.add_node(PassThroughNode(), "p")
    manifest = json.loads(p.serialize())
    assert manifest["nodes"][0]["circuit_breaker"] == {"failure_threshold": 2, "cooldown_ms": 500}
    assert "circuit_breaker" not in manifest["nodes"][1]
    assert json.loads(Pipeline.from_manifest(manifest).serialize()) == manifest
    with pytest.raises(ValueError, match="circuit_breaker must be a dict with keys among"):
        Pipeline("x").add_node(PassThroughNode(), circuit_breaker={"threshold": 3})


def _nan_input() -> np.ndarray:
    x = np.zeros(4800, dtype=np.float32)
    x[17] = np.nan
    return x


def test_bad_input_is_an_input_error_and_never_opens_a_breaker() -> None:
    good = np.full(4800, 0.1, dtype=np.float32)
    for breaker in (None, {"failure_threshold": 2, "cooldown_ms": 60000}):
        p = Pipeline("n").add_node(AudioResampleNode(16000), "r", circuit_breaker=breaker)
        for _ in range(10):
            with pytest.raises(remotemedia.NodeError, match=r"sample 17 .*NaN.*finite"):
                p.run(_nan_input(), sample_rate=48000)
        out = p.run(good, sample_rate=48000)
        assert len(out) == 1600


def test_configured_breaker_opens_and_default_does_not() -> None:
    class Fails(remotemedia.Node):
        def process(self, data: object) -> object:
            raise RuntimeError("boom")

    x = np.zeros(160, dtype=np.float32)
    p = Pipeline("d").add_node(Fails(), "f", retry={"max_attempts": 1})
    for _ in range(8):
        with pytest.raises(RuntimeError, match="boom"):
            p.run(x, sample_rate=16000)
    p = Pipeline("c").add_node(
        Fails(), "f", retry={"max_attempts": 1}, circuit_breaker={"failure_threshold": 2}
    )
    for _ in range(2):
        with pytest.raises(RuntimeError, match="boom"):
            p.run(x, sample_rate=16000)
    with pytest.raises(remotemedia.CircuitOpenError):
        p.run(x, sample_rate=16000)


@pytest.mark.parametrize("rate", [-1, 0, 2**32, 2**64, -(2**40)])
def test_unrepresentable_sample_rates_are_value_errors(rate: int) -> None:
    p = Pipeline("s").add_node(PassThroughNode())
    with pytest.raises(ValueError, match=r"sample_rate must be in 8000\.\.=384000 Hz"):
        p.run(np.zeros(480, dtype=np.float32), sample_rate=rate)


@pytest.mark.parametrize("rate", [1, 7999, 384001, 2**32 - 1])
def test_out_of_range_rates_are_refused_by_every_node(rate: int) -> None:
    p = Pipeline("s").add_node(PassThroughNode())
    with pytest.raises(remotemedia.NodeError, match=r"PassThroughNode.*8000\.\.=384000 Hz"):
        p.run(np.zeros(480, dtype=np.float32), sample_rate=rate)
