"""`discover` names devices: real avahi-daemons (one per namespace, each in its
own mount namespace) with chosen host names and published services answer the
mDNS queries; IPv4 comes from ARP (the --ipv4 sweep); a device that answers
only the unknown-option probe is still found. Teardown is the lab's."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import pytest

from tests.conftest import require_root, require_tools
from tests.integration.test_discover_lab import Lines
from tests.lab import IPV4_PREFIX, HostSpec, LanLab, names_hosts

HOSTS = names_hosts()


@pytest.fixture(scope="module")
def lan(build_module_lab):
    require_root()
    require_tools("ip", "ip6tables", "avahi-daemon", "unshare")
    return build_module_lab(LanLab([HostSpec(**vars(h)) for h in HOSTS]))


def discover(lan, v6diag_cmd, *args):
    r = lan.exec_prober(*v6diag_cmd, "discover", "-i", lan.PROBER_IF, "--json", *args)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout), r


def by_mac(report):
    return {h["mac"]: h for h in report["hosts"]}


def test_names_and_services_from_real_mdns_responders(lan, v6diag_cmd):
    report, _ = discover(lan, v6diag_cmd)
    hosts = by_mac(report)
    assert set(hosts) == {h.mac for h in lan.hosts}  # the unknown-option-only device too
    for want in lan.hosts:
        got = hosts[want.mac]
        mdns = [n["name"] for n in got["names"] if n["source"] == "mdns"]
        if want.mdns_name:
            assert mdns and mdns[0] == f"{want.mdns_name}.local", got
            assert "mdns" in got["seen_by"]
            assert {(s["type"], s["port"]) for s in got["services"]} == set(want.services), got
            assert all(s["name"] == want.mdns_name for s in got["services"])
        else:
            assert mdns == [] and got["services"] == [], got
    assert "dest-opt-nh59" in hosts[HOSTS[3].mac]["seen_by"] and "echo" not in hosts[HOSTS[3].mac]["seen_by"]


def test_ipv4_sweep_merges_ipv4_by_mac(lan, v6diag_cmd):
    report, _ = discover(lan, v6diag_cmd, "--ipv4")
    hosts = by_mac(report)
    for want in lan.hosts:
        assert hosts[want.mac]["ipv4"] == ([want.ipv4] if want.ipv4 else []), hosts[want.mac]
        if want.ipv4:
            assert "arp" in hosts[want.mac]["seen_by"]


def test_the_human_table_names_devices_and_ssh_uses_the_mdns_name(lan, v6diag_cmd):
    r = lan.exec_prober("env", "COLUMNS=120", *v6diag_cmd, "discover", "-i", lan.PROBER_IF, "--user", "pi", "--ipv4")
    assert r.returncode in (0, 1), r.stderr
    assert "ssh pi@raspberrypi.local" in r.stdout and "ssh pi@nas.local" in r.stdout
    assert "raspberrypi.local" in r.stdout.split("Reach them")[0]  # in the Name column
    assert f"{IPV4_PREFIX}12" in r.stdout


def test_no_names_sends_no_name_queries(lan, v6diag_cmd):
    report, _ = discover(lan, v6diag_cmd, "--no-names")
    assert all(h["names"] == [] and h["services"] == [] for h in report["hosts"])
    assert {h["mac"] for h in report["hosts"]} == {h.mac for h in lan.hosts}


def test_watch_prints_a_newcomers_name_and_ssh_to_it(v6diag_cmd, build_lab):
    """A device that boots during --watch announces itself over mDNS (and is asked):
    its name and `ssh pi@name.local` are printed as they arrive."""
    require_root()
    require_tools("avahi-daemon", "unshare")
    lan = build_lab(LanLab([names_hosts()[0]]))
    proc = lan.spawn(lan.prober, "env", "COLUMNS=150", *v6diag_cmd, "discover", "-i", lan.PROBER_IF, "--watch",
                     "--user", "pi", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = Lines(proc.stdout)
    try:
        assert "watching lan0" in proc.stderr.readline()
        lan.add_host(HostSpec("h05", "00:1b:21:45:05:05", "Intel", "eui64", "answers-echo", mdns_name="printer",
                              services=(("_ipp._tcp", 631),)), dad=True)
        out.wait_for("ssh pi@printer.local")
        out.wait_for("service _ipp._tcp:631 on")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        out.thread.join(timeout=20)
    assert proc.returncode == 0
    tail = "".join(out.lines).partition("Reach them:")[2]
    assert re.search(r"name printer\.local for printer\.local\s+\S+\s+00:1b:21:45:05:05", tail), tail
