"""Pipelines with several inputs (issue 37): each source node is an input named by its id;
run and stream take a dict by input name (or ``to=``), aligned by stream position."""

from __future__ import annotations

import numpy as np
import pytest

from remotemedia import GainNode, MixNode, Pipeline


def _two_inputs() -> Pipeline:
    p = Pipeline("two")
    p.add_node(GainNode(db=0), "mic").add_node(GainNode(db=-6), "far").add_node(MixNode(), "mix")
    return p.connect("mic", "mix").connect("far", "mix")


def test_run_takes_a_dict_by_input_name() -> None:
    mic = np.full(1000, 0.1, np.float32)
    far = np.full(800, 0.2, np.float32)
    out = np.asarray(_two_inputs().run({"mic": mic, "far": far}, sample_rate=16000))
    half = 10 ** (-6 / 20)
    assert out.shape == (1000,)  # the longer input's length; the shorter padded with silence
    np.testing.assert_allclose(out[:800], 0.1 + 0.2 * half, rtol=1e-6)
    np.testing.assert_allclose(out[800:], 0.1, rtol=1e-6)
    # One array still goes to every input.
    one = np.asarray(_two_inputs().run(mic, sample_rate=16000))
    np.testing.assert_allclose(one, 0.1 * (1 + half), rtol=1e-6)


def test_an_unknown_input_name_is_named_with_the_inputs() -> None:
    x = np.zeros(100, np.float32)
    with pytest.raises(
        ValueError,
        match=r"unknown input 'mik' \(this pipeline's inputs, its source nodes, are: mic, far\); did you mean 'mic'\?",
    ):
        _two_inputs().run({"mik": x, "far": x}, sample_rate=16000)


@pytest.mark.parametrize("background", [False, True])
def test_streamed_inputs_in_unequal_chunks_equal_the_whole_run(background: bool) -> None:
    rng = np.random.default_rng(0)
    mic = (0.1 * rng.standard_normal(4000)).astype(np.float32)
    far = (0.1 * rng.standard_normal(3000)).astype(np.float32)
    p = _two_inputs()
    whole = np.asarray(p.run({"mic": mic, "far": far}, sample_rate=16000))
    outs = []
    with p.stream(sample_rate=16000, background=background) as s:
        i = j = 0
        while i < len(mic) or j < len(far):
            if i < len(mic):
                s.send(mic[i : i + 160], to="mic")  # 10 ms
                i += 160
            if j < len(far):
                s.send({"far": far[j : j + 320]})  # 20 ms
                j += 320
            outs += [np.asarray(o.data) for o in s.poll()]
        outs += [np.asarray(o.data) for o in s.close()]
    np.testing.assert_array_equal(np.concatenate(outs), whole)


def test_a_stream_refuses_an_unknown_input_and_goes_on() -> None:
    p = _two_inputs()
    x = np.zeros(160, np.float32)
    with p.stream(sample_rate=16000) as s:
        with pytest.raises(ValueError, match="unknown input 'farr'"):
            s.send(x, to="farr")
        s.send({"mic": x, "far": x})
        assert sum(len(np.asarray(o.data)) for o in s.poll()) == 160
