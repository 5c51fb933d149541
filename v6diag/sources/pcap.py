"""Streaming pcap / pcapng reader: constant memory, hostile-input safe.

Why not scapy's RawPcapReader: it trusts the record length (a corrupt caplen of
4 GiB is read as asked) and returns short records silently. Captures are
untrusted input here, so every length is bounded and a cut-off file is reported.
Formats: pcap (both byte orders, µs and ns magic; draft-ietf-opsawg-pcap) and
pcapng (SHB/IDB/EPB/SPB/PB; draft-ietf-opsawg-pcapng), any number of sections.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from typing import BinaryIO

from v6diag.errors import InputError
from v6diag.model import Frame

MAX_RECORD = 256 * 1024  # larger than any real snaplen (tcpdump max 262144)
MAX_BLOCK = 16 * 1024 * 1024

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D


class CaptureReader:
    """Iterate Frames from a capture file (path or '-' for stdin).

    After iteration, `problem` holds a one-line description if the file ended
    early or became unreadable (frames before that were still yielded)."""

    def __init__(self, path: str):
        self.path = path
        self.problem: str | None = None
        self.interface_names: list[str] = []
        self.count = 0

    def __iter__(self) -> Iterator[Frame]:
        if self.path == "-":
            yield from self._read(sys.stdin.buffer)
            return
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise InputError(f"cannot open capture {self.path}: {e.strerror}") from e
        with f:
            yield from self._read(f)

    def _read(self, f: BinaryIO) -> Iterator[Frame]:
        head = f.read(4)
        if len(head) < 4:
            raise InputError(f"{self.path}: empty or not a capture file")
        if struct.unpack(">I", head)[0] == PCAPNG_SHB:
            yield from self._pcapng(f, head)
            return
        for endian in "<>":
            magic = struct.unpack(endian + "I", head)[0]
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                yield from self._pcap(f, endian, magic == PCAP_MAGIC_NS)
                return
        raise InputError(
            f"{self.path}: not a pcap or pcapng file (magic {head.hex()})",
            hint="write captures with `tcpdump -w FILE` or `v6diag ... --write FILE`",
        )

    def _truncated(self, what: str) -> None:
        self.problem = f"{self.path}: {what} after {self.count} packets (truncated capture?)"

    # -- classic pcap -------------------------------------------------------
    def _pcap(self, f: BinaryIO, e: str, nanos: bool) -> Iterator[Frame]:
        rest = f.read(20)
        if len(rest) < 20:
            raise InputError(f"{self.path}: pcap file header is cut short")
        _vmaj, _vmin, _zone, _sig, _snap, linktype = struct.unpack(e + "HHiIII", rest)
        # Link type is the low 16 bits; the upper bits carry FCS info (pcap spec,
        # LinkType field; libpcap LT_LINKTYPE). The mask was 0x0FFFFFFF, which kept
        # the P ("FCS length present", 0x04000000) bit, so such files came out as
        # linktype 0x04000001 instead of 1 and no frame was decoded.
        linktype &= 0x0000FFFF
        scale = 1e-9 if nanos else 1e-6
        rec = struct.Struct(e + "IIII")
        while True:
            hdr = f.read(16)
            if not hdr:
                return
            if len(hdr) < 16:
                return self._truncated("record header cut short")
            sec, frac, caplen, wirelen = rec.unpack(hdr)
            if caplen > MAX_RECORD:
                self.problem = (
                    f"{self.path}: corrupt record {self.count} (length {caplen}); "
                    "stopped reading there"
                )
                return
            data = f.read(caplen)
            if len(data) < caplen:
                return self._truncated("packet data cut short")
            self.count += 1
            yield Frame(sec + frac * scale, linktype, data, wire_len=wirelen)

    # -- pcapng -------------------------------------------------------------
    def _pcapng(self, f: BinaryIO, head: bytes) -> Iterator[Frame]:
        e = "<"
        ifaces: list[tuple[int, float, int]] = []  # (linktype, seconds per tick, snaplen)
        bhead: bytes | None = head
        while True:
            if bhead is None:
                bhead = f.read(4)
                if not bhead:
                    return
            lenraw = f.read(4)
            if len(bhead) < 4 or len(lenraw) < 4:
                return self._truncated("block header cut short")
            btype_be = struct.unpack(">I", bhead)[0]
            btype = struct.unpack(e + "I", bhead)[0]
            bhead = None
            if btype_be == PCAPNG_SHB:
                bom = f.read(4)
                if len(bom) < 4:
                    return self._truncated("section header cut short")
                if struct.unpack("<I", bom)[0] == PCAPNG_BOM:
                    e = "<"
                elif struct.unpack(">I", bom)[0] == PCAPNG_BOM:
                    e = ">"
                else:
                    raise InputError(f"{self.path}: pcapng section with bad byte-order magic")
                blen = struct.unpack(e + "I", lenraw)[0]
                if blen < 28 or blen % 4 or blen > MAX_BLOCK:
                    raise InputError(f"{self.path}: pcapng section header has bad length {blen}")
                body = f.read(blen - 12)
                if len(body) < blen - 12:
                    return self._truncated("section header cut short")
                ifaces = []  # interface ids are per section
                continue
            blen = struct.unpack(e + "I", lenraw)[0]
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                self.problem = f"{self.path}: corrupt pcapng block (length {blen}) after {self.count} packets"
                return
            body = f.read(blen - 8)
            if len(body) < blen - 8:
                return self._truncated("block cut short")
            body = body[:-4]  # trailing copy of the block length
            frame = self._pcapng_block(btype, body, e, ifaces)
            if frame is not None:
                self.count += 1
                yield frame
            elif self.problem:
                return

    def _pcapng_block(self, btype, body, e, ifaces) -> Frame | None:
        if btype == 1 and len(body) >= 8:  # Interface Description Block
            linktype, _res, snap = struct.unpack(e + "HHI", body[:8])
            ifaces.append((linktype, self._idb_resolution(body[8:], e), snap))
            return None
        if btype == 6 and len(body) >= 20:  # Enhanced Packet Block
            ifid, hi, lo, caplen, wirelen = struct.unpack(e + "IIIII", body[:20])
            data = body[20 : 20 + caplen]
        elif btype == 3 and len(body) >= 4 and ifaces:  # Simple Packet Block
            ifid, hi, lo = 0, 0, 0
            wirelen = struct.unpack(e + "I", body[:4])[0]
            # SPB data is min(original length, IDB snaplen) (0 = no limit), then
            # padded to 32 bits; slicing by wirelen alone took the padding bytes
            # as packet data whenever the snaplen cut a packet.
            snap = ifaces[0][2]
            data = body[4 : 4 + (min(wirelen, snap) if snap else wirelen)]
            caplen = len(data)
        elif btype == 2 and len(body) >= 20:  # obsolete Packet Block
            ifid, _drops, hi, lo, caplen, wirelen = struct.unpack(e + "HHIIII", body[:20])
            data = body[20 : 20 + caplen]
        else:
            return None  # statistics, name resolution, custom...: not packets
        if ifid >= len(ifaces) or len(data) < caplen:
            self.problem = f"{self.path}: packet {self.count} refers to a missing interface or is cut short"
            return None
        linktype, tick, _snap = ifaces[ifid]
        return Frame(((hi << 32) | lo) * tick, linktype, bytes(data), wire_len=wirelen)

    def _idb_resolution(self, opts: bytes, e: str) -> float:
        """Walk IDB options for if_name (2) and if_tsresol (9)."""
        tick = 1e-6
        name = None
        i = 0
        while i + 4 <= len(opts):
            code, olen = struct.unpack(e + "HH", opts[i : i + 4])
            val = opts[i + 4 : i + 4 + olen]
            if code == 0:
                break
            if code == 2:
                name = val.decode("utf-8", "replace")
            elif code == 9 and olen >= 1:
                v = val[0]
                tick = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
            i += 4 + olen + (-olen % 4)
        self.interface_names.append(name or "")
        return tick


class CaptureWriter:
    """Write frames to a classic pcap file as they come (flushed per frame, so a
    killed run still leaves a readable capture)."""

    def __init__(self, path: str, linktype: int = 1, snaplen: int = 262144):
        from v6diag.errors import UsageError

        try:
            self.f = open(path, "wb")
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror}") from e
        self.f.write(struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, linktype))

    def write(self, frame: Frame) -> None:
        sec = int(frame.ts)
        usec = min(int(round((frame.ts - sec) * 1e6)), 999999)
        self.f.write(struct.pack("<IIII", sec, usec, len(frame.data), frame.wire_len or len(frame.data)))
        self.f.write(frame.data)
        self.f.flush()

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
