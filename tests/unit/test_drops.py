"""`drops` without a kernel: the tracepoint format parser (this VM's 6.18 file and
the stock 6.1 one, recorded), the trace_pipe line parser, the SNMP counter
parser, words for every reason (and for names from a future kernel), and replay.
Hostile input only ever gives None, an empty table or a one-line InputError."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.schemas import validate
from v6diag.core import tracefs
from v6diag.core.errors import InputError
from v6diag.core.report import to_json
from v6diag.drops import counters, reasons
from v6diag.drops.recorded import RecordedDrops
from v6diag.drops.report import Summary

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "drops"
FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("kernel, count, symbolic", [("6.18", 126, True), ("6.1", 65, False)])
def test_reason_tables_come_from_each_kernels_format_file(kernel, count, symbolic):
    fmt = tracefs.parse_format((FIXTURES / f"kfree_skb-format-{kernel}.txt").read_text())
    assert fmt.has_reason and len(fmt.reasons) == count and fmt.symbolic_location == symbolic
    assert "MAX" not in fmt.reasons.values()
    assert fmt.reasons[fmt.number("UDP_CSUM")] == "UDP_CSUM"
    # the numbers differ between kernels: never a table in the code
    other = tracefs.parse_format((FIXTURES / f"kfree_skb-format-{'6.1' if kernel == '6.18' else '6.18'}.txt").read_text())
    assert fmt.number("NETFILTER_DROP") is not None and other.number("NETFILTER_DROP") is not None


def test_a_kernel_without_reasons_and_garbage_formats():
    old = "name: kfree_skb\nformat:\n\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;\n" \
          'print fmt: "skbaddr=%p protocol=%u location=%p", REC->skbaddr'
    fmt = tracefs.parse_format(old)
    assert not fmt.has_reason and fmt.reasons == {}
    assert tracefs.parse_format("").reasons == {}


@FUZZ
@given(st.text(max_size=400))
def test_any_format_text_parses_to_a_table(text):
    fmt = tracefs.parse_format(text)
    assert all(isinstance(n, int) and isinstance(v, str) for n, v in fmt.reasons.items())


LINE_618 = ("          python3-31169   [001] ..s1.  9112.804838: kfree_skb: skbaddr=00000000aef616bd "
            "rx_sk=0000000000000000 protocol=34525 location=__udp6_lib_rcv+0xe1/0xb00 reason: NO_SOCKET")
LINE_61 = ("          <idle>-0       [000] ..s2.   512.000100: kfree_skb: skbaddr=000000009c1f3e2a protocol=2048 "
           "location=00000000d0e8a6a7 reason: UDP_CSUM")


def test_trace_pipe_lines():
    a = tracefs.parse_line(LINE_618)
    assert (a.task, a.pid, a.cpu, a.protocol, a.location, a.reason) == (
        "python3", 31169, 1, 34525, "__udp6_lib_rcv+0xe1/0xb00", "NO_SOCKET")
    b = tracefs.parse_line(LINE_61)  # 6.1 prints the location as a hashed pointer: no name
    assert (b.task, b.protocol, b.location, b.reason) == ("<idle>", 2048, None, "UDP_CSUM")
    assert tracefs.parse_line("# tracer: nop") is None
    assert tracefs.parse_line(LINE_618.replace("reason: NO_SOCKET", "reason: ")) is None


@FUZZ
@given(st.text(max_size=300), st.integers(0, len(LINE_618)))
def test_any_line_parses_or_is_none(junk, cut):
    for line in (junk, LINE_618[:cut] + junk, junk + LINE_618):
        got = tracefs.parse_line(line)
        assert got is None or isinstance(got.reason, str)


def test_every_reason_of_both_kernels_has_words_and_future_names_too():
    for kernel in ("6.18", "6.1"):
        for name in tracefs.parse_format((FIXTURES / f"kfree_skb-format-{kernel}.txt").read_text()).reasons.values():
            why, fix = reasons.explain(name)
            assert why and isinstance(fix, str)
    assert "QUANTUM_FOAM" in reasons.explain("QUANTUM_FOAM")[0]
    assert "TCP state machine" in reasons.explain("TCP_SOMETHING_NEW")[0]
    assert "v6diag checksum" in reasons.explain("UDP_CSUM")[1]
    assert "v6diag tunnel" in reasons.explain("PKT_TOO_BIG")[1]


SNMP = """Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards
Ip: 1 64 100 2 0 0 0 1
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 10 3 7 5 0 0 7 0 0
"""
SNMP6 = "Ip6InReceives                   	20\nUdp6NoPorts                     	4\nUdp6InCsumErrors                	5\n"


def test_snmp_counters_become_reasons():
    before = {**counters.parse("snmp", SNMP.replace(" 7 5 0 0 7", " 0 5 0 0 0").replace("10 3", "10 0")),
              **counters.parse("snmp6", SNMP6.replace("\t4", "\t0").replace("\t5", "\t0"))}
    after = {**counters.parse("snmp", SNMP), **counters.parse("snmp6", SNMP6)}
    by_reason, by_counter = counters.drops(before, after)
    assert by_reason == {"UDP_CSUM": 12, "NO_SOCKET": 7}
    assert by_counter["Udp:InCsumErrors"] == 7 and by_counter["Udp6InCsumErrors"] == 5


@FUZZ
@given(st.text(max_size=300))
def test_any_counter_file_parses(text):
    for name in counters.FILES:
        assert all(isinstance(v, int) for v in counters.parse(name, text).values())


def test_replay_of_a_recording(tmp_path, v6diag_cmd):
    path = FIXTURES / "drops-sample.ndjson"
    r = subprocess.run([*v6diag_cmd, "drops", "--from", str(path), "--json"], capture_output=True, text=True)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0, r.stderr
    summary = lines[-1]["summary"]
    validate("drops", lines[-1])
    for ev in lines[:-1]:
        validate("drops", ev)
        assert ev["why"] and "fix" in ev
    assert summary["events"] == len(lines) - 1 and summary["source"] == "recorded"
    human = subprocess.run([*v6diag_cmd, "drops", "--from", str(path), "-r", "UDP_CSUM"], capture_output=True, text=True)
    assert human.returncode == 0 and "UDP_CSUM" in human.stdout and "NETFILTER_DROP" not in human.stdout


@pytest.mark.parametrize("content, words", [
    ("not json\n", "not a JSON line"), ('{"time": 1}\n', "no 'reason'"), ('[1, 2]\n', "not a JSON object"),
    ('{"reason": "X", "sport": "80"}\n', "'sport' is not a number"), (b"\xff\xfe".decode("latin-1"), "not"),
])
def test_a_bad_recording_is_one_line(tmp_path, v6diag_cmd, content, words):
    path = tmp_path / "bad.ndjson"
    path.write_text(content)
    r = subprocess.run([*v6diag_cmd, "drops", "--from", str(path)], capture_output=True, text=True)
    assert r.returncode == 66 and words in r.stderr and "Traceback" not in r.stderr


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=60), st.dictionaries(st.sampled_from(
    ["reason", "time", "src", "sport", "inner", "family"]), st.one_of(st.none(), st.integers(), st.text(max_size=8)),
    max_size=6).map(json.dumps)), max_size=5))
def test_any_recording_is_events_or_input_error(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("rec") / "x.ndjson"
    path.write_text("\n".join(lines) + "\n")
    src = RecordedDrops(path)
    try:
        for ev in src.events():
            assert isinstance(ev["reason"], str)
    except InputError:
        pass
    finally:
        src.close()


def test_the_summary_validates_and_bounds_its_tables():
    s = Summary(source="bpf")
    for i in range(100):
        s.add({"reason": "UDP_CSUM", "location": f"f{i}+0x1/0x2", "src": "fd00::1", "dst": "fd00::2", "proto": "udp",
               "sport": i, "dport": 5001})
    s.finish()
    out = to_json({"summary": s})
    validate("drops", out)
    assert len(out["summary"]["by_location"]) == 65 and out["summary"]["by_location"]["other"] == 36
    assert len(out["summary"]["by_flow"]) == 32 and "_flows" not in out["summary"]
