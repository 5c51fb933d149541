"""`v6diag oui update` against a real HTTP server in a network namespace (no
internet here): a good file replaces the cache atomically and answers lookups
with its date; a bad one or an unreachable server is one line and leaves the
cache as it was."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import PCAPS, require_root
from tests.lab import Namespaces, wait_until
from v6diag.core import vendor

PORT = 8088
PUBLISHED = time.mktime((2026, 11, 20, 12, 0, 0, 0, 0, -1))


@pytest.fixture
def server(build_lab, tmp_path):
    """A namespace serving tmp_path/www on 127.0.0.1:8088; yields (namespace, www)."""
    require_root()
    lab = build_lab(Namespaces(f"v6doui{os.getpid() % 100000}", ["web"]))
    www = tmp_path / "www"
    www.mkdir()
    lab.spawn(lab.name("web"), sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(PORT),
              "--directory", str(www), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: lab.run("web", "ss", "-Hltn", f"sport = :{PORT}").stdout.strip(), "the HTTP server")
    return lab.name("web"), www


def oui(ns, cache, v6diag_cmd, *args):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run(["ip", "netns", "exec", ns, *v6diag_cmd, *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_update_replaces_the_cache_and_lookups_use_it(server, tmp_path, v6diag_cmd):
    ns, www = server
    text = vendor.packaged_file().read_text() + "00:DE:AD\tTestVendor\tTest Vendor Inc.\n"
    (www / "manuf.gz").write_bytes(gzip.compress(text.encode()))
    os.utime(www / "manuf.gz", (PUBLISHED, PUBLISHED))  # http.server sends it as Last-Modified
    cache = tmp_path / "cache"
    r = oui(ns, cache, v6diag_cmd, "--json", "oui", "update", "--url", f"http://127.0.0.1:{PORT}/manuf.gz")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["source"] == "oui update" and got["date"] == "2026-11-20" and got["entries"] > 50000
    assert sorted(p.name for p in (cache / "v6diag").iterdir()) == ["manuf", "manuf.json"]  # no temporary left
    r = oui(ns, cache, v6diag_cmd, "--json", "oui", "lookup", "00:de:ad:00:00:01", "b8:27:eb:00:00:01")
    look = json.loads(r.stdout)
    assert [m["vendor"] for m in look["macs"]] == ["Test Vendor Inc.", "Raspberry Pi Foundation"]
    assert look["vendor_data"]["date"] == "2026-11-20"
    # discover names the data it used
    d = oui(ns, cache, v6diag_cmd, "--json", "discover", "--pcap", str(PCAPS / "discover-lan.pcap"))
    assert json.loads(d.stdout)["vendor_data"]["source"] == "oui update"


@pytest.mark.parametrize("content, words", [
    (b"<html>404</html>", "not Wireshark's manuf file"),
    (gzip.compress(b"# only a comment\n00:00:01\tXerox\tXerox Corporation\n"), "only 1 vendor blocks"),
    (b"\x1f\x8bnot really gzip", "damaged gzip"),
], ids=["html", "too-small", "bad-gzip"])
def test_a_bad_file_leaves_the_cache_alone(server, tmp_path, v6diag_cmd, content, words):
    ns, www = server
    (www / "manuf.gz").write_bytes(content)
    cache = tmp_path / "cache"
    (cache / "v6diag").mkdir(parents=True)
    (cache / "v6diag" / "manuf").write_text("old\n")
    r = oui(ns, cache, v6diag_cmd, "oui", "update", "--url", f"http://127.0.0.1:{PORT}/manuf.gz")
    assert r.returncode == 66 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert (cache / "v6diag" / "manuf").read_text() == "old\n"
    assert sorted(p.name for p in (cache / "v6diag").iterdir()) == ["manuf"]


def test_offline_is_one_line_and_exit_69(server, tmp_path, v6diag_cmd):
    ns, _ = server
    r = oui(ns, tmp_path / "cache", v6diag_cmd, "oui", "update", "--url", f"http://127.0.0.1:{PORT + 1}/manuf.gz")
    assert r.returncode == 69 and "cannot download" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2  # "downloading ..." then the error line
