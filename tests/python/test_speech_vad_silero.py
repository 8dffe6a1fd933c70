"""SpeechVADNode(engine="silero"): Silero VAD v6 run by the runtime in Rust with its bundled
weights, checked window by window against ONNX Runtime running the silero-vad package's own
model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from remotemedia import AudioResampleNode, ManifestError, Pipeline, SpeechVADNode
from remotemedia.nodes.speech import silero_model_path
from test_speech_vad import clip, same_events

from conftest import REPO

# The peer these tests compare with (Silero on ONNX Runtime, the package's own files) needs
# silero-vad and onnxruntime; scripts/test-all.sh installs both and sets this, so that a
# missing install fails the suite instead of skipping those tests. The engine needs neither.
REQUIRED = os.environ.get("REMOTEMEDIA_REQUIRE_SILERO") == "1"


def model() -> Path:
    """The installed silero-vad package's model file (the peer's; the engine's own weights are
    bundled)."""
    path = silero_model_path()
    if path is None:
        if REQUIRED:
            pytest.fail("silero-vad (>= 6) is not installed: pip install --no-deps silero-vad")
        pytest.skip("silero-vad is not installed (pip install --no-deps silero-vad)")
    return path


def onnx_runtime_probs(x16: np.ndarray) -> np.ndarray:
    """Silero's own model (``silero_vad.onnx``) on ONNX Runtime, 512-sample windows with the
    previous window's last 64 samples in front, the last window zero-padded."""
    try:
        import onnxruntime as ort
    except ImportError:
        if REQUIRED:
            pytest.fail("onnxruntime is not installed: pip install onnxruntime")
        pytest.skip("onnxruntime is not installed")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        str(model().parent / "silero_vad.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros(64, np.float32)
    probs = []
    for i in range(0, x16.size, 512):
        window = np.zeros(512, np.float32)
        window[: x16[i : i + 512].size] = x16[i : i + 512]
        inp = np.concatenate([context, window])[None, :]
        out, state = sess.run(None, {"input": inp, "state": state, "sr": np.array(16000, np.int64)})
        context = window[-64:]
        probs.append(float(out[0, 0]))
    return np.array(probs)


def clip16() -> np.ndarray:
    x, rate = clip()
    y = Pipeline("r").add_node(AudioResampleNode(16000)).run(x, sample_rate=rate)
    return np.asarray(y, dtype=np.float32)


def test_probabilities_are_silero_s_own_window_by_window() -> None:
    model()
    x = clip16()
    frames = SpeechVADNode(engine="silero", emit="probabilities")(x, sample_rate=16000)
    want = onnx_runtime_probs(x)
    got = np.array([f["probability"] for f in frames])
    assert got.shape == want.shape == (-(-x.size // 512),)
    # The same network and weights; only the order of the float sums differs.
    assert np.max(np.abs(got - want)) < 1e-4
    assert (frames[1]["start_ms"], frames[1]["end_ms"]) == (32.0, 64.0)
    assert frames[-1]["end_ms"] == x.size / 16
    # The clip is speech for a good part and silence for another.
    assert 0.2 < np.mean(want > 0.5) < 0.9


def test_segments_find_the_speech_and_streaming_equals_whole() -> None:
    model()
    x, rate = clip()
    whole = SpeechVADNode(engine="silero", emit="events")(x, sample_rate=rate)
    assert [e["event"] for e in whole[:2]] == ["speech_start", "speech_end"]
    # The clip has a second of near-silence on each side of the speech.
    assert all(900 <= e["start_ms"] for e in whole)
    assert all(e["end_ms"] <= x.size * 1000 / rate - 900 for e in whole if "end_ms" in e)
    node = SpeechVADNode(engine="silero", emit="events")
    streamed: list[dict[str, float]] = []
    for i in range(0, x.size, 960):  # 20 ms chunks
        streamed += node.process(x[i : i + 960], sample_rate=rate) or []
    streamed += node.flush() or []
    assert streamed == whole
    # Stereo and another rate: the same speech, within one 32 ms frame.
    segs = SpeechVADNode(engine="silero")(np.stack([x, x], axis=1), sample_rate=rate)
    segs16 = SpeechVADNode(engine="silero")(clip16(), sample_rate=16000)
    assert len(segs) == len(segs16)
    for a, b in zip(segs, segs16, strict=True):
        assert abs(a["start_ms"] - b["start_ms"]) <= 32 and abs(a["end_ms"] - b["end_ms"]) <= 32


def test_bad_input_gives_defined_results() -> None:
    model()
    node = SpeechVADNode(engine="silero", emit="probabilities")
    for x in (
        np.zeros(16000, np.float32),
        np.full(16000, np.nan, np.float32),
        np.full(16000, 1e30, np.float32),
    ):
        probs = [f["probability"] for f in node(x, sample_rate=16000)]
        assert len(probs) == 32 and all(0.0 <= p <= 1.0 for p in probs)
    assert SpeechVADNode(engine="silero")(np.zeros(16000, np.float32), sample_rate=16000) == []
    assert SpeechVADNode(engine="silero")(np.array([0.2], np.float32), sample_rate=8000) == []


@pytest.fixture
def no_default_model() -> Iterator[None]:
    """The runtime without the environment variable (its bundled weights)."""
    saved = os.environ.pop("REMOTEMEDIA_SILERO_MODEL", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["REMOTEMEDIA_SILERO_MODEL"] = saved


@pytest.mark.usefixtures("no_default_model")
def test_the_bundled_weights_run_with_nothing_installed_and_are_the_package_s() -> None:
    # In a process where silero-vad cannot be imported at all: the engine still runs.
    code = (
        "import sys, numpy as np\n"
        "sys.modules['silero_vad'] = None\n"
        "from remotemedia import SpeechVADNode\n"
        "x = np.zeros(16000, np.float32)\n"
        "print(len(SpeechVADNode(engine='silero', emit='probabilities')(x, sample_rate=16000)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "REMOTEMEDIA_SILERO_MODEL"}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert (r.returncode, r.stdout.strip()) == (0, "32"), r.stderr
    # The bundled tensors are the package file's: the same probabilities, bit for bit.
    x = clip16()[:48000]
    bundled = SpeechVADNode(engine="silero", emit="probabilities")(x, sample_rate=16000)
    package = SpeechVADNode(engine="silero", model_path=model(), emit="probabilities")(
        x, sample_rate=16000
    )
    assert bundled == package and len(bundled) == 94
    # Their licence ships with the Python package.
    import remotemedia

    licences = Path(remotemedia.__file__).parent / "licenses"
    assert "Silero Team" in (licences / "silero-vad-LICENSE").read_text()


@pytest.mark.usefixtures("no_default_model")
def test_a_model_path_that_is_not_the_model_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"model_path: cannot read the Silero model .*nope"):
        SpeechVADNode(engine="silero", model_path=tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(ManifestError, match=r"model_path: .*bad\.onnx is not the Silero VAD"):
        SpeechVADNode(engine="silero", model_path=str(bad))


@pytest.mark.usefixtures("no_default_model")
def test_a_bad_file_from_the_environment_variable_is_named_as_such(tmp_path: Path) -> None:
    os.environ["REMOTEMEDIA_SILERO_MODEL"] = str(tmp_path / "gone.onnx")
    try:
        with pytest.raises(
            ManifestError,
            match=r"engine: cannot read the Silero model .*gone\.onnx: .* \(the file named by "
            r"the REMOTEMEDIA_SILERO_MODEL environment variable\)",
        ):
            SpeechVADNode(engine="silero")
    finally:
        del os.environ["REMOTEMEDIA_SILERO_MODEL"]


@pytest.mark.usefixtures("no_default_model")
def test_an_explicit_model_path_and_the_environment_variable_work() -> None:
    path = model()
    x = clip16()[:16000]
    want = SpeechVADNode(engine="silero", model_path=path, emit="probabilities")(
        x, sample_rate=16000
    )
    os.environ["REMOTEMEDIA_SILERO_MODEL"] = str(path)
    try:
        got = SpeechVADNode(engine="silero", emit="probabilities")(x, sample_rate=16000)
    finally:
        del os.environ["REMOTEMEDIA_SILERO_MODEL"]
    assert got == want and len(got) == 32


def test_gate_params_and_a_stray_model_path_are_refused() -> None:
    with pytest.raises(ManifestError, match=r"min_snr_db: applies to engine=\"earshot\" only"):
        SpeechVADNode(engine="silero", min_snr_db=6.0)
    with pytest.raises(ManifestError, match=r"min_voicing: applies to engine=\"earshot\" only"):
        SpeechVADNode(engine="silero", min_voicing=None)
    with pytest.raises(ManifestError, match=r"max_gain_db: applies to engine=\"earshot\" only"):
        SpeechVADNode(engine="silero", max_gain_db=0.0)
    with pytest.raises(ManifestError, match=r"model_path: .* is only read by engine=\"silero\""):
        SpeechVADNode(engine="earshot", model_path="/x/silero_vad_op18_ifless.onnx")
    with pytest.raises(ManifestError, match="unknown variant `onnx`"):
        SpeechVADNode(engine="onnx")  # type: ignore[arg-type]


def test_cli_and_server_run_the_silero_engine(tmp_path: Path) -> None:
    from test_server import Server

    model()
    manifest = {
        "version": "v1",
        "nodes": [{"id": "vad", "node_type": "SpeechVADNode", "params": {"engine": "silero"}}],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    out = tmp_path / "segs.json"
    exe = shutil.which("remotemedia")
    assert exe, "the remotemedia command is not on PATH"
    wav = str(REPO / "examples" / "speech_48k.wav")
    r = subprocess.run(
        [exe, "run", str(path), "-i", wav, "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    local = Pipeline.from_manifest(manifest).run(wav)
    assert local and json.loads(out.read_text()) == local
    s = Server(tmp_path)
    try:
        assert same_events(Pipeline.from_manifest(manifest).run(wav, remote=s.address), local)
    finally:
        s.stop()
