#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust tests. Needs only a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --release -- -D warnings

step "cargo test (release: one build serves the tests and the CLI)"
cargo test --workspace --release

step "all tests passed"
