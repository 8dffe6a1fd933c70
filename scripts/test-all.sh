#!/usr/bin/env bash
# The whole test suite, Rust and Python. Needs a Rust toolchain and Python >= 3.10 with pip;
# everything else is installed into a fresh virtual environment (.venv-test).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
PY="${PYTHON:-python3}"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (every crate and target, warnings are errors)"
cargo clippy --workspace --all-targets --release -- -D warnings

step "cargo test (release: one build serves the tests and the CLI)"
cargo test --release

step "python: fresh virtual environment with the package and test tools"
rm -rf .venv-test
"$PY" -m venv .venv-test
.venv-test/bin/python -m pip install --quiet --upgrade pip
.venv-test/bin/python -m pip install --quiet ".[test]"
# Silero VAD's own model files, the peer SpeechVADNode(engine="silero") is checked against on
# ONNX Runtime (the engine's weights are bundled; --no-deps: the package's own dependencies
# include torch, which nothing here needs).
.venv-test/bin/python -m pip install --quiet --no-deps "silero-vad>=6"

step "ruff"
.venv-test/bin/ruff check python tests/python benchmarks
.venv-test/bin/ruff format --check python tests/python benchmarks

step "haproxy for the scale-out tests (tests/python/test_scale_out.py skips without it)"
if [[ $(id -u) == 0 ]]; then
    command -v haproxy >/dev/null || { apt-get update -qq && apt-get install -y -qq haproxy >/dev/null; } || true
fi
command -v haproxy >/dev/null && haproxy -v | head -1 || echo "haproxy not installed"

step "pytest (includes mypy stubtest and mypy --strict)"
REMOTEMEDIA_REQUIRE_SILERO=1 PATH="$PWD/.venv-test/bin:$PATH" .venv-test/bin/python -m pytest tests/python -q

step "all tests passed"
