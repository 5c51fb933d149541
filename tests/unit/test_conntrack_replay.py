"""`conntrack --from`: events recorded on the stock kernel (pcaps/conntrack-kernel-6.1.ndjson,
written from the kernel tier's real runs) explained again without root, and a
recorded file treated as hostile input."""

from __future__ import annotations

import json
import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import PCAPS
from v6diag.conntrack.classify import Filter, explain
from v6diag.core.errors import InputError
from v6diag.conntrack.render import line
from v6diag.conntrack.recorded import RecordedEvents

SAMPLE = PCAPS / "conntrack-kernel-6.1.ndjson"


def test_replay_names_every_cause_and_the_fix(v6diag_cmd):
    r = subprocess.run([*v6diag_cmd, "conntrack", "--from", str(SAMPLE), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    events, summary = lines[:-1], lines[-1]
    assert summary["mode"] == "recorded" and summary["events"] == len(events) == sum(summary["causes"].values())
    oif = [e for e in events if e["cause"] == "nat-oif-changed"]
    assert oif and all(e["orig"]["src"] == "192.168.1.10" and e["mark"] == 0 for e in oif)
    assert {"timeout", "userspace-delete", "userspace-flush", "tcp-rst", "masquerade-cleanup"} <= set(summary["causes"])


def test_replay_filters_and_human_summary(v6diag_cmd):
    r = subprocess.run([*v6diag_cmd, "conntrack", "--from", str(SAMPLE), "--src", "192.168.1.10", "--proto", "tcp"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "nat-oif-changed: tcp 192.168.1.10 -> 203.0.113.80" in r.stdout and "[seen_reply," in r.stdout
    assert "userspace-flush" not in r.stdout and "entries destroyed" in r.stdout


def test_not_ndjson_is_a_one_line_error(v6diag_cmd, tmp_path):
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"orig": {"src": "10.0.0.1"}, "reply": {}, "stack": "nf_ct_delete"}\n')
    for path in (bad, PCAPS / "discover-lan.pcap", tmp_path / "missing"):
        r = subprocess.run([*v6diag_cmd, "conntrack", "--from", str(path)], capture_output=True, text=True)
        assert r.returncode == 66 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(
        ["orig", "reply", "stack", "status", "time", "mark", "src", "sport", "summary", "lost"]), c, max_size=6),
    max_leaves=20).map(json.dumps)), max_size=5))
def test_any_file_content_is_events_or_input_error(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fz") / "x.ndjson"
    path.write_text("\n".join(lines) + "\n")
    src = RecordedEvents(path)
    try:
        for ev in src.events():
            assert isinstance(ev["orig"], dict) and isinstance(ev.get("stack", []), list)
            explain(ev)  # and what the command does with it next
            Filter(port=1, src="10.0.0.1", proto="tcp").match(ev)
            assert ev["cause"] in line(ev)
    except InputError:
        pass
    finally:
        src.close()


def test_bad_options_are_usage_errors(v6diag_cmd):
    for args in (["--probe", "kprobes"], ["--port", "0"], ["--mark", "-1"], ["--proto", "tcpp"], ["-d", "0"]):
        r = subprocess.run([*v6diag_cmd, "conntrack", "--from", str(SAMPLE), *args], capture_output=True, text=True)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip(), (args, r.stderr)


def test_ebpf_flag_prints_the_program_and_its_cflags(v6diag_cmd):
    r = subprocess.run([*v6diag_cmd, "conntrack", "--ebpf", "--port", "443", "--proto", "tcp", "--mark", "48"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "-DFILTER_PORT=443" in r.stdout and "-DFILTER_PROTO=6" in r.stdout
    assert "-DFILTER_MARK=48u" in r.stdout and "kprobe__nf_ct_delete" in r.stdout
