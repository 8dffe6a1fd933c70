"""SpeechVADNode(engine="silero"): Silero VAD v6 run by the runtime in Rust with the weights of
the installed silero-vad package, checked window by window against ONNX Runtime running the
package's own model."""

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

from remotemedia import AudioResampleNode, ManifestError, Pipeline, SpeechVADNode, _native
from remotemedia.nodes.speech import silero_install_problem, silero_model_path
from test_speech_vad import clip, same_events

from conftest import REPO

# scripts/test-all.sh installs silero-vad and onnxruntime and sets this, so that a missing
# install fails the suite instead of skipping these tests.
REQUIRED = os.environ.get("REMOTEMEDIA_REQUIRE_SILERO") == "1"


def model() -> Path:
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
    """The runtime as it is without the silero-vad package (and without the variable)."""
    saved = os.environ.pop("REMOTEMEDIA_SILERO_MODEL", None)
    _native._set_silero_model(None)
    try:
        yield
    finally:
        _native._set_silero_model(silero_model_path())
        if saved is not None:
            os.environ["REMOTEMEDIA_SILERO_MODEL"] = saved


@pytest.mark.usefixtures("no_default_model")
def test_without_the_model_the_error_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(
        ManifestError,
        match=r"engine: \"silero\" needs the Silero VAD model, which is not bundled: install "
        r"it with `pip install --no-deps silero-vad`.*model_path or the "
        r"REMOTEMEDIA_SILERO_MODEL environment variable",
    ):
        SpeechVADNode(engine="silero")
    with pytest.raises(ManifestError, match=r"model_path: cannot read the Silero model .*nope"):
        SpeechVADNode(engine="silero", model_path=tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(ManifestError, match=r"model_path: .*bad\.onnx is not the Silero VAD"):
        SpeechVADNode(engine="silero", model_path=str(bad))
    # The built-in engine needs nothing.
    assert SpeechVADNode()(np.zeros(1600, np.float32), sample_rate=16000) == []


def test_an_installed_silero_vad_before_6_is_named_with_the_upgrade_command(
    tmp_path: Path,
) -> None:
    # silero-vad 5.x, as `pip install --no-deps silero-vad==5.1.2` lays it out: a package whose
    # data folder has silero_vad.onnx (weights inside If branches) but not the file we read.
    pkg = tmp_path / "silero_vad"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "silero_vad.onnx").write_bytes(b"")
    dist = tmp_path / "silero_vad-5.1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: silero-vad\nVersion: 5.1.2\n")
    env = {k: v for k, v in os.environ.items() if k != "REMOTEMEDIA_SILERO_MODEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    code = (
        "from remotemedia import ManifestError, SpeechVADNode\n"
        "from remotemedia.nodes.speech import silero_install_problem, silero_model_path\n"
        "assert silero_model_path() is None\n"
        "print(silero_install_problem())\n"
        "try:\n"
        "    SpeechVADNode(engine='silero')\n"
        "except ManifestError as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 0, r.stderr
    problem, error = r.stdout.splitlines()
    assert problem == (
        "the installed silero-vad 5.1.2 has no silero_vad_op18_ifless.onnx (it came with "
        "version 6): upgrade it with `pip install --no-deps --upgrade 'silero-vad>=6'`"
    )
    assert 'engine: "silero" needs the Silero VAD model, and ' + problem in error
    assert "or set model_path or the REMOTEMEDIA_SILERO_MODEL environment variable" in error
    # A later version without the file is not told to upgrade.
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: silero-vad\nVersion: 7.0\n")
    dist.rename(tmp_path / "silero_vad-7.0.dist-info")
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == (
        "the installed silero-vad 7.0 has no data/silero_vad_op18_ifless.onnx (this engine "
        "reads that file of version 6); point model_path at a copy of it"
    )
    # With the right version installed there is no problem to report.
    if silero_model_path() is not None:
        assert silero_install_problem() is None


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
        SpeechVADNode(model_path="/x/silero_vad_op18_ifless.onnx")
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
