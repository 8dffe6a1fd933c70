"""Pictures: a pipeline draws itself (Mermaid, DOT, SVG, Jupyter) and Audio shows a player."""

from __future__ import annotations

import base64
import io
import re
import wave
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import remotemedia as rm

SVG = "{http://www.w3.org/2000/svg}"


class Scale(rm.Node):
    """Multiplies by a factor."""

    def __init__(self, model: object = None, factor: float = 0.5) -> None:
        self.model = model
        self.factor = factor

    def process(self, audio: rm.Audio) -> rm.Audio:
        return audio * np.float32(self.factor)


def pipeline() -> rm.Pipeline:
    p = rm.Pipeline("demo")
    p.add_node(rm.FormatConverterNode("f32"), node_id="to_f32")
    p.add_node(rm.AudioResampleNode(target_rate=16000), node_id="resample")
    p.add_node(Scale(model=object()), node_id="scale")  # a live object as an argument
    p.add_node(rm.VADNode(threshold=-35.0), node_id="vad")
    p.connect("to_f32", "resample").connect("resample", "scale").connect("to_f32", "vad")
    return p


def nodes_of(svg_text: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg_text)
    assert root.tag == f"{SVG}svg"
    return {g.attrib["data-id"]: g for g in root.iter(f"{SVG}g") if "data-id" in g.attrib}


def test_svg_parses_and_shows_every_node_edge_and_sink() -> None:
    p = pipeline()
    svg = p.to_svg()
    nodes = nodes_of(svg)
    assert set(nodes) == {"to_f32", "resample", "scale", "vad"}
    assert nodes["scale"].attrib["data-runtime"] == "python"
    assert nodes["resample"].attrib["data-runtime"] == "rust"
    texts = {g: [t.text for t in el.iter(f"{SVG}text")] for g, el in nodes.items()}
    assert texts["resample"][:3] == [
        "resample",
        "AudioResampleNode",
        "target_rate=16000, quality=high",
    ]
    # Sinks: scale (end of the chain) and vad (the branch).
    sinks = {i for i, el in nodes.items() if "sink" in el.attrib["class"].split()}
    assert sinks == {"scale", "vad"}
    root = ET.fromstring(svg)
    edges = {
        (e.attrib["data-from"], e.attrib["data-to"])
        for e in root.iter(f"{SVG}path")
        if e.attrib.get("class") == "edge"
    }
    assert edges == {("to_f32", "resample"), ("resample", "scale"), ("to_f32", "vad")}
    assert p._repr_svg_() == svg


def test_after_a_run_each_node_shows_its_time() -> None:
    p = pipeline()
    assert 'class="note"' not in p.to_svg()
    p.run(np.zeros(4800, dtype=np.int16), sample_rate=48000)
    nodes = nodes_of(p.to_svg())
    for node_id, el in nodes.items():
        notes = [t.text or "" for t in el.iter(f"{SVG}text") if t.attrib.get("class") == "note"]
        assert len(notes) == 1 and re.fullmatch(
            r"([0-9]+ us|[0-9]+\.[0-9] ms), [1-9][0-9]* calls?", notes[0]
        ), (
            node_id,
            notes,
        )
    html = p._repr_html_()
    assert (
        html.startswith('<div class="remotemedia-pipeline"')
        and "4 node(s), 3 connection(s)" in html
    )


MERMAID_LINE = re.compile(
    r'(flowchart LR|    n\d+\["[^"\n]*"\]:::(native|python)|    n\d+ --> n\d+'
    r"|    classDef (native|python) [a-z:#0-9,-]+|    style n\d+ stroke-width:3px)"
)


def test_mermaid_and_dot_text() -> None:
    p = pipeline()
    mermaid = p.to_mermaid()
    for line in mermaid.splitlines():
        assert MERMAID_LINE.fullmatch(line), line
    assert mermaid.count("-->") == 3
    assert '["<b>scale</b><br/>' in mermaid and ":::python" in mermaid
    dot = p.to_dot()
    assert dot.startswith('digraph "demo" {') and dot.rstrip().endswith("}")
    assert '"to_f32" -> "vad";' in dot
    assert dot.count("->") == 3


def test_a_node_type_that_needs_quoting_is_escaped() -> None:
    p = rm.Pipeline('a "quoted" <name>')
    p.add_node(rm.GainNode(db=-6.0), node_id="g")
    svg = p.to_svg()
    ET.fromstring(svg)  # still well-formed
    assert "a &quot;quoted&quot; &lt;name&gt;" in svg
    assert 'digraph "a \\"quoted\\" <name>"' in p.to_dot()


def decode_player(html: str) -> wave.Wave_read:
    m = re.search(r'src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"', html)
    assert m, html[:200]
    return wave.open(io.BytesIO(base64.b64decode(m.group(1))))


@pytest.mark.parametrize(
    "samples",
    [
        np.sin(np.linspace(0, 200, 16000)).astype(np.float32),
        (np.sin(np.linspace(0, 200, 32000)) * 20000).astype(np.int16).reshape(-1, 2),
        np.zeros(0, dtype=np.float64),
    ],
    ids=["f32-mono", "i16-stereo", "empty"],
)
def test_audio_html_has_a_player_and_a_waveform(samples: np.ndarray) -> None:
    a = rm.Audio(samples, 16000)
    html = a._repr_html_()
    w = decode_player(html)
    assert w.getframerate() == 16000 and w.getsampwidth() == 2
    assert w.getnchannels() == a.channels and w.getnframes() == a.frames
    pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    if a.frames:
        expected = a.astype(np.float64) / (32768.0 if a.dtype == np.int16 else 1.0)
        assert np.abs(pcm.reshape(expected.shape) / 32767.0 - expected).max() < 1e-3
    svg = html[html.index("<svg") : html.index("</svg>") + 6]
    root = ET.fromstring(svg)
    assert root.attrib["class"] == "waveform"
    assert f"{a.sample_rate} Hz" in html


def test_long_audio_embeds_only_the_first_two_minutes() -> None:
    a = rm.Audio(np.zeros(8000 * 150, dtype=np.int16), 8000)
    html = a._repr_html_()
    assert decode_player(html).getnframes() == 8000 * 120
    assert "player: first 120 s of 150.0 s" in html


def test_a_long_hi_rate_player_is_a_mono_16_khz_preview_of_bounded_size() -> None:
    rate = 48000
    t = np.arange(rate * 30) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    a = rm.Audio(np.stack([tone, tone], axis=1), rate)  # 30 s stereo: 5.8 MB as 16-bit WAV
    html = a._repr_html_()
    w = decode_player(html)
    assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (16000, 1, 16000 * 30)
    assert len(html) < 1_400_000
    assert "player: a mono 16 kHz preview" in html and "48000 Hz, 2 channels" in html
    # The preview is the audio, resampled: the 440 Hz tone at its level.
    pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32767.0
    assert abs(np.sqrt(np.mean(pcm[16000:-16000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01
    # Short clips keep their own rate and channels.
    short = rm.Audio(np.stack([tone[: rate * 2]] * 2, axis=1), rate)
    w = decode_player(short._repr_html_())
    assert (w.getframerate(), w.getnchannels()) == (rate, 2)
