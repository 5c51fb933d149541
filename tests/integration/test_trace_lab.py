"""`v6diag trace` against real daemons in network namespaces (tests/trace_lab.py):
radvd + kea-dhcp6-server with a PD pool and two clients, dhcpcd and
systemd-networkd (run without systemd as PID 1), each in the broken and the
fixed configuration; and the tunnel-server topology with and without proxy
NDP and forwarding. Live runs and captures must give the same verdicts."""

from __future__ import annotations

import ipaddress
import os
import pwd
import subprocess

import pytest

from tests.conftest import require_root, require_tools, unavailable
from tests.trace_lab import NETWORKD, LiveTrace, RouterLab, TunnelLab, capture, trace_json
from v6diag.core.capture import CaptureReader
from v6diag.trace.exchanges import TraceAnalysis


def answered(kind: str):
    """done() for capture(): the capture holds an answered DHCPv6 `kind` exchange."""
    def done(path) -> bool:
        t = TraceAnalysis()
        for frame in CaptureReader(str(path)):
            t.feed(frame)
        return any(e.type == "dhcpv6" and e.kind == kind and e.answered for e in t.exchanges)
    return done


def codes(report: dict) -> set[str]:
    return {f["code"] for f in report["findings"]}


HOST_FILES = ("/etc/resolv.conf", "/var/lib/dhcpcd", "/run/dhcpcd", "/run/systemd/network",
              "/run/systemd/netif/links", "/run/systemd/netif/leases", "/etc/systemd/network")


def host_state() -> dict:
    import os

    out = {}
    for path in HOST_FILES:
        if os.path.isdir(path):
            out[path] = sorted(os.listdir(path))
        elif os.path.exists(path):
            with open(path, "rb") as f:
                out[path] = f.read()
    return out


@pytest.fixture
def router_tools():
    """The daemons, and a check that running them left the host's own files alone
    (a network namespace shares the host's filesystem)."""
    require_root()
    require_tools("radvd", "kea-dhcp6", "dhcpcd", "tcpdump", "unshare")
    before = host_state()
    yield
    assert host_state() == before, "a lab daemon changed files on the host"


def test_o_flag_only_ra_and_a_client_without_ia_pd_is_diagnosed_live_and_from_capture(router_tools, tmp_path,
                                                                                         build_lab):
    lab = build_lab(RouterLab())
    lab.start(managed=False)
    with LiveTrace(lab.r, "-i", "r0", "-d", "7") as live:
        capture(lab.r, "r0", tmp_path / "o.pcap", lambda: lab.dhcpcd(ia_pd=False, seconds=5),
                answered("information-request"))
    for rc, report in ((live.rc, live.report), trace_json("--pcap", str(tmp_path / "o.pcap"))):
        assert rc == 1
        assert "ra-o-flag-only-no-pd" in codes(report)
        assert report["delegated_prefixes"] == []
        router = report["routers"][0]
        assert router["o_flag"] and not router["m_flag"]
        kinds = {e["kind"] for e in report["exchanges"] if e["type"] == "dhcpv6"}
        assert kinds == {"information-request"}
        fix = next(f["fix"] for f in report["findings"] if f["code"] == "ra-o-flag-only-no-pd")
        assert "AdvManagedFlag on" in fix and "DHCPv6Client=always" in fix and "ia_pd" in fix


def test_client_asking_for_a_prefix_gets_it_delegated(router_tools, tmp_path, build_lab):
    lab = build_lab(RouterLab())
    lab.start(managed=False)
    capture(lab.r, "r0", tmp_path / "pd.pcap", lambda: lab.dhcpcd(ia_pd=True), answered("request"))
    rc, report = trace_json("--pcap", str(tmp_path / "pd.pcap"))
    assert rc == 0
    assert report["delegated_prefixes"] == ["2001:db8:d00::/56"]
    assert "pd-delegated" in codes(report) and "ra-o-flag-only-no-pd" not in codes(report)
    kinds = [e["kind"] for e in report["exchanges"] if e["type"] == "dhcpv6"]
    assert kinds[:2] == ["solicit", "request"]


# systemd-networkd following the RA: the O flag alone makes it send Information-request.
NETWORKD_FOLLOWS_RA = """[Match]
Name=c0

[Network]
DHCP=ipv6
IPv6AcceptRA=yes
"""
# ... and with the fix `trace` prints for ra-o-flag-only-no-pd, applied literally.
# (Without DHCP=ipv6 and with WithoutRA= or [DHCPPrefixDelegation] UplinkInterface=:self,
# networkd 252 sends no DHCPv6 at all: dhcp6_start() skips a link without DHCP=ipv6,
# and dhcp6_start_on_ra() leaves a client with a start mode of its own to it.)
NETWORKD_SOLICITS = NETWORKD_FOLLOWS_RA + """
[IPv6AcceptRA]
DHCPv6Client=always
"""


@pytest.fixture
def networkd_tools(router_tools):
    if not os.access(NETWORKD, os.X_OK):
        unavailable(f"needs systemd-networkd ({NETWORKD}, package systemd)")
    try:
        pwd.getpwnam("systemd-network")
    except KeyError:
        unavailable("needs the systemd-network user (package systemd)")


@pytest.mark.parametrize("fixed", [False, True], ids=["follows-o-flag", "dhcpv6client-always"])
def test_systemd_networkd_client_live_and_from_capture(networkd_tools, tmp_path, fixed, build_lab):
    lab = build_lab(RouterLab())
    lab.start(managed=False)
    logs = []
    conf = NETWORKD_SOLICITS if fixed else NETWORKD_FOLLOWS_RA
    # networkd says when it is done: bound after Request/Reply, or stopped after Information-request/Reply
    until = "State changed: request -> bound" if fixed else "State changed: information-request -> stopped"
    with LiveTrace(lab.r, "-i", "r0", "-d", "9") as live:
        capture(lab.r, "r0", tmp_path / "nd.pcap", lambda: logs.append(lab.run_networkd(conf, until)),
                answered("request" if fixed else "information-request"))
    log = logs[0]
    # networkd itself says what it did (and the packets below say the same)
    if fixed:
        assert "DHCPv6 client: Starting in Solicit mode" in log and "State changed: request -> bound" in log, log
    else:
        assert "DHCPv6 client: Starting in Information request mode" in log, log
        assert "Solicit mode" not in log
    for rc, report in ((live.rc, live.report), trace_json("--pcap", str(tmp_path / "nd.pcap"))):
        router = report["routers"][0]
        assert router["o_flag"] and not router["m_flag"]
        dhcp = [e for e in report["exchanges"] if e["type"] == "dhcpv6"]
        kinds = {e["kind"] for e in dhcp}
        if not fixed:
            assert rc == 1
            assert kinds == {"information-request"} and all(e["answered"] for e in dhcp)
            assert not any(e["ia_pd_requested"] for e in dhcp)
            assert "ra-o-flag-only-no-pd" in codes(report) and "pd-delegated" not in codes(report)
            assert report["delegated_prefixes"] == []
            fix = next(f["fix"] for f in report["findings"] if f["code"] == "ra-o-flag-only-no-pd")
            assert "[IPv6AcceptRA] DHCPv6Client=always" in fix  # what the fixed run applies
        else:
            assert rc == 0, report["findings"]
            assert {"solicit", "request"} <= kinds and "information-request" not in kinds
            solicit = next(e for e in dhcp if e["kind"] == "solicit")
            assert solicit["ia_pd_requested"] and solicit["answered"]
            assert "pd-delegated" in codes(report) and "ra-o-flag-only-no-pd" not in codes(report)
            assert report["delegated_prefixes"] == [f"{RouterLab.PD_POOL}/56"]
            assert ipaddress.ip_network(report["delegated_prefixes"][0]).subnet_of(
                ipaddress.ip_network(f"{RouterLab.PD_POOL}/48"))  # from kea's pd-pool


def test_managed_ra_gives_an_address_by_dhcpv6(router_tools, tmp_path, build_lab):
    lab = build_lab(RouterLab())
    lab.start(managed=True)
    capture(lab.r, "r0", tmp_path / "m.pcap", lambda: lab.dhcpcd(ia_pd=False), answered("request"))
    rc, report = trace_json("--pcap", str(tmp_path / "m.pcap"))
    assert rc == 0 and not codes(report) - {"pd-delegated"}
    addresses = {a for e in report["exchanges"] if e["type"] == "dhcpv6" for a in e["addresses"]}
    assert addresses and all(a.startswith("2001:db8:1::1") for a in addresses)


def test_dhcpv6_probe_is_offered_a_prefix_and_takes_no_lease(router_tools, build_lab):
    lab = build_lab(RouterLab())
    lab.start(managed=True)
    rc, report = trace_json("-i", "c0", "-d", "2", "--dhcpv6", "--pd", "56", "--solicit-router", ns=lab.c)
    sol = next(e for e in report["exchanges"] if e["type"] == "dhcpv6")
    assert sol["kind"] == "solicit" and sol["answered"] and sol["replies"] == ["advertise"]
    assert sol["ia_pd_requested"] and sol["prefixes"][0]["prefix"].endswith("/56")
    assert report["delegated_prefixes"] == []  # an Advertise is an offer, not a lease
    rs = next(e for e in report["exchanges"] if e["type"] == "rs")
    assert rs["answered"]


def test_no_pd_pool_is_pd_not_offered(router_tools, tmp_path, build_lab):
    lab = build_lab(RouterLab())
    lab.start(managed=True, pd_pool=False)
    rc, report = trace_json("-i", "c0", "-d", "2", "--dhcpv6", "--pd", "56", ns=lab.c)
    assert rc == 1 and "pd-not-offered" in codes(report)


@pytest.mark.parametrize("fixed", [False, True], ids=["no-proxy-no-forwarding", "proxy-and-forwarding"])
def test_tunnel_server_proxy_ndp_from_upstream_probe_and_server_capture(fixed, build_lab):
    require_root()
    require_tools("ping")
    lab = build_lab(TunnelLab(proxy=fixed, forwarding=fixed))
    # 1. actively, from the upstream router: does anyone answer for the client?
    rc, probe = trace_json("-i", "e0", "-d", "3.5", "--ns", lab.CLIENT, ns=lab.up)
    # 2. passively, on the server, while the upstream tries to reach the client
    # with proxy NDP the upstream's first NS is answered at once: the server must
    # already be listening when the ping starts
    with LiveTrace(lab.srv, "-i", "e0", "-d", "5") as live:
        reached = lab.ping_client_from_upstream()
    assert reached == fixed
    ns_up = next(e for e in probe["exchanges"] if e["type"] == "ns" and e["target"] == lab.CLIENT)
    ns_srv = next(e for e in live.report["exchanges"] if e["type"] == "ns" and e["target"] == lab.CLIENT)
    assert ns_up["answered"] == ns_srv["answered"] == fixed
    if fixed:
        assert rc == 0 and "ns-unanswered" not in codes(probe)
    else:
        assert rc == 1 and live.rc == 1
        fix = next(f["fix"] for f in live.report["findings"] if f["code"] == "ns-unanswered")
        # on the server the fix names its own external interface
        assert f"ip -6 neigh add proxy {lab.CLIENT} dev e0" in fix and "proxy_ndp=1" in fix
        assert "forwarding=1" in fix


def test_trace_without_root_and_ctrl_c(router_tools, build_lab, v6diag_cmd):
    import json
    import signal

    lab = build_lab(RouterLab())
    r = subprocess.run(["ip", "netns", "exec", lab.r, "setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", "--inh-caps=-all", *v6diag_cmd, "trace", "-i", "r0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 77 and "CAP_NET_RAW" in r.stderr and "Traceback" not in r.stderr
    lab.start(managed=True)
    p = lab.spawn(lab.c, *v6diag_cmd, "-v", "--json", "trace", "-i", "c0", "-d", "60", "--solicit-router",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # -v prints each ND/DHCPv6 message as it is decoded (our own RS first): stop once an RA is in
    while " ra " not in (line := p.stderr.readline()):
        assert line, "the trace ended without seeing an RA"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode in (0, 1) and "Traceback" not in err
    assert json.loads(out)["routers"]  # radvd answered the RS before Ctrl-C


def test_write_then_read_back_gives_the_same_exchanges(router_tools, tmp_path, build_lab):
    """--write keeps our own probes too (a packet socket never sees its own sends)."""
    path = tmp_path / "rs.pcap"
    lab = build_lab(RouterLab())
    lab.start(managed=True)
    rc, live = trace_json("-i", "c0", "-d", "2", "--solicit-router", "--dhcpv6", "--write", str(path), ns=lab.c)
    rc2, replay = trace_json("--pcap", str(path))
    kinds = lambda r: [(e["type"], e.get("kind"), e["answered"]) for e in r["exchanges"] if e["type"] in ("rs", "dhcpv6")]
    assert ("rs", None, True) in kinds(live) and ("dhcpv6", "solicit", True) in kinds(live)
    assert kinds(replay) == kinds(live)
    assert replay["routers"][0]["address"] == live["routers"][0]["address"]


def test_any_interface_listens_everywhere_and_refuses_probes(router_tools, build_lab):
    """-i any (a cooked socket, SLL2 frames): the client's own RS, leaving c0, and
    the router's answer are both heard; probes need one interface."""
    lab = build_lab(RouterLab())
    lab.start(managed=True)
    with LiveTrace(lab.c, "-i", "any", "-d", "4") as live:
        trace_json("-i", "c0", "-d", "1", "--solicit-router", ns=lab.c)
    rs = [e for e in live.report["exchanges"] if e["type"] == "rs"]
    assert rs and rs[0]["answered"], live.report["exchanges"]
    assert live.report["interface"] == "any" and live.report["routers"]
    rc, _ = trace_json("-i", "any", "--solicit-router", ns=lab.c, expect_json=False)
    assert rc == 2


def test_a_quiet_link_gets_no_reply_and_no_router_from_one_probe_each(build_lab):
    """No router, no DHCPv6 server: the Solicit and the RS are the last frames on
    the link, and must still be judged, against the end of the listening window
    (RFC 8415 SOL_TIMEOUT 1 s, RFC 4861 MAX_RA_DELAY_TIME 0.5 s), every time."""
    require_root()
    from tests.lab import Namespaces, wait_until

    lab = build_lab(Namespaces(f"v6dq{os.getpid() % 100000}", ["q", "p"], [
        ("q", "sysctl -qw net.ipv6.conf.default.accept_dad=0\nip link add q0 type veth peer name p0 netns @p\n"
              "sysctl -qw net.ipv6.conf.q0.accept_dad=0\nip link set q0 up"),
        ("p", "ip link set p0 up")]))
    wait_until(lambda: "fe80" in lab.run("q", "ip", "-6", "addr", "show", "dev", "q0").stdout, "q0's link-local")
    for _ in range(2):
        rc, report = trace_json("-i", "q0", "-d", "2", "--dhcpv6", "--pd", "56", "--solicit-router", ns=lab.name("q"))
        assert rc == 1 and {"dhcpv6-no-reply", "no-router"} <= codes(report), report["findings"]
