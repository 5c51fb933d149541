"""`v6diag tunnel` without root: the pure checks on hand-written facts shaped
like what sources.tunnel reads, the nft rule walker on real `nft -j` output,
the underlay decoder on scapy-built frames, and the bundled captures."""

from __future__ import annotations

import json
import subprocess

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6PacketTooBig, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

from tests.conftest import PCAPS
from v6diag.tunnel import checks as an
from v6diag.core import firewall as fw
from v6diag.tunnel import underlay_checks as lv
from v6diag.tunnel.facts import Addr, HostFacts, ProbeResult, Route, TunnelLink, WgPeer
from v6diag.tunnel.decode import underlay

NOW = 1_700_000_000.0


def sit_client(**kw) -> HostFacts:
    """The seed's client: sit 10.0.0.2 -> 10.0.0.1, ::3/127, default via ::2."""
    t = TunnelLink("sit-ipv6", "sit", True, True, kw.pop("mtu", 1480), local="10.0.0.2", remote="10.0.0.1",
                   underlay="eth0", underlay_mtu=1500, addresses=[Addr("2001:db8:1::3", 127), Addr("fe80::a00:2", 64)])
    routes = kw.pop("routes", [Route("2001:db8:1::2/127", "sit-ipv6", proto="kernel"),
                               Route("::/0", "sit-ipv6", "2001:db8:1::2", "static")])
    return HostFacts(t, NOW, routes, **kw)


def sit_server(proxy=True, all_fwd=1, ext_fwd=1, proxy_ndp=1, firewall=None, **kw) -> HostFacts:
    t = TunnelLink("sit-ipv6", "sit", True, True, 1480, local="10.0.0.1", remote="10.0.0.2", underlay="u0",
                   underlay_mtu=1500, addresses=[Addr("2001:db8:1::2", 127)])
    routes = [Route("2001:db8:1::/64", "e0", proto="kernel"), Route("2001:db8:1::2/127", "sit-ipv6", proto="kernel"),
              Route("::/0", "e0", "2001:db8:1::ff", kw.pop("default_proto", "static"))]
    return HostFacts(t, NOW, routes, "e0", kw.pop("ext_addresses", [Addr("2001:db8:1::1", 64)]),
                     {"all": {"forwarding": all_fwd, "proxy_ndp": 0}, "e0": {"forwarding": ext_fwd,
                      "proxy_ndp": proxy_ndp, "accept_ra": kw.pop("accept_ra", 1)}},
                     [("2001:db8:1::3", "e0")] if proxy else [], firewall)


def ids(checks, status="fail") -> set[str]:
    return {c.code for c in checks if c.status == status}


def check(checks, cid):
    return next(c for c in checks if c.code == cid)


# -- configuration checks -----------------------------------------------------
def test_good_client_and_server_pass_and_roles_are_detected():
    c, s = sit_client(), sit_server(firewall={"nftables": []})
    assert an.detect_role(c) == "client" and an.detect_role(s) == "server"
    assert ids(an.config_checks(c, "client")) == set() and ids(an.config_checks(s, "server")) == set()
    assert an.peer_addresses(c, "client") == ["2001:db8:1::2"]
    assert an.peer_addresses(s, "server") == ["2001:db8:1::3"]  # the other half of the /127 (RFC 6164)


def test_no_proxy_entry_names_address_and_external_interface():
    got = check(an.config_checks(sit_server(proxy=False), "server"), "ndp-proxy")
    assert got.status == "fail" and got.fix == "ip -6 neigh add proxy 2001:db8:1::3 dev e0"
    off = check(an.config_checks(sit_server(proxy_ndp=0), "server"), "ndp-proxy")
    assert off.fix == "sysctl -w net.ipv6.conf.e0.proxy_ndp=1"


def test_proxy_not_needed_when_client_is_outside_the_upstream_prefix():
    f = sit_server(proxy=False, ext_addresses=[Addr("2001:db8:ffff::1", 64)])
    assert check(an.config_checks(f, "server"), "ndp-proxy").status == "pass"


def test_forwarding_all_off_and_external_interface_off():
    assert check(an.config_checks(sit_server(all_fwd=0), "server"), "forwarding").fix == \
        "sysctl -w net.ipv6.conf.all.forwarding=1"
    # all=1 but e0=0: ndisc_recv_ns answers proxied NS only where forwarding is on
    assert check(an.config_checks(sit_server(ext_fwd=0), "server"), "forwarding").fix == \
        "sysctl -w net.ipv6.conf.e0.forwarding=1"


@pytest.mark.parametrize("kind,family,underlay_mtu,best", [
    ("sit", 4, 1500, 1480), ("wireguard", 4, 1500, 1440), ("wireguard", 6, 1500, 1420),
    ("vxlan", 4, 1500, 1450), ("vxlan", 6, 1500, 1430), ("sit", 4, 1492, 1472),  # PPPoE underlay
])
def test_mtu_limit_is_underlay_minus_overhead(kind, family, underlay_mtu, best):
    t = TunnelLink("t0", kind, True, True, 1500, remote="192.0.2.1", underlay="eth0", underlay_mtu=underlay_mtu,
                   underlay_family=family)
    assert an.mtu(t).fix == f"ip link set dev t0 mtu {best}"
    t.mtu = best
    assert an.mtu(t).status == "pass"
    t.mtu = 1200
    assert an.mtu(t).fix == "ip link set dev t0 mtu 1280"  # RFC 8200 5


def test_client_without_route_gets_the_route_command():
    f = sit_client(routes=[Route("2001:db8:1::2/127", "sit-ipv6", proto="kernel"), Route("::/0", "eth0", "fe80::1")])
    got = check(an.config_checks(f, "client"), "route")
    assert got.status == "fail" and got.fix == "ip -6 route replace default dev sit-ipv6"
    assert "leaves by eth0" in got.message


def test_link_down_and_local_not_owned():
    f = sit_client()
    f.tunnel.up, f.tunnel.local_owned = False, False
    checks = an.config_checks(f, "client")
    assert check(checks, "link-up").fix == "ip link set dev sit-ipv6 up"
    assert check(checks, "endpoints").fix == "ip tunnel change sit-ipv6 local <THIS-HOST-IPV4>"


def test_wireguard_handshake_and_allowed_ips():
    peer = WgPeer("S3rv3rKey=", "10.0.0.1:51820", 0.0, ("2001:db8:1::2/128",))
    t = TunnelLink("wg0", "wireguard", True, True, 1420, remote="10.0.0.1", port=51820, underlay="eth0",
                   underlay_mtu=1500, addresses=[Addr("2001:db8:1::3", 127)], peers=[peer])
    f = HostFacts(t, NOW, [Route("::/0", "wg0", None, "static")])
    checks = an.config_checks(f, "client")
    assert check(checks, "wg-handshake").status == "fail"
    allowed = check(checks, "wg-allowed-ips")
    assert allowed.status == "fail" and "::/0" in allowed.message
    assert allowed.fix == "wg set wg0 peer S3rv3rKey= allowed-ips 2001:db8:1::2/128,::/0"
    t.peers = [WgPeer("S3rv3rKey=", "10.0.0.1:51820", NOW - 30, ("::/0",))]
    assert ids(an.config_checks(f, "client")) == set()


def test_accept_ra_2_needed_when_the_router_uses_slaac():
    f = sit_server(default_proto="ra", ext_addresses=[Addr("2001:db8:1::1", 64, dynamic=True)],
                   firewall={"nftables": []})
    assert check(an.config_checks(f, "server"), "accept-ra").fix == "sysctl -w net.ipv6.conf.e0.accept_ra=2"
    f.sysctl["e0"]["accept_ra"] = 2
    assert check(an.config_checks(f, "server"), "accept-ra").status == "pass"


# -- firewall (real `nft -j list ruleset` output, counters removed) ------------
IPTABLES_FORWARD_DROP = {"nftables": [
    {"chain": {"family": "ip6", "table": "filter", "name": "FORWARD", "handle": 1, "type": "filter",
               "hook": "forward", "prio": 0, "policy": "drop"}},
    {"rule": {"family": "ip6", "table": "filter", "chain": "FORWARD", "handle": 3,
              "expr": [{"xt": {"type": "match", "name": "conntrack"}}, {"accept": None}]}}]}
INPUT_DROPS_41_AND_NATIVE_FORWARD = {"nftables": [
    {"table": {"family": "ip", "name": "filter", "handle": 1}},
    {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "type": "filter", "hook": "input",
               "prio": 0, "policy": "accept"}},
    {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 2,
              "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "ipv6"}}, {"drop": None}]}},
    {"table": {"family": "inet", "name": "fw", "handle": 2}},
    {"chain": {"family": "inet", "table": "fw", "name": "forward", "handle": 1, "type": "filter", "hook": "forward",
               "prio": 0, "policy": "drop"}},
    {"rule": {"family": "inet", "table": "fw", "chain": "forward", "handle": 2, "expr": [
        {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": None}]}},
    {"rule": {"family": "inet", "table": "fw", "chain": "forward", "handle": 3, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "sit-ipv6"}}, {"accept": None}]}}]}


def test_forward_policy_drop_from_ip6tables():
    got = check(an.config_checks(sit_server(firewall=IPTABLES_FORWARD_DROP), "server"), "forward-policy")
    assert got.status == "fail" and "policy drop" in got.message
    assert got.fix == "ip6tables -I FORWARD -i sit-ipv6 -j ACCEPT; ip6tables -I FORWARD -o sit-ipv6 -j ACCEPT"


def test_native_nft_forward_accepting_the_tunnel_passes_and_input_drop_of_41_fails():
    f = sit_server(firewall=INPUT_DROPS_41_AND_NATIVE_FORWARD)
    assert check(an.config_checks(f, "server"), "forward-policy").status == "pass"
    got = an.encap_firewall(f)
    assert got.code == "proto41" and got.status == "fail" and "ip filter INPUT" in got.message
    assert got.fix == "iptables -I INPUT -s 10.0.0.2 -p 41 -j ACCEPT"


def test_rule_with_unknown_match_never_decides():
    rules = {"nftables": [
        {"chain": {"family": "ip", "table": "t", "name": "in", "hook": "input", "policy": "accept"}},
        {"rule": {"family": "ip", "table": "t", "chain": "in", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "192.0.2.9"}},
            {"drop": None}]}}]}
    verdict, skipped = fw.evaluate(rules, "input", ("ip",), {"l4proto": 41})
    assert verdict is None and len(skipped) == 1


# -- underlay decoding and live verdicts ---------------------------------------
def _sit(src, dst, inner) -> bytes:
    return bytes(Ether() / IP(src=src, dst=dst, proto=41) / inner)


def test_decode_6in4_echo_vxlan_arp_and_icmp_errors():
    u = underlay(1, _sit("10.0.0.2", "10.0.0.1", IPv6(src="2001:db8:1::3", dst="2001:db8:1::2") /
                         ICMPv6EchoRequest(id=7, seq=1)))
    assert (u.kind, u.src, u.dst, u.inner.icmp_type, u.inner.echo_id) == ("6in4", "10.0.0.2", "10.0.0.1", 128, 7)
    vx = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5555, dport=4789) / VXLAN(vni=42) /
               Ether() / IPv6(src="2001:db8:1::2", dst="2001:db8:1::3") / ICMPv6EchoReply(id=7, seq=1))
    assert underlay(1, vx).kind == "vxlan" and underlay(1, vx).inner.icmp_type == 129
    quoted = IP(src="10.0.0.2", dst="10.0.0.1", proto=41) / IPv6() / ICMPv6EchoRequest()
    err = underlay(1, bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=3, code=3) / quoted))
    assert (err.kind, err.error, err.quoted_kind, err.quoted_dst) == ("icmp-error", "port-unreachable", "6in4",
                                                                      "10.0.0.1")
    ptb = underlay(1, _sit("10.0.0.1", "10.0.0.2", IPv6() / ICMPv6PacketTooBig(mtu=1480) / IPv6()))
    assert ptb.inner.mtu == 1480
    arp = underlay(1, bytes(Ether() / ARP(op=1, psrc="10.0.0.2", pdst="10.0.0.9")))
    assert (arp.kind, arp.arp_op, arp.dst) == ("arp", 1, "10.0.0.9")


@pytest.mark.parametrize("data", [b"", b"\x00" * 13, bytes(Ether() / IP(proto=41) / b"\x60"),
                                  bytes(Ether(type=0x86DD)) + b"\x60\x00\x00\x00\xff\xff\x3c\x40" + b"\x00" * 34])
def test_decoder_never_raises_on_cut_frames(data):
    u = underlay(1, data)
    assert u.kind in (None, "6in4") and (u.inner is None)  # cut inner IPv6 is not believed


def _tally(frames) -> lv.EncapTally:
    t = lv.EncapTally()
    for f in frames:
        t.feed(underlay(1, f))
    return t


def test_live_verdicts_answered_dropped_and_wrong_remote():
    t = sit_client().tunnel
    req = _sit("10.0.0.2", "10.0.0.1", IPv6(src="2001:db8:1::3", dst="2001:db8:1::2") / ICMPv6EchoRequest())
    rep = _sit("10.0.0.1", "10.0.0.2", IPv6(src="2001:db8:1::2", dst="2001:db8:1::3") / ICMPv6EchoReply())
    assert lv.encap_live(t, _tally([req, rep]), "10.0.0.1", "eth0").status == "pass"
    dropped = lv.encap_live(t, _tally([req, req, req]), "10.0.0.1", "eth0")
    assert dropped.status == "fail" and "3 encapsulated echo requests/NS" in dropped.message
    icmp = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=3, code=3) /
                 IP(src="10.0.0.2", dst="10.0.0.1", proto=41) / IPv6())
    wrong = lv.encap_live(t, _tally([req, icmp]), "10.0.0.1", "eth0")
    assert wrong.status == "fail" and "ICMP port-unreachable" in wrong.message and "remote 10.0.0.2" in wrong.fix
    arp = bytes(Ether() / ARP(op=1, psrc="10.0.0.2", pdst="10.0.0.1"))
    assert "ARP requests for 10.0.0.1 unanswered" in lv.encap_live(t, _tally([arp, arp]), "10.0.0.1", "eth0").message


def test_reach_target_blames_the_server_when_the_peer_answers():
    ok = [ProbeResult("2001:db8:1::2", 64, True, 1.5)]
    lost = [ProbeResult("2001:db8::ff", 64, False, error="timeout")] * 3
    got = lv.reach("reach-target", "2001:db8::ff", lost, peer_ok=True)
    assert got.status == "fail" and "--role server" in got.fix
    assert lv.reach("reach-peer", "2001:db8:1::2", ok).status == "pass"


def test_pmtu_from_packet_too_big_and_largest_working_size():
    t = sit_client(mtu=1500).tunnel
    full = ProbeResult("2001:db8:1::2", 1500, False, error="ptb", mtu=1480)
    got = lv.pmtu(t, "2001:db8:1::2", full, 1480)
    assert got.status == "fail" and got.fix == "ip link set dev sit-ipv6 mtu 1480" and "MTU 1480" in got.message


# -- bundled captures (pcaps/README.md; recorded by `python -m tests.tunnel_lab`) --
TRUTH = {t["file"]: t for t in json.loads((PCAPS / "tunnel-vxlan.truth.json").read_text())}


def _pcap_report(name: str) -> tuple[int, dict]:
    from v6diag.core.report import to_json
    from v6diag.tunnel.command import _from_capture

    r = to_json(_from_capture(str(PCAPS / name), ()))
    return (0 if r["ok"] else 1), r


def test_capture_of_a_working_tunnel():
    truth = TRUTH["tunnel-vxlan-ok.pcap"]
    _, r = _pcap_report("tunnel-vxlan-ok.pcap")
    got = {c["id"]: c for c in r["checks"]}
    assert r["ok"] and got["encap"]["status"] == "pass" and got["reach-peer"]["status"] == "pass"
    # every echo v6diag sent live through the tunnel is in the capture, answered
    n = truth["live_underlay"]["echo_requests"]
    assert got["reach-peer"]["message"] == f"{n}/{n} inner ICMPv6 echo requests answered"
    assert {(f["src"], f["dst"]) for f in r["underlay"]["flows"]} == {
        (truth["client_underlay"], truth["server_underlay"]), (truth["server_underlay"], truth["client_underlay"])}


def test_capture_with_encapsulation_dropped_at_server():
    truth = TRUTH["tunnel-vxlan-dropped.pcap"]
    assert truth["faults"] == ["drop-encap"]
    _, r = _pcap_report("tunnel-vxlan-dropped.pcap")
    encap = next(c for c in r["checks"] if c["id"] == "encap")
    assert not r["ok"] and encap["status"] == "fail"
    assert encap["message"].startswith(f"vxlan: {truth['client_underlay']} sent ")
    assert "no answer came back" in encap["message"] and truth["server_underlay"] in encap["fix"]


def test_capture_with_oversized_tunnel_mtu_shows_fragmentation():
    _, r = _pcap_report("tunnel-vxlan-mtu1500.pcap")
    got = {c["id"]: c for c in r["checks"]}
    assert got["pmtu"]["status"] == "warn" and "fragmented" in got["pmtu"]["message"]
    assert got["reach-peer"]["status"] == "pass"  # the fragmented echo reply still pairs with its request


def test_cli_reads_the_capture_and_exits_1_on_a_failing_check(v6diag_cmd):
    r = subprocess.run([*v6diag_cmd, "--json", "tunnel", "--pcap", str(PCAPS / "tunnel-vxlan-dropped.pcap")],
                       capture_output=True, text=True)
    report = json.loads(r.stdout)
    assert r.returncode == 1 and report["ok"] is False and report["role"] == "unknown"
    assert all(set(c) == {"id", "status", "message", "fix"} for c in report["checks"])
    r = subprocess.run([*v6diag_cmd, "tunnel", "--pcap", str(PCAPS / "tunnel-vxlan-ok.pcap")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "all checks passed" in r.stdout


def test_usage_errors_are_one_line(v6diag_cmd):
    for args, text in ((["tunnel"], "give --iface IF"), (["tunnel", "-i", "x", "--role", "both"], "--role is"),
                       (["tunnel", "--pcap", "x.pcap", "-i", "t0"], "--pcap reads a capture")):
        r = subprocess.run([*v6diag_cmd, *args], capture_output=True, text=True)
        assert r.returncode == 2 and text in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


SIT_TRUTH = {t["file"]: t for t in json.loads((PCAPS / "tunnel-sit.truth.json").read_text())}


@pytest.mark.parametrize("name", sorted(SIT_TRUTH))
def test_sit_captures_from_the_stock_kernel(name):
    """Recorded in the tests/kernel guest (real sit, protocol 41)."""
    truth = SIT_TRUTH[name]
    _, r = _pcap_report(name)
    got = {c["id"]: c for c in r["checks"]}
    assert {f["kind"] for f in r["underlay"]["flows"]} == {"6in4"}
    sent = truth["live_underlay"]["echo_requests"]
    assert r["underlay"]["echo_requests"] == sent  # every probe v6diag sent live is in the capture
    if truth["faults"] == ["drop-encap"]:
        assert got["proto41"]["status"] == "fail" and got["reach-peer"]["status"] == "fail"
        assert got["proto41"]["message"] == (f"6in4: {truth['client_underlay']} sent {sent} echo requests/NS to "
                                             f"{truth['server_underlay']}, no answer came back")
        assert "passes protocol 41" in got["proto41"]["fix"]
    else:
        assert r["ok"] and got["proto41"]["status"] == "pass"
        assert got["reach-peer"]["message"] == f"{sent}/{sent} inner ICMPv6 echo requests answered"


def test_tunnel_kind_from_interface_name_and_module_names():
    from v6diag.tunnel.host_kinds import MODULES, kind_from_name

    assert [kind_from_name(n) for n in ("he-ipv6", "sit-ipv6", "wg0", "vxlan100", "ip6tnl1", "eth0")] == \
        ["sit", "sit", "wireguard", "vxlan", "ip6tnl", None]
    assert MODULES["ip6tnl"][0] == "ip6_tunnel" and MODULES["sit"] == ("sit", "CONFIG_IPV6_SIT")


def test_wireguard_captures_from_the_stock_kernel():
    truth = {t["file"]: t for t in json.loads((PCAPS / "tunnel-wireguard.truth.json").read_text())}
    _, ok = _pcap_report("tunnel-wireguard-ok.pcap")
    _, dropped = _pcap_report("tunnel-wireguard-dropped.pcap")
    assert ok["ok"] and {c["id"]: c["status"] for c in ok["checks"]}["encap"] == "pass"
    assert ok["underlay"]["flows"] == sorted(truth["tunnel-wireguard-ok.pcap"]["live_underlay"]["flows"],
                                             key=lambda f: (f["kind"], f["src"], f["dst"]))
    encap = next(c for c in dropped["checks"] if c["id"] == "encap")
    assert encap["status"] == "fail" and "1 handshake initiations, no response" in encap["message"]
    assert dropped["underlay"]["wireguard_messages"] == {"handshake-initiation": 1}
    assert "WireGuard encrypts it" in next(c for c in dropped["checks"] if c["id"] == "reach-peer")["message"]
