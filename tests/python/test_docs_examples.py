"""Every ```python block of README.md and docs/*.md runs, and passes ``mypy --strict``.

A block may use names its page set up in prose (``audio``, ``pipeline``, ``client``, ...):
``PRELUDES`` defines them per page, typed, and is checked and run together with each block.
Blocks run in a scratch directory holding the files they name (``in.flac``,
``examples/speech_48k.wav``, ...); remote examples run against a server started here (their
``127.0.0.1:50051`` is replaced by its address)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import remotemedia
from test_server import Server

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DOC_ADDRESS = "127.0.0.1:50051"

_COMMON = """\
from typing import Any
import numpy as np
import remotemedia
from remotemedia import AudioResampleNode, Pipeline
audio = (0.1 * np.random.default_rng(0).standard_normal(48000)).astype(np.float32)
pipeline: Pipeline[Any] = Pipeline("docs").add_node(AudioResampleNode(16000))
"""

#: Names each page's blocks use without defining them.
PRELUDES = {
    "README.md": _COMMON
    + """\
audio_data = audio
mic_chunks = [audio[i : i + 4800] for i in range(0, audio.size, 4800)]
""",
    "docs/python.md": _COMMON
    + """\
chunks = [audio[i : i + 4800] for i in range(0, audio.size, 4800)]
""",
    "docs/server.md": _COMMON,
    "docs/deploy.md": _COMMON
    + """\
import random
import time
from collections.abc import Callable
from typing import TypeVar
T = TypeVar("T")
client = remotemedia.RemoteClient("127.0.0.1:50051")
""",
}


def python_blocks() -> list[tuple[str, int, str]]:
    """(page, number, code) of every ```python block, indented ones (in lists) included."""
    found = []
    for doc in DOCS:
        rel = doc.relative_to(REPO).as_posix()
        text = doc.read_text()
        pattern = r"^([ \t]*)```python\n(.*?)^\1```"
        for n, m in enumerate(re.finditer(pattern, text, flags=re.S | re.M), start=1):
            found.append((rel, n, textwrap.dedent(m.group(2))))
    return found


BLOCKS = python_blocks()


def module_name(doc: str, n: int) -> str:
    return "ex_" + re.sub(r"[^a-z0-9]+", "_", doc.lower().removesuffix(".md")) + f"_{n}"


def source(doc: str, code: str) -> str:
    return PRELUDES.get(doc, "") + "\n" + code


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the files the examples read."""
    d = tmp_path_factory.mktemp("docs")
    (d / "examples").mkdir()
    for name in ("speech_48k.wav", "speech_and_segments.json"):
        if (REPO / "examples" / name).exists():
            (d / "examples" / name).symlink_to(REPO / "examples" / name)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(96000) / 48000)
    remotemedia.write(d / "in.flac", remotemedia.Audio((tone * 32767).astype(np.int16), 48000))
    remotemedia.write(d / "long.wav", remotemedia.Audio(tone.astype(np.float32), 48000))
    (d / "corpus" / "a").mkdir(parents=True)
    for name in ("one.wav", "a/two.wav"):
        remotemedia.write(d / "corpus" / name, remotemedia.Audio(tone.astype(np.float32), 48000))
    return d


@pytest.fixture(scope="module")
def doc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("docs-server"))
    yield s
    s.stop()


def test_every_page_with_python_blocks_has_been_seen() -> None:
    pages = {doc for doc, _, _ in BLOCKS}
    assert {"README.md", "docs/python.md"} <= pages
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize(("doc", "n", "code"), BLOCKS, ids=[f"{d}#{n}" for d, n, _ in BLOCKS])
def test_docs_example_runs(
    doc: str, n: int, code: str, scratch: Path, request: pytest.FixtureRequest
) -> None:
    if "ray.init(" in code:
        # Needs a Ray cluster and its paths; tests/python/test_ray.py runs the same calls on
        # a local Ray. The block is still type-checked below.
        pytest.skip("a Ray cluster example (run by test_ray.py on a local Ray)")
    text = source(doc, code)
    if DOC_ADDRESS in text:
        server: Server = request.getfixturevalue("doc_server")
        text = text.replace(DOC_ADDRESS, server.address)
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        namespace: dict[str, object] = {"__name__": module_name(doc, n)}
        exec(compile(text, f"{doc} (python block {n})", "exec"), namespace)
    finally:
        os.chdir(cwd)


def test_docs_examples_pass_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    for doc, n, code in BLOCKS:
        (tmp_path / f"{module_name(doc, n)}.py").write_text(source(doc, code))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--python-version", version, "."],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_blocks_are_found_in_lists_too() -> None:
    assert any(doc == "docs/deploy.md" for doc, _, _ in BLOCKS)  # indented under a list item
