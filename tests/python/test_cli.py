"""The `remotemedia` command installed with the package: same commands as the Rust CLI, plus
manifests with Python nodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

from conftest import REPO

HERE = Path(__file__).parent


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("remotemedia")
    assert exe, "the remotemedia command is not on PATH"
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    return subprocess.run(
        [exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_command_is_installed_and_runs_the_bundled_example(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = cli(
        "run",
        "examples/speech_and_segments.json",
        "--input",
        "examples/speech_48k.wav",
        "--output",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    segments = json.loads((out / "segments.json").read_text())
    assert len(segments) >= 2
    with wave.open(str(out / "speech_i16.wav")) as w:
        assert (w.getframerate(), w.getsampwidth()) == (16000, 2)


def test_manifests_with_python_nodes_run(tmp_path: Path) -> None:
    manifest = {
        "version": "v1",
        "metadata": {"name": "py-nodes"},
        "nodes": [
            {"id": "resample", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}},
            {"id": "gain", "node_type": "cli_nodes:Gain", "params": {"factor": 0.5}},
            {"id": "mix", "node_type": "cli_nodes:Mix", "params": {"base": 2.0, "*gains": [1.0]}},
            {"id": "stats", "node_type": "cli_nodes:Stats"},
        ],
        "connections": [
            {"from": "resample", "to": "gain"},
            {"from": "gain", "to": "mix"},
            {"from": "mix", "to": "stats"},
        ],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    metrics = tmp_path / "metrics.json"
    r = cli(
        "run",
        str(path),
        "-i",
        "examples/speech_48k.wav",
        "-o",
        str(tmp_path / "stats.json"),
        "--metrics",
        str(metrics),
    )
    assert r.returncode == 0, r.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    with wave.open(str(REPO / "examples/speech_48k.wav")) as w:
        frames = w.getnframes()
    assert stats == {"frames": -(-frames // 3), "sample_rate": 16000}
    runtimes = {n["node_id"]: n["runtime"] for n in json.loads(metrics.read_text())["nodes"]}
    assert runtimes == {"resample": "rust", "gain": "python", "mix": "python", "stats": "python"}


def test_python_node_errors_and_bad_imports_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps({"version": "v1", "nodes": [{"id": "x", "node_type": "no_such_mod:Thing"}]})
    )
    r = cli("validate", str(path))
    assert r.returncode == 1
    assert "node 'x': cannot find node type 'no_such_mod:Thing': no module named" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("validate", "--import", str(path))
    assert r.returncode == 1
    assert "node 'x': cannot import node type 'no_such_mod:Thing'" in r.stderr
    assert "Traceback" not in r.stderr


def test_validate_runs_no_module_code_unless_asked(tmp_path: Path) -> None:
    # Importing a module runs its top-level code; validate finds the module and reads its
    # source instead (issue 34).
    marker = tmp_path / "imported"
    (tmp_path / "canary_nodes.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "import remotemedia\n\n"
        "class Loud(remotemedia.Node):\n"
        "    def process(self, audio):\n"
        "        return audio\n\n"
        "def helper():\n"
        "    pass\n"
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "pkg/sub.py").write_text("from canary_nodes import Loud as Renamed\n")

    def manifest(node_type: str) -> Path:
        path = tmp_path / "m.json"
        path.write_text(
            json.dumps({"version": "v1", "nodes": [{"id": "n", "node_type": node_type}]})
        )
        return path

    env_cwd = tmp_path  # the command puts the current directory on sys.path
    for good in ("canary_nodes:Loud", "pkg.sub:Renamed"):
        r = cli("validate", str(manifest(good)), cwd=env_cwd)
        assert r.returncode == 0, r.stderr
        assert ": ok (" in r.stdout
        assert not marker.exists(), f"validate ran module code for {good}"
    for bad, says in [
        ("canary_nodes:Quiet", "defines no top-level 'Quiet'"),
        ("canary_nodes:helper", "is a function"),
        ("pkg.nosuch:X", "no module named 'pkg.nosuch'"),
    ]:
        r = cli("validate", str(manifest(bad)), cwd=env_cwd)
        assert r.returncode == 1 and says in r.stderr, r.stderr
        assert not marker.exists()
    # Asked to, it imports (and checks the class is a node).
    r = cli("validate", "--import", str(manifest("canary_nodes:Loud")), cwd=env_cwd)
    assert r.returncode == 0, r.stderr
    assert marker.exists()


def test_the_cli_never_prints_control_characters_from_a_manifest(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    name = "a\x1b[31mRED\nerror: forged\x00" + "x" * 100_000
    path.write_text(
        json.dumps(
            {
                "version": "v1",
                "metadata": {"name": name},
                "nodes": [{"id": "n", "node_type": "PassThroughNode"}],
                "connections": [{"from": "n", "to": "\x1b]0;title\x07" + "y" * 100_000}],
            }
        )
    )
    r = cli("validate", str(path))
    assert r.returncode == 1
    for stream in (r.stdout, r.stderr):
        assert "\x1b" not in stream and "\x00" not in stream and "\x07" not in stream
        assert "\nerror: forged" not in stream
        assert len(stream) < 2000, len(stream)
    assert "no node has id '\\u{1b}]0;title\\u{7}yyy" in r.stderr
    path.write_text(
        json.dumps(
            {
                "version": "v1",
                "metadata": {"name": name},
                "nodes": [{"id": "n", "node_type": "PassThroughNode"}],
            }
        )
    )
    r = cli("validate", str(path))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "forged" in r.stdout and len(r.stdout) < 500
    assert "'a\\u{1b}[31mRED\\nerror: forged\\0" in r.stdout


def test_same_subcommands_as_the_rust_cli() -> None:
    r = cli("nodes")
    assert r.returncode == 0 and "AudioResampleNode" in r.stdout
    r = cli("schema")
    assert r.stdout == (REPO / "schema/manifest.v1.schema.json").read_text()
    r = cli("--version")
    assert r.returncode == 0 and "remotemedia" in r.stdout
    r = cli("run")
    assert r.returncode == 2


def test_python_m_remotemedia_is_the_command() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "remotemedia", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "Usage: remotemedia " in r.stdout


def test_python_m_entry_point() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "remotemedia.cli", "nodes", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # 5 audio nodes + SpeechVADNode + 8 DSP nodes + 3 voice front-end nodes + RemotePipelineNode
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 18


def test_validate_and_run_never_call_what_a_manifest_names(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.json"
    path.write_text(
        json.dumps(
            {
                "version": "v1",
                "nodes": [
                    {"id": "x", "node_type": "os:system", "params": {"command": f"touch {marker}"}}
                ],
            }
        )
    )
    r = cli("validate", str(path))
    assert r.returncode == 1
    assert "'os:system' is not a remotemedia.Node subclass" in r.stderr
    r = cli("validate", "--import", str(path))
    assert r.returncode == 1
    assert "'os:system' is not a remotemedia.Node subclass" in r.stderr
    r = cli(
        "run",
        str(path),
        "-i",
        str(REPO / "examples/speech_48k.wav"),
        "-o",
        str(tmp_path / "o.json"),
    )
    assert r.returncode == 1
    assert not marker.exists()


def test_one_line_pipeline_with_a_user_node_from_the_current_directory(tmp_path: Path) -> None:
    # A node in ./mynodes.py, named from a one-line pipeline run in that directory, with no
    # PYTHONPATH: the command puts the current directory on sys.path.
    (tmp_path / "mynodes.py").write_text(
        "import numpy as np\nimport remotemedia\n\n"
        "class Half(remotemedia.Node):\n"
        "    def process(self, audio):\n"
        "        return audio * np.float32(0.5)\n"
    )
    exe = shutil.which("remotemedia")
    assert exe
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = tmp_path / "out.wav"
    desc = "FormatConverterNode target_format=f32 ! mynodes:Half ! FormatConverterNode target_format=i16"
    r = subprocess.run(
        [exe, "run", desc, "-i", str(REPO / "examples/speech_48k.wav"), "-o", str(out), "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    with wave.open(str(REPO / "examples/speech_48k.wav")) as w_in, wave.open(str(out)) as w_out:
        assert w_out.getnframes() == w_in.getnframes()
        assert w_out.getsampwidth() == 2
        import numpy as np

        a = np.frombuffer(w_in.readframes(w_in.getnframes()), "<i2").astype(np.int32)
        b = np.frombuffer(w_out.readframes(w_out.getnframes()), "<i2").astype(np.int32)
    # Halved (the i16 -> f32 -> i16 round trip rounds to within one step).
    assert np.abs(b - a / 2).max() <= 1.0
    # Elsewhere the module is not found, and the error says where Python looked.
    other = tmp_path / "elsewhere"
    other.mkdir()
    r = subprocess.run(
        [exe, "run", desc, "-i", str(REPO / "examples/speech_48k.wav"), "-o", str(out)],
        cwd=other,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert "No module named 'mynodes'" in r.stderr
    assert "current directory and on PYTHONPATH" in r.stderr


def test_graph_command_writes_svg_and_explains_png_without_graphviz(tmp_path: Path) -> None:
    svg = tmp_path / "p.svg"
    r = cli("graph", "examples/speech_and_segments.json", "-o", str(svg))
    assert r.returncode == 0, r.stderr
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg.read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    if shutil.which("dot") is None:
        r = cli("graph", "examples/speech_and_segments.json", "-o", str(tmp_path / "p.png"))
        assert r.returncode == 1
        assert "needs Graphviz's `dot`" in r.stderr and "-o pipeline.svg" in r.stderr


def test_one_node_with_its_defaults_is_a_pipeline_description(tmp_path: Path) -> None:
    # "SpeechVADNode" alone was read as a file name ("no such file").
    out = tmp_path / "segs.json"
    r = cli("run", "SpeechVADNode", "-i", "examples/speech_48k.wav", "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    from remotemedia import Pipeline, SpeechVADNode

    want = Pipeline("p").add_node(SpeechVADNode()).run(str(REPO / "examples/speech_48k.wav"))
    assert want and json.loads(out.read_text()) == want
    # A name that is not a node type, nor a file, says both.
    r = cli("run", "SpeechVadNode", "-i", "examples/speech_48k.wav", "-o", str(out))
    assert r.returncode != 0
    assert "cannot read SpeechVadNode: no such file; as a pipeline description: " in r.stderr
    assert "did you mean 'SpeechVADNode'?" in r.stderr, r.stderr
    r = cli("run", "nosuchfile", "-i", "examples/speech_48k.wav", "-o", str(out))
    assert "cannot read nosuchfile: no such file" in r.stderr, r.stderr


def test_a_node_s_error_is_printed_once(tmp_path: Path) -> None:
    # anyhow's "{:#}" printed the node's message twice: once quoted by the executor's
    # "node 'rs' ... failed: <message>", once more as that error's source.
    m = tmp_path / "m.json"
    m.write_text(
        json.dumps(
            {
                "version": "v1",
                "nodes": [
                    {"id": "vad", "node_type": "SpeechVADNode", "params": {}},
                    {"id": "rs", "node_type": "AudioResampleNode", "params": {"target_rate": 8000}},
                ],
                "connections": [{"from": "vad", "to": "rs"}],
            }
        )
    )
    r = cli("run", str(m), "-i", "examples/speech_48k.wav", "-o", str(tmp_path / "o.wav"))
    assert r.returncode != 0
    assert "node 'rs' (AudioResampleNode) failed: expected audio" in r.stderr
    assert r.stderr.count("expected audio") == 1, r.stderr


def test_ctrl_c_stops_a_run_with_a_python_node_without_a_traceback(tmp_path: Path) -> None:
    # A Python node that takes 20 ms a chunk: the example is 6.4 s of work in 20 ms chunks;
    # Ctrl-C after 1.5 s stops it within a chunk, leaves no output, exits 130, no traceback.
    import signal
    import time

    (tmp_path / "slow_nodes.py").write_text(
        "import time\n"
        "import remotemedia as rm\n\n"
        "class Slow(rm.Node):\n"
        "    def process(self, data):\n"
        "        time.sleep(0.02)\n"
        "        return data\n"
    )
    manifest = tmp_path / "m.json"
    manifest.write_text(
        '{"version": "v1", "nodes": [{"id": "slow", "node_type": "slow_nodes:Slow"}]}'
    )
    exe = shutil.which("remotemedia")
    assert exe
    out = tmp_path / "out.wav"
    wav = str(REPO / "examples/speech_48k.wav")
    p = subprocess.Popen(
        [exe, "run", str(manifest), "-i", wav, "-o", str(out), "--chunk-ms", "20", "--quiet"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert p.returncode == 130, err
    assert err.startswith("interrupted by Ctrl-C (SIGINT)") and "Traceback" not in err, err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.json", "slow_nodes.py"]
