"""Active probes for `trace`: a Router Solicitation, a DHCPv6 Solicit (never a
Request: no lease is taken) and a Neighbor Solicitation. Builders are pure."""

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

from v6diag.decode.dhcp6 import CLIENT_PORT, SERVER_PORT

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
