"""Three `remotemedia serve` replicas behind haproxy (deploy/haproxy.cfg), all on loopback, for
tests/python/test_scale_out.py and scripts/scale-demo.sh."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HAPROXY_CFG = REPO / "deploy" / "haproxy.cfg"

#: Longer than haproxy's checks take to see a replica down (inter 500 ms x fall 2, plus one).
GRACE_MS = 2000
#: Streams in the tests last about a second; this bounds how long a stopping replica waits.
DRAIN_MS = 5000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode()


def wait_for(what: str, cond: Callable[[], object], timeout: float, step: float = 0.05) -> float:
    """Polls `cond()` until true; returns the seconds it took. Raises after `timeout`."""
    t0 = time.monotonic()
    while True:
        try:
            if cond():
                return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(step)


class Replica:
    """One `remotemedia serve` process with its metrics (and /ready) port."""

    def __init__(self, name: str, tmp: Path, exe: str) -> None:
        self.name = name
        self.port, self.metrics_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.config = tmp / f"{name}.toml"
        self.config.write_text(f"[limits]\nshutdown_grace_ms = {GRACE_MS}\ndrain_ms = {DRAIN_MS}\n")
        self.log = tmp / f"{name}.log"
        self.exe = exe
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("REMOTEMEDIA_TOKEN", None)
        env.pop("REMOTEMEDIA_TOKENS", None)
        self.proc = subprocess.Popen(
            [
                self.exe,
                "serve",
                "--listen",
                self.address,
                "--metrics-listen",
                f"127.0.0.1:{self.metrics_port}",
                "--config",
                str(self.config),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("a"),
        )
        try:
            wait_for(f"replica {self.name} ready", self.ready, 60)
        except TimeoutError:
            raise RuntimeError(
                f"replica {self.name} did not start: {self.log.read_text()}"
            ) from None

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"replica {self.name} exited: {self.log.read_text()}")
        return http_get(f"http://127.0.0.1:{self.metrics_port}/ready")[0] == 200

    def metrics(self) -> str:
        return http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")[1]

    def counter(self, name: str, labels: str = "") -> float:
        """A metric's value (0 when it has not been created yet)."""
        pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" (\S+)"
        m = re.search("^" + pattern + "$", self.metrics(), re.MULTILINE)
        return float(m.group(1)) if m else 0.0

    def executes(self) -> int:
        return int(self.counter("remotemedia_requests_total", 'rpc="Execute"'))

    def streams(self) -> int:
        return int(self.counter("remotemedia_requests_total", 'rpc="Stream"'))

    def active_streams(self) -> int:
        return int(self.counter("remotemedia_active_streams"))

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code once it has drained."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Balancer:
    """haproxy with the shipped configuration, its addresses from the environment."""

    def __init__(self, replicas: list[Replica], tmp: Path) -> None:
        exe = shutil.which("haproxy")
        assert exe, "haproxy is not installed"
        self.port, self.stats_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.names = [f"r{i + 1}" for i in range(len(replicas))]
        env = dict(os.environ)
        env["RM_LB_LISTEN"] = self.address
        env["RM_LB_STATS"] = f"127.0.0.1:{self.stats_port}"
        for i, r in enumerate(replicas, 1):
            env[f"RM_REPLICA{i}"] = r.address
            env[f"RM_READY{i}"] = str(r.metrics_port)
        self.log = tmp / "haproxy.log"
        self.proc = subprocess.Popen(
            [exe, "-f", str(HAPROXY_CFG)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
        )
        wait_for("haproxy sees every replica UP", self.all_up, 30)

    def status(self) -> dict[str, str]:
        """Each server's state as haproxy's stats page shows it ("UP", "DOWN", "UP 1/2"...)."""
        _, text = http_get(f"http://127.0.0.1:{self.stats_port}/stats;csv")
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "remotemedia" and row["svname"] in self.names
        }

    def all_up(self) -> bool:
        s = self.status()
        return len(s) == len(self.names) and all(v == "UP" for v in s.values())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    """Three replicas and the balancer; `stop()` ends every process it started."""

    def __init__(self, tmp: Path, n: int = 3, exe: str | None = None) -> None:
        exe = exe or shutil.which("remotemedia")
        assert exe, "the remotemedia command is not on PATH"
        self.replicas: list[Replica] = []
        self.balancer: Balancer | None = None
        try:
            for i in range(n):
                self.replicas.append(Replica(f"r{i + 1}", tmp, exe))
            self.balancer = Balancer(self.replicas, tmp)
        except BaseException:
            self.stop()
            raise

    @property
    def lb(self) -> Balancer:
        assert self.balancer is not None
        return self.balancer

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for r in self.replicas:
            r.stop()
