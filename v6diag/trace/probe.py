"""Active probes for `trace`: a Router Solicitation and a DHCPv6 Solicit (never a
Request: no lease is taken); the Neighbor Solicitation is core.ndp's. Builders are
pure; ClientPort holds UDP 546 while probing."""

from __future__ import annotations

import errno
import socket

from scapy.layers.dhcp6 import (
    DUID_LL, DHCP6_Solicit, DHCP6OptClientId, DHCP6OptElapsedTime, DHCP6OptIA_NA, DHCP6OptIA_PD,
    DHCP6OptIAPrefix, DHCP6OptOptReq,
)
from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6ND_RS, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import Ether

from v6diag.core.constants import DHCPV6_CLIENT_PORT as CLIENT_PORT
from v6diag.core.constants import DHCPV6_SERVER_PORT as SERVER_PORT

ALL_ROUTERS, ALL_DHCP = "ff02::2", "ff02::1:2"


def router_solicitation(mac: str, link_local: str) -> bytes:
    return bytes(Ether(src=mac, dst="33:33:00:00:00:02") / IPv6(src=link_local, dst=ALL_ROUTERS, hlim=255)
                 / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=mac))


def dhcpv6_solicit(mac: str, link_local: str, xid: int, pd_len: int | None, iaid: int = 0x76360001) -> bytes:
    """RFC 8415 18.2.1 Solicit with IA_NA and, when pd_len is given, IA_PD hinting ::/pd_len."""
    msg = (DHCP6_Solicit(trid=xid) / DHCP6OptClientId(duid=DUID_LL(lladdr=mac)) / DHCP6OptElapsedTime()
           / DHCP6OptIA_NA(iaid=iaid))
    if pd_len is not None:
        msg = msg / DHCP6OptIA_PD(iaid=iaid, iapdopt=[DHCP6OptIAPrefix(prefix="::", plen=pd_len)])
    msg = msg / DHCP6OptOptReq(reqopts=[23, 24])  # DNS servers, domain list
    return bytes(Ether(src=mac, dst="33:33:00:01:00:02") / IPv6(src=link_local, dst=ALL_DHCP, hlim=1)
                 / UDP(sport=CLIENT_PORT, dport=SERVER_PORT) / msg)


class ClientPort:
    """Hold UDP 546 on the interface while probing, so the server's Advertise is
    not answered with ICMPv6 port unreachable. If a DHCPv6 client already holds
    it, that client's socket does the same job."""

    def __init__(self, ifname: str):
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            self.sock.bind(("::", CLIENT_PORT))
        except OSError as e:
            self.sock.close()
            self.sock = None
            if e.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EPERM):
                raise

    def close(self) -> None:
        if self.sock:
            self.sock.close()


def listen(info, analysis, duration: float, write: str | None, solicit_router: bool, dhcpv6: bool,
           pd: int | None, ns_targets: list[str], err, verbose: int = 0) -> float:
    """Send the asked-for probes, feed every frame seen (and sent) to `analysis`
    until `duration` or Ctrl-C (what is already queued is still read); returns the
    seconds listened. -v prints each ND/DHCPv6 message on stderr as it is decoded."""
    import random
    import time

    from v6diag.core.capture import CaptureWriter
    from v6diag.core.constants import ETH_P_ALL
    from v6diag.core.ndp import neighbor_solicitation
    from v6diag.core.packet_socket import PacketSocket

    iface = info.name
    port = None
    start = time.monotonic()

    def record(frame) -> None:  # what we receive, and (on_send) what we send
        m = analysis.feed(frame)
        if writer:
            writer.write(frame)
        if verbose and m is not None:
            when = time.strftime("%H:%M:%S", time.localtime(m.ts)) + f".{int(m.ts % 1 * 1000):03d}"
            err.print(f"{when} {m.proto} {m.type} {m.src} -> {m.dst}", highlight=False, soft_wrap=True)

    # ETH_P_ALL: frames this host sends (a router's own RAs and DHCPv6 replies) reach
    # only ETH_P_ALL packet sockets (net/core/dev.c dev_queue_xmit_nit)
    with PacketSocket(iface, info.index, protocol=ETH_P_ALL, on_send=record) as sock:
        writer = CaptureWriter(write, linktype=sock.linktype) if write else None  # SLL2 with -i any
        send = sock.send
        if dhcpv6:
            port = ClientPort(iface)
            send(dhcpv6_solicit(info.mac, info.link_local, random.randrange(1 << 24), pd))
        if solicit_router:
            send(router_solicitation(info.mac, info.link_local))
        for target in ns_targets:
            send(neighbor_solicitation(info.mac, info.link_local, target))
        deadline = start + duration
        next_ns, tries = start + 1.0, 1
        err.print(f"listening on {iface} for {duration:g} s", highlight=False)  # scripts wait for this
        try:
            with err.status(f"listening on {iface}") as status:
                for frame in sock.frames(deadline):
                    if frame is not None:
                        record(frame)
                    now = time.monotonic()
                    if ns_targets and tries < 3 and now >= next_ns:  # retransmit like the kernel (RFC 4861 7.2.2)
                        tries, next_ns = tries + 1, now + 1.0
                        for target in ns_targets:
                            send(neighbor_solicitation(info.mac, info.link_local, target))
                    status.update(f"listening on {iface}: {analysis.packets} packets, {analysis.messages} ND/DHCPv6 "
                                  f"messages, {now - start:.0f}/{duration:g} s (Ctrl-C to stop)")
                for frame in sock.queued():  # arrived before the deadline, not read yet
                    record(frame)
        except KeyboardInterrupt:  # Ctrl-C ends listening; what arrived before it is reported
            for frame in sock.queued():
                record(frame)
        finally:
            analysis.end_ts = time.time()  # unanswered probes are judged against this
            if port:
                port.close()
            if writer:
                writer.close()
    return time.monotonic() - start
