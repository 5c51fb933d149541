"""Live probes through a tunnel: ICMPv6 echo (normal and don't-fragment sized)
from a raw ICMPv6 socket, while an AF_PACKET socket on the underlay counts the
encapsulated packets that leave and come back."""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from v6diag.core.constants import ARPHRD_ETHER, ARPHRD_LOOPBACK, LINKTYPE_ETHERNET, LINKTYPE_RAW
from v6diag.core.constants import IPV6_MIN_MTU as MIN_MTU
from v6diag.core.errors import PrivilegeError
from v6diag.tunnel.decode import underlay as decode_underlay
from v6diag.tunnel.facts import ProbeResult
from v6diag.tunnel.tally import EncapTally

IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, IPV6_MTU, IPV6_DONTFRAG = 23, 2, 24, 62  # linux/in6.h
ECHO_REQUEST, ECHO_REPLY, PTB, UNREACH = 128, 129, 2, 1  # RFC 4443


class Pinger:
    """ICMPv6 echo over a raw socket (needs CAP_NET_RAW). The kernel fills in the
    ICMPv6 checksum on raw ICMPv6 sockets (RFC 3542 3.1)."""

    def __init__(self):
        try:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        except PermissionError as e:
            raise PrivilegeError("CAP_NET_RAW", "pinging through the tunnel") from e
        # RFC 3542 11.2: don't fragment locally; an oversized probe fails with EMSGSIZE
        self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
        self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1)
        self.ident = os.getpid() & 0xFFFF
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _match(self, data: bytes, pending: dict) -> tuple[int, str, int | None] | None:
        """(seq, what, mtu) when `data` answers or reports one of our probes."""
        if len(data) < 8:
            return None
        t = data[0]
        if t == ECHO_REPLY:
            ident, seq = struct.unpack_from("!HH", data, 4)
            return (seq, "reply", None) if ident == self.ident and seq in pending else None
        if t in (PTB, UNREACH, 3) and len(data) >= 8 + 40 + 8:
            quoted = data[8:]
            if quoted[40] == ECHO_REQUEST:
                ident, seq = struct.unpack_from("!HH", quoted, 44)
                if ident == self.ident and seq in pending:
                    mtu = struct.unpack_from("!I", data, 4)[0] if t == PTB else None
                    return seq, {PTB: "ptb", UNREACH: "unreachable", 3: "time-exceeded"}[t], mtu
        return None

    def ping(self, dst: str, size: int = 64, count: int = 3, timeout: float = 1.0,
             interval: float = 0.1) -> list[ProbeResult]:
        """`count` echo requests of `size` bytes (whole IPv6 packet) to dst."""
        payload = b"v6diag tunnel".ljust(max(0, size - 48), b".")
        pending: dict[int, float] = {}
        results: dict[int, ProbeResult] = {}
        for i in range(count):
            self.seq = (self.seq + 1) & 0xFFFF
            seq = self.seq
            msg = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, self.ident, seq) + payload
            try:
                self.sock.sendto(msg, (dst, 0))
                pending[seq] = time.monotonic()
            except OSError as e:
                mtu = self._path_mtu(dst) if e.errno == errno.EMSGSIZE else None
                results[seq] = ProbeResult(dst, size, False, error=errno.errorcode.get(e.errno, str(e)), mtu=mtu)
            if i + 1 < count:
                self._collect(dst, size, pending, results, time.monotonic() + interval)
        self._collect(dst, size, pending, results, time.monotonic() + timeout, stop_when_done=True)
        for seq in pending:
            results[seq] = ProbeResult(dst, size, False, error="timeout")
        return [results[s] for s in sorted(results)]

    def _collect(self, dst, size, pending, results, deadline, stop_when_done=False) -> None:
        while pending or not stop_when_done:
            wait = deadline - time.monotonic()
            if wait <= 0 or (stop_when_done and not pending):
                return
            self.sock.settimeout(wait)
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                return
            got = self._match(data, pending)
            if got:
                seq, what, mtu = got
                sent = pending.pop(seq)
                results[seq] = ProbeResult(dst, size, what == "reply",
                                           (time.monotonic() - sent) * 1000 if what == "reply" else None,
                                           None if what == "reply" else what, mtu)

    def _path_mtu(self, dst: str) -> int | None:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            s.connect((dst, 9))
            return s.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
        except OSError:
            return None
        finally:
            s.close()


def probe_size(pinger: Pinger, dst: str, size: int) -> ProbeResult:
    """One don't-fragment probe of `size`, retried once: the first oversized
    packet only teaches the kernel the path MTU (a PTB), the retry sees it."""
    first = pinger.ping(dst, size, count=1, timeout=0.8)[0]
    if first.replied or first.error not in ("ptb", "timeout"):
        return first
    second = pinger.ping(dst, size, count=1, timeout=0.8)[0]
    return second if second.replied or second.mtu else ProbeResult(dst, size, False, error=first.error, mtu=first.mtu)


def largest_size(pinger: Pinger, dst: str, low: int, high: int) -> int | None:
    """Binary search the largest size in [low, high] that gets an answer."""
    if not pinger.ping(dst, low, count=1, timeout=0.8)[0].replied:
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if pinger.ping(dst, mid, count=1, timeout=0.8)[0].replied:
            low = mid
        else:
            high = mid - 1
    return low


@dataclass
class LiveResult:
    peer: list[ProbeResult] = field(default_factory=list)
    target: list[ProbeResult] = field(default_factory=list)
    full: ProbeResult | None = None
    largest: int | None = None
    tally: EncapTally = field(default_factory=EncapTally)
    captured: bool = False
    sized: str | None = None  # the address the path MTU was probed to


class UnderlayCapture:
    """Count what crosses the underlay in a thread while the probes run."""

    def __init__(self, ifname: str, vxlan_ports: tuple[int, ...], wg_ports: tuple[int, ...]):
        from v6diag.core import netlink
        from v6diag.core.constants import ETH_P_ALL
        from v6diag.core.packet_socket import PacketSocket

        self.tally = EncapTally()
        self.ports = vxlan_ports, wg_ports
        link = netlink.link(ifname)
        # packet(7): SOCK_RAW frames carry the device's own link header; Ethernet and
        # loopback have one, PPP and tunnels (a WireGuard underlay...) start at IP
        linktype = LINKTYPE_ETHERNET if link.ifi_type in (ARPHRD_ETHER, ARPHRD_LOOPBACK) else LINKTYPE_RAW
        self.sock = PacketSocket(ifname, link.index, protocol=ETH_P_ALL, allmulti=False, linktype=linktype)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for frame in self.sock.frames(None):
            if self.stop.is_set():
                return
            if frame is not None:
                self.tally.feed(decode_underlay(frame.linktype, frame.data, *self.ports), frame.ts)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        time.sleep(0.2)  # the last replies are still in flight
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def run(peer: str | None, target: str | None, mtu: int, underlay: str | None,
        vxlan_ports: tuple[int, ...], wg_ports: tuple[int, ...]) -> LiveResult:
    out = LiveResult()
    pinger = Pinger()
    capture = UnderlayCapture(underlay, vxlan_ports, wg_ports) if underlay else None
    try:
        if capture:
            capture.__enter__()
            out.captured = True
        if peer:
            out.peer = pinger.ping(peer)
        if target:
            out.target = pinger.ping(target)
        # path MTU through the tunnel: to the peer, or to --target when the peer is
        # unknown or silent and the target answers
        out.sized = peer if any(p.replied for p in out.peer) else \
            target if any(p.replied for p in out.target) else None
        if out.sized:
            out.full = probe_size(pinger, out.sized, mtu)
            if not out.full.replied:
                out.largest = largest_size(pinger, out.sized, MIN_MTU, min(out.full.mtu or mtu, mtu - 1))
    finally:
        pinger.close()
        if capture:
            capture.__exit__(None, None, None)
            out.tally = capture.tally
    return out
