"""Merging sightings into devices."""

from __future__ import annotations

from v6diag.core.inet import multicast_mac, solicited_node
from v6diag.discover.addresses import eui64_address, iid_kind
from v6diag.discover.book import NeighbourBook
from v6diag.core.vendor import vendor_of
from v6diag.discover.report import Sighting

PI = "b8:27:eb:89:bc:51"


def test_echo_reply_counts_only_when_it_answers_a_multicast_echo():
    book = NeighbourBook()
    book.note_multicast_echo(7, 10.0)
    book.add(Sighting(10.01, PI, "2001:db8::9c5", "echo-reply:7"))
    book.add(Sighting(10.02, "00:11:32:00:00:01", "2001:db8:ff::1", "echo-reply:8"))  # someone's unicast ping
    hosts = {h.mac: h for h in book.hosts()}
    assert hosts[PI].seen_by == ["echo"] and hosts[PI].addresses == ["2001:db8::9c5"]
    assert hosts[PI].first_reply_s == 0.01
    other = hosts["00:11:32:00:00:01"]
    assert other.seen_by == ["traffic"] and other.addresses == []  # may have been routed: not its address


def test_one_device_many_addresses_and_new_address_changes():
    book = NeighbourBook()
    first = book.add(Sighting(1, PI, "fe80::ba27:ebff:fe89:bc51", "mld"))
    again = book.add(Sighting(2, PI, "fe80::ba27:ebff:fe89:bc51", "ns", is_router=True))
    more = book.add(Sighting(3, PI, "2001:db8::1", "dest-opt-nh59"))
    assert (first.kind, again, more.kind) == ("host", None, "address")
    (host,) = book.hosts()
    assert host.link_local == "fe80::ba27:ebff:fe89:bc51" and host.is_router and host.iid_kind == "eui64"
    assert host.seen_by == ["dest-opt-nh59", "mld", "ns"] and host.vendor == "Raspberry Pi Foundation"


def test_excluded_mac_and_conflicts():
    book = NeighbourBook(exclude_macs=frozenset({"02:00:00:00:00:01"}))
    assert book.add(Sighting(1, "02:00:00:00:00:01", "fe80::1", "traffic")) is None
    book.add(Sighting(1, PI, "fe80::5", "ns"))
    book.add(Sighting(1, "00:11:32:00:00:01", "fe80::5", "ns"))
    assert book.conflicts() == {"fe80::5": ["00:11:32:00:00:01", PI]}


def test_ns_candidates_cover_eui64_guesses_in_each_prefix_and_skip_confirmed():
    book = NeighbourBook()
    book.note_multicast_echo(3, 0.5)
    book.add(Sighting(1, PI, "fe80::ba27:ebff:fe89:bc51", "ns"))  # confirmed
    book.add(Sighting(1, PI, "2001:db8::77", "echo-reply:3"))
    cands = dict(book.ns_candidates(["2001:db8::"]))
    assert "fe80::ba27:ebff:fe89:bc51" not in cands
    assert cands["2001:db8::ba27:ebff:fe89:bc51"] is False  # a guess
    assert cands["2001:db8::77"] is True  # heard: worth a second try


def test_address_helpers():
    assert eui64_address("fe80::", PI) == "fe80::ba27:ebff:fe89:bc51"
    assert solicited_node("2001:db8::ba27:ebff:fe89:bc51") == "ff02::1:ff89:bc51"
    assert multicast_mac("ff02::1:ff89:bc51") == "33:33:ff:89:bc:51"
    assert iid_kind("fe80::9c5", PI) == "low-byte"
    assert iid_kind("fe80::211:32ff:fe00:1", PI) == "eui64-other-mac"
    assert iid_kind("fe80::b41f:18a3:a97c:4a0c", PI) == "random"


def test_vendor_lookup_is_offline_and_flags_local_macs():
    assert vendor_of("00:11:32:aa:bb:cc") == "Synology Incorporated"
    assert vendor_of("02:11:32:aa:bb:cc") is None  # U/L bit set: randomised, never guessed
