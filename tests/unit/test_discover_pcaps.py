"""Passive discovery on the bundled captures, checked against what the lab that
recorded them really had (pcaps/*.truth.json, read back from the kernel with
`ip -j addr` when the capture was made; see tests/tools/record_pcaps.py)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PCAPS
from v6diag.discover.analyse import DiscoveryAnalysis
from v6diag.core.capture import CaptureReader

EXPECTED_IID = {"eui64": "eui64", "low-byte": "low-byte", "random": "random", "stable-privacy": "random"}


def discover(path):
    reader = CaptureReader(str(path))
    analysis = DiscoveryAnalysis()
    for frame in reader:
        analysis.feed(frame)
    assert reader.problem is None
    return analysis.report(None, 0.0, "pcap")


def truth(name):
    return json.loads((PCAPS / name).read_text())


@pytest.mark.parametrize("capture", ["discover-lan.pcap", "discover-lan.pcapng"])
def test_every_lab_host_found_with_vendor_addresses_and_iid(capture):
    t = truth("discover-lan.truth.json")
    report = discover(PCAPS / capture)
    found = {h.mac: h for h in report.hosts}
    expected = {h["mac"]: h for h in t["hosts"]}
    assert len(expected) >= 30
    # every lab host, plus the prober itself (a passive reader sees it too)
    assert set(found) == set(expected) | {t["prober_mac"]}
    for mac, want in expected.items():
        got = found[mac]
        assert got.link_local == want["link_local"], mac
        assert sorted(got.addresses) == sorted(want["addresses"]), mac
        assert got.iid_kind == EXPECTED_IID[want["iid"]], mac
        if want["vendor"] is None:
            assert got.vendor is None and got.mac_locally_administered, mac
        else:
            assert got.vendor and want["vendor"].lower() in got.vendor.lower(), (mac, got.vendor)
        assert got.is_router == want["router"], mac


def test_who_answers_what_matches_each_hosts_configuration():
    t = truth("discover-lan.truth.json")
    found = {h.mac: h for h in discover(PCAPS / "discover-lan.pcap").hosts}
    for want in t["hosts"]:
        seen = set(found[want["mac"]].seen_by)
        behaviour = want["behaviour"]
        assert ("echo" in seen) == (behaviour == "answers-echo"), (want["name"], seen)
        # the no-upper-layer probe passes every echo filter
        assert "dest-opt-nh59" in seen, (want["name"], seen)
        # with echo dropped by ip6tables, the echo behind the option is dropped too
        assert ("dest-opt-icmp" in seen) == (not behaviour.startswith("ip6tables")), (want["name"], seen)
        assert ("mld" in seen) == (behaviour != "ip6tables-drops-echo-and-mld-queries"), (want["name"], seen)
        assert "ns" in seen


def test_first_reply_times_are_measured_from_the_probe():
    report = discover(PCAPS / "discover-lan.pcap")
    replies = [h.first_reply_s for h in report.hosts if "echo" in h.seen_by]
    assert replies and all(r is not None and 0 <= r < 1.0 for r in replies)


def test_passive_link_up_capture_finds_booting_devices_by_dad_rs_and_mld():
    t = truth("link-up-passive.truth.json")
    found = {h.mac: h for h in discover(PCAPS / "link-up-passive.pcapng").hosts}
    for want in t["hosts"]:
        got = found[want["mac"]]
        assert {"dad", "mld"} <= set(got.seen_by), got.seen_by
        assert sorted(got.addresses) == sorted(want["addresses"])
        assert got.first_reply_s is None  # nothing was probed: nothing is a reply


def test_names_services_and_ipv4_read_from_the_naming_capture():
    """pcaps/discover-names.pcapng: real avahi-daemons answered; --ipv4 swept the /24."""
    t = truth("discover-names.truth.json")
    found = {h.mac: h for h in discover(PCAPS / "discover-names.pcapng").hosts}
    assert set(found) == {h["mac"] for h in t["hosts"]} | {t["prober_mac"]}
    for want in t["hosts"]:
        got = found[want["mac"]]
        assert [n.name for n in got.names if n.source == "mdns"] == (
            [f"{want['mdns_name']}.local"] if want["mdns_name"] else [])
        assert {(s.type, s.port) for s in got.services} == {tuple(s) for s in want["services"]}
        assert got.ipv4 == ([want["ipv4"]] if want["ipv4"] else [])
        assert got.link_local == want["link_local"]
