"""Live frames from an AF_PACKET socket bound to one interface (packet(7))."""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Iterator

from v6diag.core.constants import ETH_P_IPV6, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, PACKET_OUTGOING
from v6diag.core.errors import PrivilegeError, UnavailableError, UsageError
from v6diag.core.frames import Batch, Frame

SOL_PACKET = 263  # linux/socket.h
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_ALLMULTI = 2
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PACKET_AUXDATA = 8
TP_STATUS_CSUMNOTREADY = 0x8  # skb is CHECKSUM_PARTIAL: the checksum is not filled in yet
TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
_AUX = struct.Struct("IIIHHHH")  # struct tpacket_auxdata


def _auxdata(ancdata, data: bytes, tags: bool = True) -> tuple[int | None, bytes]:
    """(tp_status, frame with any stripped VLAN tag put back, as libpcap does; not
    for cooked frames, which have no Ethernet header to put it in)."""
    for level, kind, value in ancdata:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= _AUX.size:
            status, _len, _snap, _mac, _net, tci, tpid = _AUX.unpack_from(value)
            if tags and status & TP_STATUS_VLAN_VALID and len(data) >= 12:
                tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
            return status, data
    return None, data


def _kernel_time(ancdata) -> float:
    for level, kind, value in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            sec, nsec = struct.unpack("qq", value[:16])
            return sec + nsec * 1e-9
    return time.time()


ANY = "any"  # every interface at once, as `tcpdump -i any`
# SO_RCVBUF is 4 MiB, charged per frame at its skb truesize (~1 KiB or more): a few
# thousand frames can be waiting when a window closes; reading many more than that
# means the link refills the queue as fast as we drain it
QUEUED_MAX = 65536


class PacketSocket:
    """Send raw Ethernet frames and receive every IPv6 frame on `ifname`,
    including our own (flagged outgoing), until closed.

    ifname "any" listens on every interface (receive only): a cooked (SOCK_DGRAM)
    socket bound to none, each frame given a Linux SLL2 header built from its
    sockaddr_ll, as libpcap does for `-i any` (different interfaces have different
    link headers, or none)."""

    def __init__(self, ifname: str, index: int, protocol: int = ETH_P_IPV6, auxdata: bool = False,
                 allmulti: bool = True, on_send=None, linktype: int = LINKTYPE_ETHERNET):
        # packet(7) never loops a socket's own sends back to it: on_send(Frame) is
        # how callers see (and record) what they sent
        self.on_send = on_send
        self.cooked = ifname == ANY
        kind = socket.SOCK_DGRAM if self.cooked else socket.SOCK_RAW
        try:
            self.sock = socket.socket(socket.AF_PACKET, kind, socket.htons(protocol))
        except PermissionError as e:
            raise PrivilegeError("CAP_NET_RAW", f"opening a packet socket on {ifname}") from e
        try:
            if not self.cooked:  # unbound, a packet socket hears every interface
                self.sock.bind((ifname, protocol))
            # Receive multicast we have not joined (MLD reports go to ff02::16, DAD NS
            # to solicited-node groups); the kernel drops this when the socket closes.
            if allmulti and not self.cooked:
                mreq = struct.pack("iHH8s", index, PACKET_MR_ALLMULTI, 0, b"")
                self.sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            # Arrival time stamped by the kernel: reply times stay exact even when
            # we are busy decoding (socket(7) SO_TIMESTAMPNS).
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if auxdata:  # per-packet checksum status and stripped VLAN tags (packet(7))
                self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        except OSError as e:
            self.sock.close()
            if e.errno == errno.ENODEV:
                raise UnavailableError(f"interface {ifname} vanished") from e
            raise UnavailableError(f"cannot bind a packet socket to {ifname}: {e.strerror}") from e
        self.ifname = ifname
        # packet(7): SOCK_RAW frames start with the device's own link header; Ethernet
        # and loopback have one, PPP and tunnels (a WireGuard underlay...) start at IP
        self.linktype = LINKTYPE_LINUX_SLL2 if self.cooked else linktype
        self._indexes: dict[str, int] = {}

    def send(self, frame: bytes) -> None:
        if self.cooked:
            raise UsageError("-i any only listens: probes go out on one interface (name it, e.g. -i eth0)")
        # stamped before the call: a reply (a unicast RA takes ~0.3 ms on a veth) can
        # carry a kernel timestamp earlier than a clock read after send() returns,
        # and would then look older than its own request
        ts = time.time()
        try:
            self.sock.send(frame)
        except OSError as e:
            if e.errno in (errno.ENETDOWN, errno.ENXIO, errno.ENODEV):
                raise UnavailableError(f"interface {self.ifname} went down") from e
            raise
        if self.on_send:
            self.on_send(Frame(ts, self.linktype, frame, outgoing=True))

    def frames(self, deadline: float | None) -> Iterator[Frame | None]:
        """Yield frames until `deadline` (time.monotonic()) passes; None = forever.
        Yields None on each timeout tick so callers can do timed work."""
        while True:
            wait = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if wait <= 0:
                return
            self.sock.settimeout(wait)
            try:
                frame = self._receive()
            except socket.timeout:
                yield None
                continue
            yield frame

    def queued(self, limit: int = QUEUED_MAX) -> Iterator[Frame]:
        """Frames already waiting in the socket, without blocking: what arrived
        while the caller was busy (sending) before its window closed. At most
        `limit`: on a flooded link the queue refills as fast as it is read, and
        the window must still end."""
        self.sock.settimeout(0)
        for _ in range(limit):
            try:
                yield self._receive()
            except (BlockingIOError, socket.timeout):
                return

    def _receive(self) -> Frame:
        try:
            data, anc, _flags, addr = self.sock.recvmsg(65535, 256)
        except (BlockingIOError, socket.timeout):
            raise  # both are OSErrors: the caller's, not "interface went down"
        except OSError as e:
            if e.errno == errno.ENETDOWN:
                raise UnavailableError(f"interface {self.ifname} went down") from e
            raise
        status, data = _auxdata(anc, data, tags=not self.cooked)
        if self.cooked:
            data = self._sll2(addr) + data
        return Frame(_kernel_time(anc), self.linktype, data, outgoing=addr[2] == PACKET_OUTGOING,
                     csum_not_ready=None if status is None else bool(status & TP_STATUS_CSUMNOTREADY))

    def _sll2(self, addr) -> bytes:
        """LINKTYPE_LINUX_SLL2 header (protocol, reserved, ifindex, ARPHRD, packet type,
        address length, address) from recvmsg's (ifname, protocol, pkttype, hatype, addr)."""
        ifname, proto, pkttype, hatype, hwaddr = addr[:5]
        index = self._indexes.get(ifname)
        if index is None:
            try:
                index = self._indexes[ifname] = socket.if_nametoindex(ifname)
            except OSError:  # the interface vanished meanwhile
                index = 0
        return struct.pack("!HHIHBB8s", proto, 0, index, hatype, pkttype, len(hwaddr), hwaddr[:8])

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def batches(sock: PacketSocket, deadline: float | None, max_packets: int = 4096, max_wait: float = 0.25):
    """Group live frames into (Batch, kernel csum-not-ready flags) for the batch
    verifiers; a batch closes at max_packets or after max_wait seconds."""
    index = 0
    frames: list[Frame] = []
    opened = time.monotonic()

    def close():
        nonlocal frames, index, opened
        batch = Batch.of(frames, index)
        status = [bool(f.csum_not_ready) for f in frames]
        index += len(frames)
        frames, opened = [], time.monotonic()
        return batch, status

    for frame in sock.frames(deadline):
        if frame is not None:
            frames.append(frame)
        if frames and (len(frames) >= max_packets or time.monotonic() - opened >= max_wait):
            yield close()
    if frames:
        yield close()
