#!/usr/bin/env bash
# Load and soak runs against `remotemedia serve` on loopback (issue 9; docs/reliability.md).
# Not a CI step: they take minutes. Builds the CLI and the load driver
# (crates/remotemedia-grpc/examples/load_streams.rs), starts a server with room for the
# streams, runs the driver, stops the server (SIGTERM) and checks that it exits.
#
#   scripts/load_soak.sh load [STREAMS] [SECONDS]   # default 200 streams for 180 s
#   scripts/load_soak.sh soak [SECONDS]             # one stream for 1800 s, server RSS sampled
#
# Prints the driver's report: chunks sent/acknowledged/lost/wrong, latency p50/p95/p99/max,
# and for the soak the server's RSS first/last/max and least-squares slope.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-load}"
case "$MODE" in
    load) STREAMS="${2:-200}"; SECONDS_="${3:-180}" ;;
    soak) STREAMS=1; SECONDS_="${2:-1800}" ;;
    *) echo "usage: $0 load [STREAMS] [SECONDS] | soak [SECONDS]" >&2; exit 2 ;;
esac

[[ -n "${NO_BUILD:-}" ]] || cargo build --release -q -p remotemedia-cli -p remotemedia-grpc --bin remotemedia --example load_streams
BIN=target/release/remotemedia
DRIVER=target/release/examples/load_streams

WORK=$(mktemp -d)
SERVER=""
cleanup() {
    if [[ -n "$SERVER" ]]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '[limits]\nmax_concurrent = %d\ndrain_ms = 3000\n' "$((STREAMS + 16))" > "$WORK/server.toml"
"$BIN" serve --listen "127.0.0.1:$PORT" --config "$WORK/server.toml" 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

ARGS=(--address "127.0.0.1:$PORT" --streams "$STREAMS" --seconds "$SECONDS_")
if [[ "$MODE" == soak ]]; then
    ARGS+=(--server-pid "$SERVER" --rss-every-s 10 --rss-csv "${RSS_CSV:-soak_rss.csv}")
else
    ARGS+=(--server-pid "$SERVER" --rss-every-s 5)
fi
STATUS=0
"$DRIVER" "${ARGS[@]}" || STATUS=$?

# The server must stop on SIGTERM within its drain time (3 s) plus a margin.
kill -TERM "$SERVER"
for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SERVER" 2>/dev/null; then
    echo "server still running 10 s after SIGTERM" >&2; STATUS=1
else
    wait "$SERVER" || true
    echo "server exited after SIGTERM"
fi
SERVER=""
grep -ciE 'panic|error' "$WORK/server.log" >/dev/null && { echo "server log:"; tail -20 "$WORK/server.log"; }
exit "$STATUS"
