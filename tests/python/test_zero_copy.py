"""Zero-copy across the boundary, proven: numpy -> Rust borrows, Rust -> numpy moves the
allocation. The native module logs how each audio buffer crossed (only while a test asks)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from remotemedia import (
    AudioResampleNode,
    FormatConverterNode,
    PassThroughNode,
    Pipeline,
    VADNode,
    _native,
)

from conftest import music


@pytest.fixture
def crossings() -> Iterator[list[tuple[int, str]]]:
    native = _native
    log: list[tuple[int, str]] = []
    native._set_crossing_log(True)
    try:
        yield log
    finally:
        log.extend(native._take_crossing_log())
        native._set_crossing_log(False)


def take() -> list[tuple[int, str]]:
    return _native._take_crossing_log()


def test_pass_through_returns_memory_shared_with_the_input(crossings: list) -> None:
    for x in (music(48000, 1.0), music(48000, 0.5, channels=2), np.arange(100, dtype=np.int16)):
        out = Pipeline("pt").add_node(PassThroughNode()).run(x, sample_rate=48000)
        assert np.shares_memory(out, x)
        assert out.shape == x.shape
    log = take()
    assert ("borrowed" in {how for _, how in log}) and ("original" in {how for _, how in log})
    assert all(how in ("borrowed", "original") for _, how in log), log


def test_the_input_is_borrowed_not_copied(crossings: list) -> None:
    x = music(48000, 1.0)
    Pipeline("r").add_node(AudioResampleNode(16000)).run(x, sample_rate=48000)
    log = take()
    assert log[0] == (x.ctypes.data, "borrowed")


def test_native_outputs_reach_numpy_without_a_copy(crossings: list) -> None:
    x = music(48000, 1.0, channels=2)
    for node in (AudioResampleNode(16000), FormatConverterNode("i16"), VADNode(emit="speech")):
        out = Pipeline("o").add_node(node).run(x, sample_rate=48000)
        log = take()
        moved = [(ptr, how) for ptr, how in log if how == "moved"]
        assert moved, f"{type(node).__name__}: output was not handed over: {log}"
        # The numpy array's data is the Rust allocation itself.
        assert np.asarray(out).ctypes.data == moved[-1][0], type(node).__name__
        assert out.flags.writeable and out.flags.c_contiguous


def test_fan_out_of_one_buffer_is_shared_read_only_not_copied(crossings: list) -> None:
    src = FormatConverterNode("f64")
    p = (
        Pipeline("fan")
        .add_node(src)
        .add_node(PassThroughNode(), "a")
        .add_node(PassThroughNode(), "b")
    )
    p.connect(src, "a").connect(src, "b")
    out = p.run(music(16000, 0.1), sample_rate=16000)
    assert np.shares_memory(out["a"], out["b"])
    log = take()
    assert {how for _, how in log} <= {"borrowed", "moved", "shared_view"}
    assert not (out["a"].flags.writeable and out["b"].flags.writeable)


def test_standalone_node_call_on_a_pass_through_returns_the_same_memory() -> None:
    x = music(16000, 0.1)
    out = PassThroughNode().process(x, sample_rate=16000)
    assert np.shares_memory(out, x)
