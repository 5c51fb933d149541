"""The command line as a user meets it: exit codes, one-line errors, stdout = data."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import PCAPS

LAN = str(PCAPS / "discover-lan.pcap")


def run(cmd, *args, stdin=None):
    return subprocess.run([*cmd, *args], capture_output=True, text=stdin is None, input=stdin, timeout=60)


def one_line_error(r, code, words):
    assert r.returncode == code, (r.returncode, r.stderr)
    assert words in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_pcap_json_is_the_documented_schema_on_stdout_only(v6diag_cmd):
    r = run(v6diag_cmd, "--json", "discover", "--pcap", LAN)
    assert r.returncode == 0 and r.stderr == ""
    report = json.loads(r.stdout)
    assert set(report) == {"interface", "source", "duration_s", "packets", "malformed_packets", "hosts", "findings",
                           "vendor_data"}
    host = report["hosts"][0]
    assert set(host) == {"mac", "vendor", "mac_locally_administered", "names", "addresses", "link_local", "ipv4",
                         "iid_kind", "seen_by", "services", "is_router", "first_reply_s"}
    assert report["source"] == "pcap" and len(report["hosts"]) == 33
    lls = [h["link_local"] for h in report["hosts"]]
    import ipaddress
    assert lls == sorted(lls, key=lambda a: int(ipaddress.IPv6Address(a)))


def test_json_after_the_command_and_stdin_input(v6diag_cmd):
    data = (PCAPS / "discover-lan.pcapng").read_bytes()
    r = run(v6diag_cmd, "discover", "--pcap", "-", "--json", stdin=data)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["interface"] == "lan0" and len(report["hosts"]) == 33


def test_human_output_names_vendors_and_ssh_commands(v6diag_cmd):
    r = run(v6diag_cmd, "discover", "--pcap", LAN, "--iface", "eth0", "--user", "pi")
    assert r.returncode == 0, r.stderr
    assert "Raspberry Pi Foundation" in r.stdout and "(random/local MAC)" in r.stdout
    assert "ssh pi@fe80::ba27:ebff:fe40:1%eth0" in r.stdout


@pytest.mark.parametrize("args, code, words", [
    (("discover",), 2, "give --iface"),
    (("discover", "--pcap", LAN, "--watch"), 2, "--ipv4 work on a live"),
    (("discover", "--pcap", LAN, "--timeout", "0"), 2, "--timeout"),
    (("discover", "--pcap", "/nonexistent.pcap"), 66, "cannot open capture"),
    (("discover", "--pcap", "/etc/os-release"), 66, "not a pcap or pcapng"),
    (("discover", "-i", "no-such-if0"), 2, "no such interface"),
    (("discover", "-i", "lo"), 2, "loopback"),
])
def test_bad_input_is_one_line_with_its_exit_code(v6diag_cmd, args, code, words):
    one_line_error(run(v6diag_cmd, *args), code, words)


def test_unknown_option_is_a_usage_error(v6diag_cmd):
    r = run(v6diag_cmd, "discover", "--frobnicate")
    assert r.returncode == 2 and "No such option" in r.stderr and "Traceback" not in r.stderr


def test_truncated_capture_gives_partial_result_and_a_warning(v6diag_cmd, tmp_path):
    cut = tmp_path / "cut.pcap"
    data = (PCAPS / "discover-lan.pcap").read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    r = run(v6diag_cmd, "discover", "--pcap", str(cut), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert 0 < len(report["hosts"]) <= 33
    assert any(f["code"] == "capture-truncated" for f in report["findings"])


def test_capture_with_no_devices_exits_1_with_no_hosts(v6diag_cmd, tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes((PCAPS / "discover-lan.pcap").read_bytes()[:24])  # header only
    r = run(v6diag_cmd, "discover", "--pcap", str(empty), "--json")
    assert r.returncode == 1
    assert [f["code"] for f in json.loads(r.stdout)["findings"]] == ["no-hosts"]


def test_version_and_help(v6diag_cmd):
    assert run(v6diag_cmd, "--version").stdout.startswith("v6diag ")
    r = run(v6diag_cmd, "discover", "--help")
    assert r.returncode == 0 and "--iface" in r.stdout


def test_reader_closing_the_pipe_early_is_not_an_error(v6diag_cmd):
    """`v6diag discover --pcap ... | head -0`: the reader is gone before the first write."""
    proc = subprocess.Popen([*v6diag_cmd, "discover", "--pcap", LAN], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err


def test_a_capture_damaged_at_its_first_record_is_exit_65(v6diag_cmd, tmp_path):
    import struct

    bad = tmp_path / "bad.pcap"
    bad.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
                    + struct.pack("<IIII", 1, 2, 900000, 900000) + b"x" * 64)
    for args in (("discover", "--pcap"), ("checksum",), ("trace", "--pcap"), ("tunnel", "--pcap")):
        one_line_error(run(v6diag_cmd, *args, str(bad)), 65, "corrupt record 0")


def test_a_capture_cut_short_is_analysed_and_warned_about_on_stderr(v6diag_cmd, tmp_path):
    cut = tmp_path / "cut.pcap"
    data = (PCAPS / "discover-lan.pcap").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    r = run(v6diag_cmd, "--json", "discover", "--pcap", str(cut))
    assert r.returncode == 0 and "warning:" in r.stderr and "cut short" in r.stderr
    assert json.loads(r.stdout)["hosts"]


def test_shell_completion_is_on(v6diag_cmd):
    import os

    r = run(v6diag_cmd, "--show-completion", "bash")
    assert r.returncode == 0 and "_v6diag_completion" in r.stdout
    env = {**os.environ, "_V6DIAG_COMPLETE": "complete_bash", "COMP_WORDS": "v6diag tr", "COMP_CWORD": "1"}
    done = subprocess.run(v6diag_cmd, capture_output=True, text=True, env=env)
    assert "trace" in done.stdout.split() and "discover" not in done.stdout.split()


def test_any_is_refused_where_a_command_must_probe_one_link(v6diag_cmd):
    one_line_error(run(v6diag_cmd, "discover", "-i", "any"), 2, "one link at a time")
    one_line_error(run(v6diag_cmd, "trace", "-i", "any", "--solicit-router"), 2, "-i any only listens")


def test_global_options_work_after_the_command_name(v6diag_cmd):
    r = run(v6diag_cmd, "discover", "--pcap", LAN, "-v", "--json")
    assert r.returncode == 0 and "vendor data:" in r.stderr and json.loads(r.stdout)["hosts"]
    r = run(v6diag_cmd, "discover", "--pcap", "/nonexistent.pcap", "-vv")
    assert r.returncode == 66 and "Traceback" in r.stderr  # -vv: the traceback, wherever it was given


@pytest.mark.parametrize("option", ["--src", "--dst"])
def test_conntrack_addresses_are_validated(v6diag_cmd, option):
    one_line_error(run(v6diag_cmd, "conntrack", "--from", str(PCAPS / "conntrack-kernel-6.1.ndjson"), option,
                       "notip"), 2, f"{option} needs an IPv4 or IPv6 address")
