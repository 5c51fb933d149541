"""`v6diag serve` without root: the watch plan and its errors, the listen
address, the log lines, a watcher's down/up cycle with back-off (a watcher
subclass whose source fails first: the one source this tier can own), and the
README documenting exactly the metrics exported."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from v6diag.core.errors import UsageError
from v6diag.serve.http import parse_listen
from v6diag.serve.log import StateLog
from v6diag.serve.metrics import NAMES, Metrics
from v6diag.serve.run import Plan
from v6diag.serve.watch import Session, Watcher

README = Path(__file__).resolve().parents[2] / "README.md"


def test_plan_reads_watches_and_probes():
    p = Plan.of(["drops", "checksum:eth0", "drops", "discover:br0"], ["drops=tracefs", "conntrack=netlink"], None, 300)
    assert p.watches == [("drops", None), ("checksum", "eth0"), ("discover", "br0")]
    assert p.probes == {"drops": "tracefs", "conntrack": "netlink"}


@pytest.mark.parametrize("watch,probe,words", [
    (["dropz"], [], "unknown watch"),
    (["checksum"], [], "needs an interface"),
    (["conntrack:eth0"], [], "takes no interface"),
    (["drops"], ["drops=kprobe"], "WATCH=SOURCE"),
    (["drops"], ["tracefs"], "WATCH=SOURCE"),
])
def test_plan_refuses_what_cannot_run(watch, probe, words):
    with pytest.raises(UsageError, match=words):
        Plan.of(watch, probe, None, 300)


@pytest.mark.parametrize("text,want", [
    ("127.0.0.1:9469", ("127.0.0.1", 9469)), ("[::]:9469", ("::", 9469)), (":9100", ("0.0.0.0", 9100)),
    ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
])
def test_listen_addresses(text, want):
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["9469", "localhost", "127.0.0.1:0", "127.0.0.1:70000", "[::]:x"])
def test_bad_listen_addresses(text):
    with pytest.raises(UsageError, match="ADDR:PORT"):
        parse_listen(text)


def test_log_lines_are_whole_json_or_key_value():
    out = io.StringIO()
    StateLog("json", out)("down", watch="drops", reason='tracefs "gone"')
    obj = json.loads(out.getvalue())
    assert obj["event"] == "down" and obj["reason"] == 'tracefs "gone"' and obj["time"].endswith("Z")
    out = io.StringIO()
    StateLog("text", out)("up", watch="checksum:eth0", source="packet", message="two words")
    assert out.getvalue().rstrip().endswith('up watch=checksum:eth0 source=packet message="two words"')


class _Flaky(Watcher):
    """Fails to open once, then runs a session that counts its steps."""

    def __init__(self, *args):
        super().__init__("flaky", *args)
        self.opened = 0
        self.running = threading.Event()

    def open(self) -> Session:
        self.opened += 1
        if self.opened == 1:
            raise OSError("source not there yet")
        watcher = self

        class Steps(Session):
            source = "test"

            def step(self):
                watcher.running.set()
                watcher.stop.wait(0.05)

        return Steps()


def test_a_failing_watcher_is_down_then_retried_and_up():
    lines: list[dict] = []
    metrics, stop = Metrics(), threading.Event()
    w = _Flaky(metrics, lambda event, **f: lines.append({"event": event, **f}), stop)
    w.start()
    assert w.running.wait(10), lines  # back-off is 1 s before the first retry
    text = generate_latest(metrics.registry).decode()
    assert 'v6diag_watch_up{source="test",watch="flaky"} 1.0' in text
    assert [x["event"] for x in lines] == ["down", "up"] and "not there yet" in lines[0]["reason"]
    stop.set()
    w.join(5)
    assert not w.is_alive() and lines[-1]["event"] == "stopped"
    assert 'v6diag_watch_up{source="test",watch="flaky"} 0.0' in generate_latest(metrics.registry).decode()


def test_metrics_have_bounded_labels_and_counters_end_in_total():
    m = Metrics()
    text = generate_latest(m.registry).decode()
    for name in NAMES:
        assert f"# TYPE {name} " in text
        kind = re.search(rf"# TYPE {name} (\w+)", text).group(1)
        assert name.endswith("_total") == (kind == "counter")
    labels = {lab for metric in m.registry.collect() for s in metric.samples for lab in s.labels}
    assert not labels & {"src", "dst", "address", "port", "mac", "sport", "dport"}


def test_readme_documents_exactly_the_exported_metrics():
    text = README.read_text()
    section = text[text.index("### `v6diag serve`"):]
    section = re.split(r"\n##+ ", section[5:])[0]
    documented = set(re.findall(r"`(v6diag_[a-z_]+)[{`]", section))
    assert documented == set(NAMES)


def test_global_json_selects_json_log_lines_and_sigterm_exits_0(tmp_path):
    """`v6diag --json serve`: every stderr line is a JSON object, stdout stays
    empty; a watcher that cannot run (no such interface) is down, the server still
    serves; SIGTERM ends it with exit 0. Loopback only."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = tmp_path / "ready"
    p = subprocess.Popen([sys.executable, "-m", "v6diag", "--json", "serve", "--listen", f"127.0.0.1:{port}",
                          "--watch", "checksum:v6diag-none0", "--ready-file", str(ready)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if ready.exists() or p.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), p.stderr.read() if p.poll() is not None else "not ready"
        lines = []
        while not any(x.get("event") == "down" for x in lines):
            lines.append(json.loads(p.stderr.readline()))
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    lines += [json.loads(x) for x in err.splitlines()]
    assert p.returncode == 0 and out == ""
    assert lines[0]["event"] == "serving" and lines[-1]["event"] == "exit"
    assert any(x["event"] == "down" and x["watch"] == "checksum:v6diag-none0" for x in lines)


def test_a_source_that_ends_is_reported_gone():
    """Sources never end on their own; one whose generator ends (its file or
    socket gone) must turn the watcher down, not spin. A plain generator stands
    in for the kernel source here."""
    from v6diag.core.errors import UnavailableError
    from v6diag.serve.watchers import _EventSession

    class Source:
        closed = False

        def events(self, deadline):
            yield {"reason": "UDP_CSUM"}
            yield None

        def close(self):
            self.closed = True

    seen, ticks = [], []
    src = Source()
    session = _EventSession(src, "tracefs", seen.append, ticks.append)
    session.step()
    assert seen == [{"reason": "UDP_CSUM"}] and ticks == [src]
    with pytest.raises(UnavailableError, match="tracefs source stopped"):
        session.step()
    session.close()
    assert src.closed


def test_running_totals_become_increments():
    from v6diag.serve.watch import Deltas

    d = Deltas()
    assert [d.rise("lost", t) for t in (0, 3, 3, 7)] == [0, 3, 0, 4]
    assert d.rise("lost", 2) == 0 and d.rise("lost", 8) == 1  # a total that goes back is not a rise
    assert d.rise("UDP_CSUM", 5) == 5  # each key on its own
