"""Rough edges a new user hits (issue 12): arrays the library's own hints produce, dtype
spellings, float sample rates, live Python objects as node arguments, files as floats, and the
async session lifecycle."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import remotemedia
from remotemedia import AudioResampleNode, FormatConverterNode, ManifestError, Node, Pipeline

from conftest import REPO, music


def test_standalone_nodes_take_transposed_sliced_and_fortran_arrays() -> None:
    x = music(48000, 0.2, channels=2)  # (frames, 2)
    node = AudioResampleNode(16000)
    want = node(x, sample_rate=48000)
    # The hint for (channels, frames) input is `audio.T`: that must work.
    np.testing.assert_array_equal(node(x.T.copy().T, sample_rate=48000), want)
    np.testing.assert_array_equal(node(np.asfortranarray(x), sample_rate=48000), want)
    mono = node(x[:, 0], sample_rate=48000)
    np.testing.assert_array_equal(mono, node(np.ascontiguousarray(x[:, 0]), sample_rate=48000))


def test_node_calls_take_inputs_as_pipeline_run_does() -> None:
    # A node call converts the common input (a borrowable array, its rate given once) in the
    # runtime and sends everything else through the same preparation as Pipeline.run: the
    # results and the refusals must be the same either way.
    x = music(48000, 0.1)
    node = AudioResampleNode(16000)
    want = node(x, sample_rate=48000)
    run = Pipeline("r").add_node(AudioResampleNode(16000))
    np.testing.assert_array_equal(run.run(x, sample_rate=48000), want)
    for rate in (48000, 48000.0, np.int64(48000), np.float32(48000)):
        np.testing.assert_array_equal(node(x, sample_rate=rate), want)  # type: ignore[arg-type]
    np.testing.assert_array_equal(node(remotemedia.Audio(x, 48000)), want)
    np.testing.assert_array_equal(node(remotemedia.Audio(x, 48000), sample_rate=48000), want)
    path = REPO / "examples/speech_48k.wav"
    np.testing.assert_array_equal(
        AudioResampleNode(16000)(str(path)),
        Pipeline("f").add_node(AudioResampleNode(16000)).run(path),
    )
    for bad, error, message in [
        (True, TypeError, "sample_rate must be an integer in Hz, got True"),
        (48000.5, TypeError, "sample_rate must be an integer in Hz"),
        (0, ValueError, "sample_rate must be in 8000..=384000 Hz, got 0"),
        (2**40, ValueError, "sample_rate must be in 8000..=384000 Hz"),
    ]:
        with pytest.raises(error, match=message):
            node(x, sample_rate=bad)  # type: ignore[arg-type]
        with pytest.raises(error, match=message):
            run.run(x, sample_rate=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the Audio is 48000 Hz but sample_rate=44100 was given"):
        node(remotemedia.Audio(x, 48000), sample_rate=44100)
    with pytest.raises(ValueError, match=r"pass sample_rate=\.\.\. with a numpy array"):
        node(x)
    for dtype in (np.uint8, np.dtype(">f4")):
        with pytest.raises(TypeError, match=r"audio dtype .* is not supported"):
            node(np.zeros(100, dtype=dtype), sample_rate=48000)
        with pytest.raises(TypeError, match=r"audio dtype .* is not supported"):
            run.run(np.zeros(100, dtype=dtype), sample_rate=48000)


@pytest.mark.parametrize("spelling", ["float32", np.float32, np.dtype("float32"), "f32"])
def test_format_names_accept_numpy_spellings(spelling: Any) -> None:
    node = FormatConverterNode(spelling)
    assert node.params["target_format"] == "f32"
    out = node(np.array([16384, -32768], dtype=np.int16), sample_rate=16000)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0.5, -1.0])
    with pytest.raises(ManifestError, match="target_format"):
        FormatConverterNode("uint8")  # type: ignore[arg-type]


def test_integral_float_sample_rates_are_accepted() -> None:
    x = music(44100, 0.1)
    p = Pipeline("f").add_node(AudioResampleNode(16000))
    assert p.run(x, sample_rate=44100.0).sample_rate == 16000  # type: ignore[arg-type]
    assert remotemedia.Audio(x, 44100.0).sample_rate == 44100  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sample_rate"):
        p.run(x, sample_rate=44100.5)  # type: ignore[arg-type]


class Model:
    """Something that is not JSON, like a loaded model."""

    def __init__(self, factor: float) -> None:
        self.factor = factor


class Apply(Node):
    def __init__(self, model: Model) -> None:
        self.model = model

    def process(self, audio: remotemedia.Audio) -> np.ndarray:
        return audio * np.float32(self.model.factor)


def test_local_runs_take_any_python_object_as_an_argument() -> None:
    p = Pipeline("m").add_node(Apply(Model(0.5)))
    x = music(16000, 0.1)
    np.testing.assert_allclose(p.run(x, sample_rate=16000), x * 0.5)
    # Only a manifest needs JSON, and the error says which argument and why.
    with pytest.raises(
        ManifestError, match=r"argument 'model' \(Model\) cannot go into a manifest"
    ):
        p.serialize()


def test_files_read_as_their_own_format_or_as_asked() -> None:
    path = REPO / "examples/speech_48k.wav"
    p = Pipeline("pass").add_node(remotemedia.PassThroughNode())
    raw = p.run(path)
    assert raw.dtype == np.int16
    as_float = p.run(path, dtype="float32")
    assert as_float.dtype == np.float32
    np.testing.assert_allclose(as_float, raw / 32768.0, atol=1e-7)


def test_aclose_flushes_and_abort_discards() -> None:
    p = Pipeline("v").add_node(remotemedia.VADNode(emit="events", hangover_ms=0))
    tone = music(16000, 0.5)

    async def main(abort: bool) -> list[str]:
        session = p.astream(sample_rate=16000)
        await session.send(tone)
        if abort:
            await session.abort()
        else:
            await session.aclose()
        return [e["event"] for out in session.poll() for e in out.data]

    assert asyncio.run(main(abort=False)) == ["speech_start", "speech_end"]
    assert "speech_end" not in asyncio.run(main(abort=True))


class Halve(Node):
    def __init__(self) -> None:
        self.writeable: list[bool] = []

    def process(self, audio: remotemedia.Audio) -> np.ndarray:
        self.writeable.append(bool(audio.flags.writeable))
        return audio * np.float32(0.5)  # out of place, as documented


def test_python_node_inputs_are_read_only_as_documented() -> None:
    halve = Halve()
    p = Pipeline("h").add_node(FormatConverterNode("f32")).add_node(halve)
    x = (music(16000, 0.1) * 32767).astype(np.int16)
    out = p.run(x, sample_rate=16000)
    assert halve.writeable == [False]
    np.testing.assert_allclose(out, x.astype(np.float32) / 32768.0 * 0.5, rtol=1e-6)


def test_labels_survive_the_manifest_round_trip() -> None:
    p = Pipeline("l", labels={"team": "voice"}).add_node(AudioResampleNode(16000))
    q = Pipeline.from_manifest(p.serialize())
    assert q.labels == {"team": "voice"}
    assert q.to_manifest()["metadata"]["labels"] == {"team": "voice"}


def test_arun_takes_the_same_arguments_as_run() -> None:
    p = Pipeline("a").add_node(remotemedia.PassThroughNode())
    out = asyncio.run(p.arun(REPO / "examples/speech_48k.wav", dtype="float32"))
    assert out.dtype == np.float32


class Nothing(Node):
    def process(self, audio: remotemedia.Audio) -> None:
        return None


def test_a_run_with_no_output_says_so() -> None:
    p = Pipeline("quiet").add_node(Nothing())
    with pytest.warns(RuntimeWarning, match="produced no output: sink\\(s\\) nothing"):
        assert p.run(music(16000, 0.1), sample_rate=16000) == {}


def test_a_built_in_node_s_parameters_cannot_be_changed_after_it_is_built() -> None:
    # Setting one was silently ignored: the node, its pipelines and manifests kept the values
    # checked at construction. It is refused, naming the way to get the change.
    import copy
    import pickle

    from remotemedia import SpeechVADNode

    node = SpeechVADNode()
    with pytest.raises(
        AttributeError,
        match=r"SpeechVADNode\.threshold cannot be changed after the node is built .* "
        r"SpeechVADNode\(\*\*\{\*\*node\.params, 'threshold': 0\.95\}\)",
    ):
        node.threshold = 0.95
    with pytest.raises(AttributeError, match=r"AudioResampleNode\.target_rate cannot be del"):
        del AudioResampleNode(16000).target_rate
    assert node.threshold == 0.5 and node.params["threshold"] == 0.5
    # The way the message gives works, and the rest of the node is as before.
    changed = SpeechVADNode(**{**node.params, "threshold": 0.95})
    assert changed.params == {**node.params, "threshold": 0.95}
    node.node_id = "vad"  # not a parameter
    assert Pipeline("p").add_node(node).to_manifest()["nodes"][0]["id"] == "vad"
    # A parameter the manifest leaves out when unset is a parameter all the same, and a long
    # value is shortened in the message.
    from remotemedia.nodes import RemotePipelineNode

    remote = RemotePipelineNode("127.0.0.1:1", {"version": "v1", "nodes": []})
    with pytest.raises(AttributeError, match=r"RemotePipelineNode\.token_env cannot be changed"):
        remote.token_env = "TOKEN"
    with pytest.raises(AttributeError, match=r"'manifest': \{'nodes': \[\], 'version': 'v1'\}"):
        remote.manifest = {"version": "v1", "nodes": []}
    with pytest.raises(AttributeError, match=r"\.\.\.\]\}\)$"):
        node.threshold = list(range(1000))
    # Copies and pickles (Ray ships nodes so) keep the values and the refusal.
    for twin in (copy.deepcopy(changed), pickle.loads(pickle.dumps(changed))):
        assert twin.threshold == 0.95
        with pytest.raises(AttributeError):
            twin.threshold = 0.5


def test_a_list_where_audio_was_meant_gets_a_hint() -> None:
    from remotemedia import NodeError, SpeechVADNode

    with pytest.raises(
        NodeError,
        match=r"\(SpeechVADNode\) failed: expected audio, got object of type list; give audio as "
        r"a numpy "
        r"array \(frames, or frames x channels\) with its sample rate, or an Audio",
    ):
        Pipeline("p").add_node(SpeechVADNode()).run([0.0] * 1600, sample_rate=16000)


def test_serializing_a_class_from_main_warns_that_no_other_process_can_load_it(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text(
        "import numpy as np, remotemedia as rm\n"
        "class Gain(rm.Node):\n"
        "    def process(self, a):\n"
        "        return a\n"
        "p = rm.Pipeline('x').add_node(Gain())\n"
        "p.run(np.zeros(8, np.float32), sample_rate=8000)  # local: fine, no warning\n"
        "print('run ok', flush=True)\n"
        "p.serialize()\n"
    )
    o = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert o.stdout == "run ok\n"
    assert o.stderr.count("UserWarning") == 1, o.stderr
    assert "defined in the script being run (__main__)" in o.stderr
    assert "'__main__:Gain', which no other process" in o.stderr
    assert "job.py:8" in o.stderr  # points at the serialize() call


class _Tensor:
    """A stand-in for a torch/jax tensor on the CPU: DLPack and ``__array__``, not an ndarray."""

    def __init__(self, a: np.ndarray, dlpack: bool = True) -> None:
        self._a = a
        if not dlpack:
            self.__dlpack__ = None  # type: ignore[assignment]

    def __dlpack__(self, **kw: Any) -> Any:
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self) -> Any:
        return self._a.__dlpack_device__()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._a


class _ArrayOnly:
    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._a


def test_tensors_and_typed_memoryviews_are_audio_when_a_rate_is_given() -> None:
    x = music(16000, 0.1, channels=2)
    want = AudioResampleNode(8000)(x, sample_rate=16000)
    for obj in (_Tensor(x), _ArrayOnly(x), memoryview(x)):
        got = AudioResampleNode(8000)(obj, sample_rate=16000)
        np.testing.assert_array_equal(got, want, err_msg=type(obj).__name__)
        p = Pipeline("t").add_node(AudioResampleNode(8000))
        np.testing.assert_array_equal(p.run(obj, sample_rate=16000), want)
    # DLPack shares the tensor's memory: a pass-through hands back the same samples.
    out = remotemedia.PassThroughNode()(_Tensor(x), sample_rate=16000)
    assert np.shares_memory(out, x)
    # Raw bytes have no sample format: the error says how to give them.
    for raw in (x.tobytes(), bytearray(x.tobytes()), memoryview(x.tobytes())):
        with pytest.raises(
            TypeError, match=r"raw bytes have no sample format; give np\.frombuffer"
        ):
            AudioResampleNode(8000)(raw, sample_rate=16000)


def test_progress_reports_a_long_run_with_the_same_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = music(48000, 3.0, channels=2)
    path = tmp_path / "long.flac"
    remotemedia.write(path, remotemedia.Audio((x * 32767).astype(np.int16), 48000))
    for node in (AudioResampleNode(16000), remotemedia.SpeechVADNode(emit="speech")):
        p = Pipeline("p").add_node(node)
        whole = p.run(path)
        seen: list[tuple[float, float | None]] = []
        got = p.run(path, progress=lambda done, total, seen=seen: seen.append((done, total)))
        np.testing.assert_array_equal(got, whole)
        assert getattr(got, "origin", None) == getattr(whole, "origin", None)
        assert [d for d, _ in seen] == [0.5 * (k + 1) for k in range(6)]
        assert all(t == 3.0 for _, t in seen)
    # True: lines on stderr (not a terminal here: one per tenth).
    p = Pipeline("job").add_node(AudioResampleNode(16000))
    np.testing.assert_array_equal(p.run(path, progress=True), p.run(path))
    err = capsys.readouterr().err
    assert "job: 3.0 / 3.0 s (100%)" in err
    # Several sinks, dtype, and file-like inputs work as in run().
    q = Pipeline("two").add_node(FormatConverterNode("f32"))
    assert q.run(path.read_bytes(), progress=True, dtype="float32").dtype == np.float32
    with pytest.raises(ValueError, match="progress= is for local runs"):
        p.run(path, progress=True, remote="127.0.0.1:1")
    with pytest.raises(TypeError, match="progress= reads a file block by block"):
        p.run(x, progress=True)
