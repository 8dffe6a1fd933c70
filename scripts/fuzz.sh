#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after the other (issue 9; docs/reliability.md).
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Not a CI step.
#
#   scripts/fuzz.sh                      # every target, 600 s each
#   FUZZ_SECONDS=60 scripts/fuzz.sh nodes manifest
#
# Seeds are read from fuzz/corpus/<target>/ (committed); inputs libFuzzer finds go to
# fuzz/corpus-run/<target>/ (not committed). libFuzzer runs in fork mode and carries on after a
# crash, timeout or out-of-memory; each one is saved under fuzz/artifacts/<target>/ and is
# replayed with `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`. Logs go to
# fuzz/logs/<target>.log; the last stats line of each is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_EACH="${FUZZ_SECONDS:-600}"
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(nodes audio_decode manifest convert server_connection)
mkdir -p logs
cargo +nightly fuzz build
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus-run/$t"
    echo "== $t: ${SECONDS_EACH} s" >&2
    nice -n 19 cargo +nightly fuzz run "$t" "corpus-run/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        >"logs/$t.log" 2>&1 || echo "$t: libFuzzer exited with $?" >&2
done
for t in "${TARGETS[@]}"; do
    echo "$t: $(grep -E '^#[0-9]+' "logs/$t.log" | tail -1)"
    echo "$t: corpus $(ls "corpus-run/$t" | wc -l) files; artifacts: $(ls "artifacts/$t" 2>/dev/null | wc -l)"
done
