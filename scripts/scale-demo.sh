#!/usr/bin/env bash
# Three `remotemedia serve` replicas behind haproxy (deploy/haproxy.cfg) on loopback: prints the
# split of 1,000 calls from one channel, the latency the balancer adds per call and per chunk,
# then runs the scale-out scenarios (tests/python/test_scale_out.py: streams pinned to their
# replica, rolling restart, SIGKILL) and prints their figures. Installs haproxy with apt when it
# is missing (as root). Every process it starts is ended on exit.
#   scripts/scale-demo.sh            (PYTHON=path/to/python to pick the environment)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
PATH="$(dirname "$PYTHON"):$PATH"
command -v haproxy >/dev/null || {
    [[ $(id -u) == 0 ]] || { echo "haproxy is missing: apt-get install haproxy (as root)" >&2; exit 1; }
    apt-get update -qq && apt-get install -y -qq haproxy >/dev/null
}
command -v remotemedia >/dev/null || { echo "remotemedia is not installed in $PYTHON's environment" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
printf '[limits]\nshutdown_grace_ms = 2000\ndrain_ms = 5000\n' > "$WORK/server.toml"
for i in 1 2 3; do
    p=$(port); m=$(port)
    export "RM_REPLICA$i=127.0.0.1:$p" "RM_READY$i=$m"
    remotemedia serve --listen "127.0.0.1:$p" --metrics-listen "127.0.0.1:$m" \
        --config "$WORK/server.toml" 2>"$WORK/r$i.log" &
    PIDS+=($!)
done
export RM_LB_LISTEN="127.0.0.1:$(port)" RM_LB_STATS="127.0.0.1:$(port)"
for i in 1 2 3; do
    m=$(eval echo "\$RM_READY$i")
    for _ in $(seq 300); do curl -sf "http://127.0.0.1:$m/ready" >/dev/null && break; sleep 0.1; done
done
haproxy -f deploy/haproxy.cfg 2>"$WORK/haproxy.log" &
PIDS+=($!)
for _ in $(seq 100); do
    [[ $(curl -s "http://$RM_LB_STATS/stats;csv" | grep -c '^remotemedia,r[0-9],.*,UP,') == 3 ]] && break
    sleep 0.1
done
echo "replicas: $RM_REPLICA1 $RM_REPLICA2 $RM_REPLICA3; haproxy: $RM_LB_LISTEN (stats http://$RM_LB_STATS/stats)"

echo
echo "== split of 1,000 Execute calls from one client channel"
"$PYTHON" - <<'PY'
import os, re, urllib.request
import numpy as np
from remotemedia import AudioResampleNode, Pipeline, RemoteClient
def executes(i):
    text = urllib.request.urlopen(f"http://127.0.0.1:{os.environ[f'RM_READY{i}']}/metrics").read().decode()
    m = re.search(r'^remotemedia_requests_total\{rpc="Execute"\} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0
before = [executes(i) for i in (1, 2, 3)]
client = RemoteClient(os.environ["RM_LB_LISTEN"])
manifest = Pipeline("split").add_node(AudioResampleNode(16000)).serialize(indent=None)
x = np.zeros(4800, dtype=np.float32)
for _ in range(1000):
    client.execute(manifest, x, 48000)
served = [executes(i) - b for i, b in zip((1, 2, 3), before)]
print(f"per replica: {served} (largest share {max(served) / 10:.1f}%)")
PY

echo
echo "== latency added by haproxy (one replica directly vs through the balancer)"
"$PYTHON" benchmarks/lb_latency.py --direct "$RM_REPLICA1" --lb "$RM_LB_LISTEN"

echo
echo "== scenarios (tests/python/test_scale_out.py, its own replicas and balancer)"
"$PYTHON" -m pytest tests/python/test_scale_out.py -q -s -p no:cacheprovider
