"""Scale-out behind a real load balancer: three `remotemedia serve` replicas behind haproxy with
the shipped deploy/haproxy.cfg, on loopback. Per-call balancing, streams pinned to their replica,
a rolling restart that drops nothing, a killed replica, and the client retry recipes of
docs/deploy.md. Skipped when haproxy is not installed (scripts/test-all.sh installs it)."""

from __future__ import annotations

import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from lb_cluster import GRACE_MS, Cluster, Replica, wait_for
from remotemedia import AudioResampleNode, ManifestError, Pipeline, RemoteClient, RemoteError

from conftest import music

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None,
    reason="haproxy is not installed (apt-get install haproxy; scripts/test-all.sh does it as root)",
)

RATE = 48000
CHUNK = 2400  # 50 ms
AUDIO = music(RATE, 0.5)  # 10 chunks
PIPE = Pipeline("lb").add_node(AudioResampleNode(16000))
MANIFEST = PIPE.serialize(indent=None)

T = TypeVar("T")


def stream_through(session: Any, x: np.ndarray, pause: float = 0.0) -> np.ndarray:
    outs = []
    for i in range(0, len(x), CHUNK):
        session.send(x[i : i + CHUNK])
        outs += session.poll()
        if pause:
            time.sleep(pause)
    outs += session.close()
    return np.concatenate([np.asarray(o.data) for o in outs])


LOCAL_STREAM = stream_through(PIPE.stream(sample_rate=RATE), AUDIO)
LOCAL_RUN = np.asarray(PIPE.run(AUDIO[:4800], sample_rate=RATE))

RETRYABLE = ("Unavailable", "ResourceExhausted")


def with_retry(call: Callable[[], T], attempts: int = 4, base: float = 0.05) -> T:
    """The unary retry recipe of docs/deploy.md: a refused call (UNAVAILABLE: the replica is
    stopping or gone; RESOURCE_EXHAUSTED: it is full) did not run, so send it again after an
    exponential, jittered pause; anything else is an answer, not a refusal."""
    for attempt in range(attempts):
        try:
            return call()
        except RemoteError as e:
            if getattr(e, "grpc_code", None) not in RETRYABLE or attempt == attempts - 1:
                raise
            time.sleep(base * 2**attempt * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("lb"))
    yield c
    c.stop()


def split(before: list[int], after: list[int]) -> list[int]:
    return [a - b for a, b in zip(after, before, strict=True)]


def test_unary_calls_from_one_channel_spread_over_every_replica(cluster: Cluster) -> None:
    client = RemoteClient(cluster.lb.address)
    before = [r.executes() for r in cluster.replicas]
    for _ in range(1000):
        out = client.execute(MANIFEST, AUDIO[:4800], RATE)
        assert len(out["audio_resample"]) == 1600
    np.testing.assert_array_equal(out["audio_resample"], LOCAL_RUN)
    served = split(before, [r.executes() for r in cluster.replicas])
    print(f"\n1000 Execute calls over one channel, per replica: {served}")
    assert sum(served) == 1000
    assert all(0 < n <= 500 for n in served), served


def test_concurrent_streams_stay_on_their_replica_and_match_a_local_run(
    cluster: Cluster,
) -> None:
    client = RemoteClient(cluster.lb.address)
    before = [r.streams() for r in cluster.replicas]
    sessions = [client.stream(PIPE, sample_rate=RATE) for _ in range(100)]
    outs: list[list[Any]] = [[] for _ in sessions]
    # Every stream open at once, fed chunk by chunk in turn.
    for i in range(0, len(AUDIO), CHUNK):
        for s, o in zip(sessions, outs, strict=True):
            s.send(AUDIO[i : i + CHUNK])
            o += s.poll()
        if i == CHUNK:
            active = [r.active_streams() for r in cluster.replicas]
    for s, o in zip(sessions, outs, strict=True):
        o += s.close()
    opened = split(before, [r.streams() for r in cluster.replicas])
    print(f"\n100 concurrent streams, per replica: {opened}")
    assert sum(opened) == 100 and all(0 < n <= 50 for n in opened), opened
    # Where they were counted open mid-way is where they were opened: nothing moved.
    assert active == opened
    # Each resampler kept its state over all ten chunks: nothing was lost or reordered.
    for o in outs:
        np.testing.assert_array_equal(np.concatenate([np.asarray(x.data) for x in o]), LOCAL_STREAM)


class Traffic:
    """Streams (each ~1 s, ten chunks, checked against a local run) and unary calls, in
    background threads, until `stop()`; counts what succeeded and keeps what failed."""

    def __init__(self, address: str, streams: int) -> None:
        self.client = RemoteClient(address)
        self.stop_event = threading.Event()
        self.ok_streams = 0
        self.ok_calls = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._stream_loop) for _ in range(streams)]
        self.threads.append(threading.Thread(target=self._call_loop))
        for t in self.threads:
            t.start()

    def _stream_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                got = stream_through(self.client.stream(PIPE, sample_rate=RATE), AUDIO, 0.1)
                np.testing.assert_array_equal(got, LOCAL_STREAM)
                with self.lock:
                    self.ok_streams += 1
            except Exception as e:
                with self.lock:
                    self.failures.append(f"stream: {type(e).__name__}: {e}")

    def _call_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                out = self.client.execute(MANIFEST, AUDIO[:4800], RATE)
                np.testing.assert_array_equal(out["audio_resample"], LOCAL_RUN)
                with self.lock:
                    self.ok_calls += 1
            except Exception as e:
                with self.lock:
                    self.failures.append(f"call: {type(e).__name__}: {e}")
            time.sleep(0.02)

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return self.ok_streams, self.ok_calls

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=60)


def restart(cluster: Cluster, traffic: Traffic, r: Replica) -> str:
    """SIGTERM one replica under traffic, check the others carry it, bring it back."""
    others = [o for o in cluster.replicas if o is not r]
    t0 = time.monotonic()
    assert r.terminate() == 0, r.log.read_text()
    stopped = time.monotonic() - t0
    # While it is gone, calls and streams keep succeeding: on the others.
    seen = traffic.counts()[1]
    others_before = [o.executes() for o in others]
    wait_for("calls served while a replica is down", lambda: traffic.counts()[1] > seen + 10, 30)
    assert cluster.lb.status()[r.name].startswith("DOWN")
    assert all(n > 0 for n in split(others_before, [o.executes() for o in others]))
    r.start()
    back = wait_for(f"{r.name} UP again", lambda: cluster.lb.status()[r.name] == "UP", 30)
    # It takes new calls and streams again (its counters restarted with the process).
    wait_for(f"{r.name} serving", lambda: r.executes() > 0 and r.streams() > 0, 30)
    return f"{r.name}: stopped {stopped:.1f} s after SIGTERM, UP {back:.1f} s after restart"


def test_rolling_restart_drops_no_stream_and_no_call(cluster: Cluster) -> None:
    traffic = Traffic(cluster.lb.address, streams=50)
    try:
        wait_for("traffic flowing", lambda: min(traffic.counts()) > 0, 30)
        report = [restart(cluster, traffic, r) for r in cluster.replicas]
        streams, calls = traffic.counts()
    finally:
        traffic.stop()
    print("\nrolling restart: " + "; ".join(report) + f"; {streams} streams and {calls} calls ok")
    assert traffic.failures == []
    assert streams >= 50 and calls > 0


def test_a_killed_replica_fails_only_its_own_streams(cluster: Cluster) -> None:
    assert cluster.lb.all_up()
    victim = cluster.replicas[0]
    client = RemoteClient(cluster.lb.address)
    sessions = [client.stream(PIPE, sample_rate=RATE) for _ in range(30)]
    for s in sessions:
        s.send(AUDIO[:CHUNK])
    on_victim = victim.active_streams()
    assert on_victim > 0
    victim.kill()
    t_kill = time.monotonic()
    # Unary calls right after the kill: haproxy re-sends a refused connection elsewhere. The
    # first 50 ms are left out: a call haproxy hands to its pooled connection to the victim in
    # the instant before it has read that connection's close is a call the replica "took", which
    # haproxy never re-sends (by design); CI saw one such call fail with an h2 error.
    time.sleep(0.05)
    for _ in range(100):
        assert len(client.execute(MANIFEST, AUDIO[:4800], RATE)["audio_resample"]) == 1600
    # Out of rotation within one health period (inter 500 ms x fall 2, plus the 1 s check
    # timeout); a refused connection (observe layer4) takes it out sooner.
    down = wait_for(
        "victim marked DOWN", lambda: cluster.lb.status()[victim.name].startswith("DOWN"), 3
    )
    down_after = time.monotonic() - t_kill
    failed: list[str] = []
    finished = 0
    replayed = 0
    for s in sessions:
        try:
            out = s.poll()
            for i in range(CHUNK, len(AUDIO), CHUNK):
                s.send(AUDIO[i : i + CHUNK])
                out += s.poll()
            out += s.close()
            np.testing.assert_array_equal(
                np.concatenate([np.asarray(o.data) for o in out]), LOCAL_STREAM
            )
            finished += 1
        except RemoteError as e:
            failed.append(str(getattr(e, "grpc_code", None)))
            assert "open a new stream" in str(e)
            # The stream recipe: its session state died with the replica; open a new stream
            # (the balancer picks a live replica) and replay from the start.
            again = stream_through(client.stream(PIPE, sample_rate=RATE), AUDIO)
            np.testing.assert_array_equal(again, LOCAL_STREAM)
            replayed += 1
    print(
        f"\nSIGKILL: {on_victim} of 30 streams were on the victim and failed with {set(failed)}; "
        f"{finished} finished; marked DOWN {down_after:.2f} s after the kill (poll: {down:.2f} s)"
    )
    assert failed == ["Unavailable"] * on_victim
    assert finished == 30 - on_victim and replayed == on_victim
    victim.start()
    wait_for("victim UP again", cluster.lb.all_up, 30)


def test_health_checks_alone_take_a_dead_replica_out(cluster: Cluster) -> None:
    """No traffic to notice the refused connections: the checks (inter 500 ms, fall 2, check
    timeout 1 s) must take the replica out within one health period."""
    assert cluster.lb.all_up()
    victim = cluster.replicas[1]
    victim.kill()
    down = wait_for(
        "victim marked DOWN by checks", lambda: cluster.lb.status()[victim.name] == "DOWN", 3
    )
    print(f"\nSIGKILL, no traffic: marked DOWN by the checks {down:.2f} s after the kill")
    victim.start()
    up = wait_for("victim UP again", cluster.lb.all_up, 30)
    print(f"restarted: UP {up:.2f} s after its /ready answered")
    client = RemoteClient(cluster.lb.address)
    before = victim.executes()
    for _ in range(30):
        client.execute(MANIFEST, AUDIO[:4800], RATE)
    served = victim.executes() - before
    print(f"then it served {served} of 30 calls")
    assert served > 0


def test_unary_retry_recipe_retries_refusals_only(tmp_path: Path) -> None:
    exe = shutil.which("remotemedia")
    assert exe
    r = Replica("solo", tmp_path, exe)
    try:
        client = RemoteClient(r.address)
        calls = 0

        def bad_manifest() -> Any:
            nonlocal calls
            calls += 1
            return client.execute("{}", AUDIO[:480], RATE)

        with pytest.raises(ManifestError):
            with_retry(bad_manifest)
        assert calls == 1  # an answer about the input is not retried
        # A draining replica refuses new calls (after its grace period) with UNAVAILABLE:
        # retried, here without a balancer to send it elsewhere, until attempts run out.
        keep = client.stream(PIPE, sample_rate=RATE)
        keep.send(AUDIO[:CHUNK])  # an open stream keeps the replica draining
        assert r.proc is not None
        r.proc.send_signal(signal.SIGTERM)
        time.sleep(GRACE_MS / 1000 + 0.3)
        calls = 0

        def run() -> Any:
            nonlocal calls
            calls += 1
            return client.execute(MANIFEST, AUDIO[:4800], RATE)

        with pytest.raises(RemoteError) as e:
            with_retry(run)
        assert e.value.grpc_code == "Unavailable"  # type: ignore[attr-defined]
        assert calls == 4
    finally:
        r.stop()
