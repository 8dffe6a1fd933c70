"""The README's examples run, and CI runs the README's test command exactly."""

from __future__ import annotations

import os
import re

import numpy as np

from conftest import REPO


def blocks(lang: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command_exactly() -> None:
    commands = blocks("")
    assert len(commands) >= 2, "README must open with the two commands"
    test_command = commands[1].strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert test_command in ci.splitlines(), f"{test_command!r} not in .ci/run"


def test_readme_python_example_runs() -> None:
    code = blocks("python")[0]
    rng = np.random.default_rng(0)
    namespace = {"audio_data": (0.1 * rng.standard_normal(48000)).astype(np.float32)}
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert namespace["result"].sample_rate == 16000
    assert len(namespace["segments"]) >= 2


def test_readme_picture_is_what_the_graph_command_draws() -> None:
    import subprocess

    picture = blocks("mermaid")[0]
    r = subprocess.run(
        ["remotemedia", "graph", "examples/speech_and_segments.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == picture
