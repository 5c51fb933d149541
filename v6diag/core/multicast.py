"""Datagrams to link-local multicast groups (mDNS, LLMNR) from ordinary UDP
sockets on one interface: the kernel builds the IP headers and, since the
sockets stay open, answers to their ephemeral ports are not met with ICMP port
unreachable. No privilege is needed. The answers themselves are read from the
packet socket, with everything else on the link."""

from __future__ import annotations

import socket

IPV4_MCAST_TTL = 255  # RFC 6762 11: mDNS is sent with TTL/hop limit 255


class MulticastSender:
    def __init__(self, ifindex: int, ipv4_source: str | None):
        self.ifindex = ifindex
        self.v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        self.v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        self.v6.bind(("::", 0))
        self.v4 = None
        if ipv4_source:  # IPv4 queries only from an interface that has an IPv4 address
            self.v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.v4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ipv4_source))
            self.v4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            self.v4.bind((ipv4_source, 0))

    def send(self, payload: bytes, group: str, port: int, hops: int) -> None:
        """To an IPv6 or IPv4 group (or a link-local unicast address); errors are
        the link's (down, no route), never the caller's: they end up ignored."""
        try:
            if ":" in group:
                self.v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
                self.v6.sendto(payload, (group, port, 0, self.ifindex))
            elif self.v4 is not None:
                self.v4.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, hops)
                self.v4.sendto(payload, (group, port))
        except OSError:
            pass  # a name query is a bonus: discovery goes on without it

    def close(self) -> None:
        self.v6.close()
        if self.v4 is not None:
            self.v4.close()
