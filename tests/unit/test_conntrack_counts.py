"""The in-kernel counts path, on the parts that run without a kernel: the -D
knobs for --src/--dst, counts -> totals per cause with the stacks the kernel tier
recorded, and the summary those totals make (schema, words). The program itself
runs in the kernel tier (tests/kernel/test_conntrack.py: a perf buffer that
overflows, --summary)."""

from __future__ import annotations

import ipaddress
import json
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.schemas import validate
from v6diag.conntrack.bpf import KernelFilter, address_words, cflags
from v6diag.conntrack.command import kernel_causes
from v6diag.conntrack.render import totals_line
from v6diag.conntrack.report import Summary
from v6diag.core.report import to_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "conntrack"


@pytest.mark.parametrize("address", ["10.9.0.1", "fd00:c7::1", "::ffff:10.0.0.1"])
def test_address_words_are_the_kernels_16_bytes(address):
    words = address_words(address)
    raw = struct.pack("=4I", *words)  # how the program reads nf_inet_addr
    packed = ipaddress.ip_address(address).packed
    assert raw == packed.ljust(16, b"\0") and len(words) == 4


def test_src_and_dst_become_cflags():
    flags = KernelFilter(src="10.9.0.1", dst="fd00::2", port=53).cflags()
    assert "-DFILTER_PORT=53" in flags
    assert [f for f in flags if f.startswith("-DFILTER_SRC_W")] == [
        f"-DFILTER_SRC_W{i}={w}u" for i, w in enumerate(address_words("10.9.0.1"))]
    assert sum(f.startswith("-DFILTER_DST_W") for f in flags) == 4
    assert cflags("kprobe", KernelFilter(), "ring", True) == ["-DUSE_RINGBUF", "-DSUMMARY_ONLY"]
    assert cflags("fentry", KernelFilter(), "perf") == ["-DUSE_FENTRY"]


def recorded(name):
    return json.loads((FIXTURES / f"conntrack-{name}.json").read_text())["events"]


def test_kernel_counts_become_totals_per_cause():
    """Counts keyed as the program keys them, made of the stacks real runs recorded."""
    flush, timeout, rst = recorded("flush")[0], recorded("udp-timeout")[0], recorded("tcp-rst")[0]
    counts = [(flush["stack"], False, False, 9000), (flush["stack"], False, True, 1000),
              (timeout["stack"], True, False, 7), (rst["stack"], False, False, 2), (rst["stack"], False, True, 3),
              ([], False, False, 1)]  # a stack the map could not hold
    assert kernel_causes(counts) == Counter({"userspace-flush": 10000, "timeout": 7, "tcp-rst": 2,
                                             "tcp-reopen": 3, "other": 1})


def test_the_summary_of_kernel_counts_is_exact_and_says_what_was_lost():
    s = Summary(mode="kprobe")
    for _ in range(40):
        s.add("userspace-flush")  # what reached v6diag
    s.from_kernel_counts(Counter({"userspace-flush": 10000}), uncounted=0, lost=9960, buffer="ring")
    out = to_json(s)
    validate("conntrack", out)
    assert (out["events"], out["reported"], out["lost"], out["counted_in_kernel"]) == (10000, 40, 9960, True)
    assert totals_line(s) == ("10000 entries destroyed (counted in the kernel: exact); 9960 of their events did "
                              "not fit the ring buffer, so 40 were shown one by one")


def test_netlink_and_replayed_summaries_keep_their_keys():
    s = Summary(mode="netlink")
    s.add("unknown")
    out = to_json(s)
    validate("conntrack", out)
    assert not {"counted_in_kernel", "reported", "uncounted", "buffer"} & set(out)
    assert totals_line(s) == "1 entries destroyed"


def test_summary_flag_prints_only_the_totals(v6diag_cmd, tmp_path):
    events = recorded("flush")
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    r = subprocess.run([*v6diag_cmd, "conntrack", "--from", str(path), "--summary", "--json"],
                       capture_output=True, text=True)
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0 and len(out) == 1 and out[0]["summary"], r.stderr
    assert out[0]["events"] == len(events) and out[0]["causes"] == {"userspace-flush": len(events)}
    human = subprocess.run([*v6diag_cmd, "conntrack", "--from", str(path), "--summary"], capture_output=True, text=True)
    assert human.returncode == 0 and human.stdout.startswith(f"{len(events)} entries destroyed"), human.stdout


def test_bad_buffer_options_are_usage_errors(v6diag_cmd):
    for args in (["--buffer", "rings"], ["--buffer-pages", "3"], ["--buffer-pages", "0"]):
        r = subprocess.run([*v6diag_cmd, "conntrack", "-d", "1", *args], capture_output=True, text=True)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)


def test_events_still_in_the_buffer_at_ctrl_c_are_unread_not_lost():
    s = Summary(mode="kprobe")
    for _ in range(250):
        s.add("userspace-flush")
    s.from_kernel_counts(Counter({"userspace-flush": 9990}), uncounted=10, lost=1250, buffer="perf")
    out = to_json(s)
    validate("conntrack", out)
    assert (out["events"], out["reported"], out["lost"], out["unread"], out["uncounted"]) == (10000, 250, 1250, 8490, 10)
    assert "8490 were still in the buffer" in totals_line(s) and "10 could not be given a cause" in totals_line(s)
    quiet = Summary(mode="kprobe")
    quiet.from_kernel_counts(Counter({"timeout": 5}), uncounted=0, lost=0, buffer="none")
    assert "unread" not in to_json(quiet) and to_json(quiet)["reported"] == 0
