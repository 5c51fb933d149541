"""What the serve tests share (integration and kernel tiers): `v6diag serve`
started with a ready file and JSON logs, a real Prometheus server scraping it,
and reading the exposition."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.lab import wait_until

TRACEFS = Path("/sys/kernel/tracing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def samples(text: str) -> dict[str, float]:
    """The exposition's samples by their full `name{labels}` text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def total(text: str, name: str, **labels) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples(text).items()
               if k.split("{")[0] == name and all(w in k for w in want))


class Serve:
    def __init__(self, cmd, tmp: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ready = tmp / f"serve-ready-{self.port}"
        self.log = tmp / f"serve-{self.port}.log"
        self.proc = subprocess.Popen([*cmd, "serve", "--listen", f"127.0.0.1:{self.port}", "--log-format", "json",
                                      "--ready-file", str(ready), *args],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
                                     # a crash (bcc is C) leaves every thread's Python stack in the log
                                     env={**os.environ, "PYTHONFAULTHANDLER": "1"})
        wait_until(lambda: ready.exists() or self.proc.poll() is not None, "serve --ready-file", timeout=60)
        assert ready.exists(), self.log.read_text()

    def events(self) -> list[dict]:
        return [json.loads(x) for x in self.log.read_text().splitlines() if x.startswith("{")]

    def wait_up(self, watch: str, timeout: float = 60) -> None:
        wait_until(lambda: total(get(self.url + "/metrics"), "v6diag_watch_up", watch=watch) == 1,
                   f"watch {watch} up", timeout=timeout, interval=0.2)

    def metrics(self) -> str:
        return get(self.url + "/metrics")

    def stop(self) -> tuple[int, float]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        return rc, time.monotonic() - t0


class Prometheus:
    """A real Prometheus server scraping one target every second."""

    def __init__(self, tmp: Path, target: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                          "scrape_configs:\n  - job_name: v6diag\n    static_configs:\n"
                          f"      - targets: ['{target}']\n")
        self.log = tmp / "prometheus.log"
        self.proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp}/tsdb",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        wait_until(lambda: self._ready() or self.proc.poll() is not None, "prometheus ready", timeout=60,
                   interval=0.2)
        assert self.proc.poll() is None, self.log.read_text()[-2000:]

    def _ready(self) -> bool:
        try:
            return "Ready" in get(self.url + "/-/ready", timeout=1)
        except OSError:
            return False

    def query(self, expr: str) -> float | None:
        body = json.loads(get(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def target_up(self) -> bool:
        return self.query('up{job="v6diag"}') == 1

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def settled(prom: Prometheus, expr: str, want: float, timeout: float = 30) -> float | None:
    """Wait until Prometheus has scraped the value; then confirm it stays there."""
    try:
        wait_until(lambda: prom.query(expr) == want, f"{expr} == {want}", timeout=timeout, interval=0.5)
    except AssertionError:
        pass
    return prom.query(expr)


