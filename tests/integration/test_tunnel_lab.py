"""`v6diag tunnel` on this VM's kernel: the tunnel-broker topology of
tests/tunnel_lab.py with a VXLAN tunnel standing in for sit (this kernel has
no sit, ipip, ip6tnl or wireguard). Each fault is reported by the right check,
and running the printed fix in the namespace makes the check pass again."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import require_root, require_tools, unavailable
from tests.lab import Namespaces, sh, v6diag_command
from tests.tunnel_lab import CLI4, NOBODY4, SRV4, UPSTREAM, TunnelBrokerLab, by_id, failing


@pytest.fixture(autouse=True)
def _root():
    require_root()
    require_tools("ip", "iptables", "ip6tables", "nft")


def test_correct_vxlan_broker_passes_on_both_sides(build_lab):
    lab = build_lab(TunnelBrokerLab("vxlan"))
    rc, cli = lab.check("cli", "--target", UPSTREAM)
    rc_s, srv = lab.check("srv")
    assert (rc, cli["ok"], cli["role"], cli["kind"], failing(cli)) == (0, True, "client", "vxlan", set()), cli
    assert (rc_s, srv["ok"], srv["role"], failing(srv)) == (0, True, "server", set()), srv
    c, s = by_id(cli), by_id(srv)
    for cid in ("link-up", "mtu", "route", "reach-peer", "reach-target", "pmtu", "encap"):
        assert c[cid]["status"] == "pass", c[cid]
    for cid in ("forwarding", "ndp-proxy", "forward-policy"):
        assert s[cid]["status"] == "pass", s[cid]
    assert cli["underlay"]["echo_requests"] >= 6  # peer and target pings crossed u0 encapsulated
    assert set(c) >= {"link-up", "mtu", "route", "reach-peer", "reach-target", "encap", "pmtu"}


# fault -> side to run, the check that must fail, the fix it must print
FAULTS = [
    ("no-proxy", "srv", "ndp-proxy", "sysctl -w net.ipv6.conf.e0.proxy_ndp=1; ip -6 neigh add proxy 2001:db8:1::3 dev e0"),
    ("no-forwarding", "srv", "forwarding", "sysctl -w net.ipv6.conf.all.forwarding=1"),
    ("forward-drop", "srv", "forward-policy",
     "ip6tables -I FORWARD -i tun0 -j ACCEPT; ip6tables -I FORWARD -o tun0 -j ACCEPT"),
    ("drop-encap", "srv", "encap", f"iptables -I INPUT -s {CLI4} -p udp --dport 4789 -j ACCEPT"),
    ("mtu-1500", "cli", "mtu", "ip link set dev tun0 mtu 1450"),
]


@pytest.mark.parametrize("fault,side,cid,fix", FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_is_named_and_its_fix_works(fault, side, cid, fix, build_lab):
    lab = build_lab(TunnelBrokerLab("vxlan", (fault,)))
    rc, before = lab.check(side, *(("--target", UPSTREAM) if side == "cli" else ()))
    sh("ip", "netns", "exec", getattr(lab, side), "sh", "-ec", by_id(before)[cid]["fix"])
    rc_after, after = lab.check(side, *(("--target", UPSTREAM) if side == "cli" else ()))
    _, cli_after = lab.check("cli", "--target", UPSTREAM)
    assert rc == 1 and not before["ok"] and cid in failing(before), before
    assert by_id(before)[cid]["fix"] == fix
    assert rc_after == 0 and failing(after) == set(), after
    assert failing(cli_after) == set(), cli_after  # the client reaches the world again


@pytest.mark.parametrize("fault", ["no-proxy", "no-forwarding", "forward-drop"])
def test_client_side_sees_the_peer_but_not_beyond(fault, build_lab):
    lab = build_lab(TunnelBrokerLab("vxlan", (fault,)))
    _, cli = lab.check("cli", "--target", UPSTREAM)
    assert failing(cli) == {"reach-target"}, cli
    assert by_id(cli)["reach-peer"]["status"] == "pass" and "--role server" in by_id(cli)["reach-target"]["fix"]


def test_encapsulation_dropped_at_server_seen_from_the_client(build_lab):
    lab = build_lab(TunnelBrokerLab("vxlan", ("drop-encap",)))
    _, cli = lab.check("cli", "--target", UPSTREAM)
    encap = by_id(cli)["encap"]
    assert {"encap", "reach-peer", "reach-target"} <= failing(cli), cli
    assert f"left u0 for {SRV4} and no answer came back" in encap["message"]
    assert encap["fix"].startswith(f"on {SRV4}: allow VXLAN UDP 4789")


def test_mtu_1500_is_caught_even_though_vxlan_fragments_it(build_lab):
    lab = build_lab(TunnelBrokerLab("vxlan", ("mtu-1500",)))
    _, cli = lab.check("cli", "--target", UPSTREAM)
    # vxlan's default `df unset` lets IPv4 fragment the outer packet: pings pass
    assert by_id(cli)["pmtu"]["status"] == "warn" and "fragments" in by_id(cli)["pmtu"]["message"], cli
    assert by_id(cli)["pmtu"]["fix"] == "ip link set dev tun0 mtu 1450"


def test_wrong_remote(build_lab):
    lab = build_lab(TunnelBrokerLab("vxlan", ("wrong-remote",)))
    _, cli = lab.check("cli", "--target", UPSTREAM)
    encap = by_id(cli)["encap"]
    assert encap["status"] == "fail" and f"ARP requests for {NOBODY4} unanswered" in encap["message"], cli
    assert encap["fix"] == "ip link set dev tun0 type vxlan remote <SERVER-IP>"
    assert "reach-peer" in failing(cli)


def _v6diag(ns: str, *args: str, user: str | None = None) -> subprocess.CompletedProcess:
    pre = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []  # 65534: nobody/nogroup
    return subprocess.run(["ip", "netns", "exec", ns, *pre, *v6diag_command(), *args], capture_output=True, text=True,
                          timeout=60)


def test_tunnel_kind_this_kernel_lacks(build_lab):
    lab = build_lab(Namespaces(f"v6tk{os.getpid() % 100000}", ["k"]))
    ns = lab.name("k")
    made = subprocess.run(["ip", "-n", ns, "link", "add", "sit-ipv6", "type", "sit", "remote", SRV4, "local",
                           CLI4], capture_output=True, text=True)
    if made.returncode == 0:
        unavailable("this kernel has sit: the message for a missing kind cannot be seen here")
    r = _v6diag(ns, "tunnel", "-i", "sit-ipv6")
    r_kind = _v6diag(ns, "tunnel", "-i", "mytun", "--kind", "sit")
    assert r.returncode == 69 and "this kernel has no sit module" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r_kind.returncode == 69 and "this kernel has no sit module" in r_kind.stderr


def test_not_a_tunnel_missing_interface_and_not_root(build_lab):
    require_tools("setpriv")
    lab = build_lab(TunnelBrokerLab("vxlan"))
    plain = _v6diag(lab.cli, "tunnel", "-i", "u0")
    missing = _v6diag(lab.cli, "tunnel", "-i", "nothere0")
    nobody = _v6diag(lab.cli, "tunnel", "-i", "tun0", user="65534")
    config_only = _v6diag(lab.cli, "--json", "tunnel", "-i", "tun0", "--no-live", user="65534")
    assert plain.returncode == 2 and "u0 is not a tunnel (kind veth)" in plain.stderr
    assert missing.returncode == 2 and "no such interface: nothere0" in missing.stderr
    assert nobody.returncode == 77 and "CAP_NET_RAW" in nobody.stderr, nobody.stderr
    for r in (plain, missing, nobody):
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    report = json.loads(config_only.stdout)  # without privileges the configuration is still checked
    assert config_only.returncode == 0 and report["ok"] and by_id(report)["mtu"]["status"] == "pass"
    assert by_id(report)["reach-peer"]["status"] == "skip"


@pytest.mark.parametrize("sysctls,fix", [
    # the seed's advice, per-interface forwarding: ip6_forward() reads only conf/all
    ("all.forwarding=0 net.ipv6.conf.e0.forwarding=1 net.ipv6.conf.tun0.forwarding=1",
     "sysctl -w net.ipv6.conf.all.forwarding=1"),
    # all on, the external interface off: ndisc_recv_ns() will not answer proxied NS there
    ("all.forwarding=1 net.ipv6.conf.e0.forwarding=0", "sysctl -w net.ipv6.conf.e0.forwarding=1"),
], ids=["per-interface-only", "external-off"])
def test_forwarding_that_looks_on_but_is_not(sysctls, fix, build_lab):
    lab = build_lab(TunnelBrokerLab("vxlan"))
    lab.sh_in(lab.srv, "sysctl -qw net.ipv6.conf." + sysctls)
    _, srv = lab.check("srv", "--no-live")
    _, cli = lab.check("cli", "--target", UPSTREAM)
    assert by_id(srv)["forwarding"]["status"] == "fail" and by_id(srv)["forwarding"]["fix"] == fix, srv
    assert failing(cli) == {"reach-target"}, cli  # the kernel really does not forward / proxy


def test_a_connected_peer_prefix_and_no_target_gives_no_false_failure(build_lab):
    """The client's tunnel address in a /64 the server's is in too, no default
    route through the tunnel, no --target: the route is fine (the /64 is
    connected), and with nothing to ping there is nothing to judge on the
    underlay. With --target the path MTU is probed there."""
    lab = build_lab(TunnelBrokerLab("vxlan"))
    lab.sh_in(lab.cli, "ip -6 route del default; ip addr del 2001:db8:1::3/127 dev tun0; "
                       "ip addr add 2001:db8:1::3/64 dev tun0 nodad")
    rc, report = lab.check("cli")
    checks = by_id(report)
    assert rc == 0 and report["ok"], report
    assert checks["route"]["status"] == "pass" and "2001:db8:1::/64" in checks["route"]["message"]
    assert checks["encap"]["status"] == "skip" and "--target" in checks["encap"]["message"]
    rc, report = lab.check("cli", "--target", "2001:db8:1::2")
    checks = by_id(report)
    assert checks["reach-target"]["status"] == "pass" and checks["pmtu"]["status"] == "pass", report
