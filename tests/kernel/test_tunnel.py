"""`v6diag tunnel` against real sit (6in4, RFC 4213), GRE (RFC 2784) and WireGuard tunnels in
the stock kernel: the tunnel-broker topology of tests/tunnel_lab.py passes when
built right, and each fault users make is named by the right check with the
right fix. Runs only in the guest (tests/kernel/conftest.py)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import require_root, require_tools, unavailable
from tests.kernel.conftest import RESULTS, record_fixture
from tests.tunnel_lab import CLI4, CLI6, NOBODY4, SRV4, UPSTREAM, Capture, TunnelBrokerLab, by_id, failing

KINDS = ("sit", "wireguard", "gre")
MODULES = {"sit": "sit", "wireguard": "wireguard", "gre": "ip_gre", "ip6tnl": "ip6_tunnel"}


@pytest.fixture(scope="module", autouse=True)
def _modules():
    require_root()
    require_tools("ip", "iptables", "ip6tables", "wg", "nft")
    for mod in MODULES.values():
        r = subprocess.run(["modprobe", mod], capture_output=True, text=True)
        if r.returncode:
            unavailable(f"modprobe {mod} failed in the guest: {r.stderr.strip()}")


def _lab(kind: str, *faults: str) -> TunnelBrokerLab:
    return TunnelBrokerLab(kind, faults)


def _keep_capture(name: str, faults: list[str], report: dict) -> None:
    """What the lab was, next to the capture, for pcaps/tunnel-sit.truth.json."""
    (RESULTS / f"{name}.truth.json").write_text(json.dumps({
        "file": f"{name}.pcap", "faults": faults, "client_underlay": CLI4, "server_underlay": SRV4,
        "live_failing": sorted(failing(report)), "live_underlay": report["underlay"]}, indent=1) + "\n")


def _settle(lab: TunnelBrokerLab) -> None:
    if lab.kind == "wireguard":  # a first handshake, so "latest handshake" has a value
        subprocess.run(["ip", "netns", "exec", lab.cli, "ping", "-6", "-c1", "-W3", "2001:db8:1::2"],
                       capture_output=True)


@pytest.mark.parametrize("kind", KINDS)
def test_correct_broker_passes_both_sides(kind, build_lab):
    lab = build_lab(_lab(kind))
    _settle(lab)
    with Capture(lab.cli, RESULTS / f"tunnel-{kind}-ok.pcap"):
        rc, cli = lab.check("cli", "--target", UPSTREAM)
    rc_s, srv = lab.check("srv")
    _keep_capture(f"tunnel-{kind}-ok", [], cli)
    record_fixture(f"tunnel-{kind}-ok-client", cli)
    record_fixture(f"tunnel-{kind}-ok-server", srv)
    assert (rc, cli["ok"], cli["role"], failing(cli)) == (0, True, "client", set()), cli
    assert (rc_s, srv["ok"], srv["role"], failing(srv)) == (0, True, "server", set()), srv
    c, s = by_id(cli), by_id(srv)
    assert c["link-up"]["status"] == c["reach-peer"]["status"] == c["reach-target"]["status"] == "pass"
    assert c["pmtu"]["status"] == "pass" and c["mtu"]["status"] == "pass"
    encap = "proto41" if kind == "sit" else "encap"
    assert c[encap]["status"] == "pass" and s[encap]["status"] == "pass"
    assert s["ndp-proxy"]["status"] == s["forwarding"]["status"] == s["forward-policy"]["status"] == "pass"
    if kind == "wireguard":
        assert c["wg-handshake"]["status"] == "pass" and c["wg-allowed-ips"]["status"] == "pass"


@pytest.mark.parametrize("kind", KINDS)
def test_no_proxy_entry(kind, build_lab):
    lab = build_lab(_lab(kind, "no-proxy"))
    _settle(lab)
    _, srv = lab.check("srv")
    _, cli = lab.check("cli", "--target", UPSTREAM)
    assert failing(srv) == {"ndp-proxy"}, srv
    assert "ip -6 neigh add proxy 2001:db8:1::3 dev e0" in by_id(srv)["ndp-proxy"]["fix"]
    assert failing(cli) == {"reach-target"}, cli  # the peer answers, the world beyond does not


@pytest.mark.parametrize("kind", KINDS)
def test_forwarding_off(kind, build_lab):
    lab = build_lab(_lab(kind, "no-forwarding"))
    _settle(lab)
    rc, srv = lab.check("srv")
    assert rc == 1 and "forwarding" in failing(srv), srv
    assert by_id(srv)["forwarding"]["fix"] == "sysctl -w net.ipv6.conf.all.forwarding=1"


@pytest.mark.parametrize("kind", KINDS)
def test_encapsulation_dropped_at_server(kind, build_lab):
    lab = build_lab(_lab(kind, "drop-encap"))
    with Capture(lab.cli, RESULTS / f"tunnel-{kind}-dropped.pcap"):
        _, cli = lab.check("cli", "--target", UPSTREAM)
    _, srv = lab.check("srv")
    _keep_capture(f"tunnel-{kind}-dropped", ["drop-encap"], cli)
    record_fixture(f"tunnel-{kind}-dropped-client", cli)
    encap = "proto41" if kind == "sit" else "encap"
    assert {encap, "reach-peer"} <= failing(cli), cli
    assert "no answer came back" in by_id(cli)[encap]["message"] or "none came back" in by_id(cli)[encap]["message"]
    # the server names its own rule and the command that lets the client in
    fix = by_id(srv)[encap]["fix"]
    assert by_id(srv)[encap]["status"] == "fail" and fix.startswith("iptables -I INPUT"), srv
    assert {"sit": f"-s {CLI4} -p 41", "gre": f"-s {CLI4} -p 47", "wireguard": "--dport 51820"}[kind] in fix, fix
    if kind == "wireguard":
        assert by_id(cli)["wg-handshake"]["status"] == "fail"


@pytest.mark.parametrize("kind", KINDS)
def test_mtu_1500_on_the_tunnel(kind, build_lab):
    lab = build_lab(_lab(kind, "mtu-1500"))
    _settle(lab)
    _, cli = lab.check("cli", "--target", UPSTREAM)
    record_fixture(f"tunnel-{kind}-mtu1500-client", cli)
    # 1500 - 20 (RFC 4213 3.2); - 20 - 4 (RFC 2784); - 20 - 8 - 32 (WireGuard)
    best = {"sit": 1480, "gre": 1476, "wireguard": 1440}[kind]
    assert by_id(cli)["mtu"]["status"] == "fail" and by_id(cli)["mtu"]["fix"] == f"ip link set dev tun0 mtu {best}"
    if kind == "sit":  # sit sets DF on the outer header: full-size packets get Packet Too Big
        assert by_id(cli)["pmtu"]["status"] == "fail", cli
        assert by_id(cli)["pmtu"]["fix"] == f"ip link set dev tun0 mtu {best}"


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_remote(kind, build_lab):
    lab = build_lab(_lab(kind, "wrong-remote"))
    _, cli = lab.check("cli", "--target", UPSTREAM)
    record_fixture(f"tunnel-{kind}-wrong-remote-client", cli)
    encap = "proto41" if kind == "sit" else "encap"
    c = by_id(cli)[encap]
    assert c["status"] == "fail" and f"ARP requests for {NOBODY4} unanswered" in c["message"], cli
    assert c["fix"] == ("ip tunnel change tun0 remote <SERVER-IPV4>" if kind == "sit" else c["fix"])
    assert "reach-peer" in failing(cli)


def test_server_tunnel_points_elsewhere_sit(build_lab):
    """The SixXS dynamic-IP story: the client's address changed, the server's
    tunnel still names the old one. The server answers protocol 41 with ICMP."""
    lab = build_lab(_lab("sit", "server-wrong-remote"))
    _, cli = lab.check("cli", "--target", UPSTREAM)
    record_fixture("tunnel-sit-server-wrong-remote-client", cli)
    c = by_id(cli)["proto41"]
    assert c["status"] == "fail" and f"{SRV4} sent back" in c["message"] and "unreachable" in c["message"], cli
    assert f"remote {CLI4}" in c["fix"]


def test_ip6ip6_over_an_ipv6_underlay(build_lab):
    """ip6tnl (RFC 2473) on the same broker, the underlay now IPv6: passes when
    right; protocol 41 dropped by the server's ip6tables is named with an
    ip6tables fix; MTU 1500 is cut to 1500 - 40 - 8 (the encapsulation limit option)."""
    lab = build_lab(_lab("ip6tnl"))
    rc, cli = lab.check("cli", "--target", UPSTREAM)
    rc_s, srv = lab.check("srv")
    record_fixture("tunnel-ip6tnl-ok-client", cli)
    assert (rc, cli["role"], failing(cli)) == (0, "client", set()), cli
    assert (rc_s, srv["role"], failing(srv)) == (0, "server", set()), srv
    assert by_id(cli)["proto41"]["status"] == by_id(cli)["reach-target"]["status"] == "pass"
    lab = build_lab(_lab("ip6tnl", "drop-encap"))
    _, cli = lab.check("cli", "--target", UPSTREAM)
    _, srv = lab.check("srv")
    assert {"proto41", "reach-peer"} <= failing(cli), cli
    fix = by_id(srv)["proto41"]["fix"]
    assert fix.startswith("ip6tables -I INPUT") and f"-s {CLI6} -p 41" in fix, srv
    lab = build_lab(_lab("ip6tnl", "mtu-1500"))
    _, cli = lab.check("cli", "--target", UPSTREAM)
    assert by_id(cli)["mtu"]["status"] == "fail" and by_id(cli)["mtu"]["fix"] == "ip link set dev tun0 mtu 1452", cli
