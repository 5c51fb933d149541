"""Streaming pcap / pcapng reader: constant memory, hostile-input safe.

Why not scapy's RawPcapReader: it trusts the record length (a corrupt caplen of
4 GiB is read as asked) and returns short records silently. Captures are
untrusted input here, so every length is bounded and a cut-off file is reported.
Formats: pcap (both byte orders, µs and ns magic; draft-ietf-opsawg-pcap) and
pcapng (SHB/IDB/EPB/SPB/PB; draft-ietf-opsawg-pcapng), any number of sections.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
from collections.abc import Iterator
from typing import BinaryIO

from v6diag.core.constants import LINKTYPE_ETHERNET
from v6diag.core.errors import DataError, InputError, UsageError
from v6diag.core.frames import Batch, Frame

MAX_RECORD = 256 * 1024  # larger than any real snaplen (tcpdump max 262144)
MAX_BLOCK = 16 * 1024 * 1024

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
SHB_BYTES = b"\x0a\x0d\x0d\x0a"  # the same in both byte orders
BOM_LE = b"\x4d\x3c\x2b\x1a"
BOM_BE = b"\x1a\x2b\x3c\x4d"
CHUNK = 2 * 1024 * 1024  # bytes read at a time: memory stays flat whatever the file size


class CaptureReader:
    """Read a capture file (path or '-' for stdin) as Frames or as Batches.

    Raises InputError when the input is not a capture at all, DataError when it
    is one but damaged before its first packet. Damage later in the file stops
    reading and sets `problem` to a one-line description; what came before is
    still delivered. `on_progress(bytes read, size or None, packets)` is called
    once per chunk read (a progress bar)."""

    def __init__(self, path: str, chunk_size: int = CHUNK, on_progress=None):
        self.path = path
        self.chunk_size = chunk_size
        self.problem: str | None = None
        self.interface_names: list[str] = []
        self.count = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.bytes_read = 0
        self.size: int | None = None  # None for a pipe
        self.on_progress = on_progress

    def __iter__(self) -> Iterator[Frame]:
        for batch in self.batches():
            yield from batch.frames()

    def batches(self) -> Iterator[Batch]:
        if self.path == "-":
            yield from self._checked(sys.stdin.buffer)
            return
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise InputError(f"cannot open capture {self.path}: {e.strerror}") from e
        with f:
            try:
                size = os.fstat(f.fileno()).st_size
                self.size = size if stat.S_ISREG(os.fstat(f.fileno()).st_mode) else None
            except OSError:
                self.size = None
            yield from self._checked(f)

    def _checked(self, f: BinaryIO) -> Iterator[Batch]:
        yield from self._read(f)
        if self.count == 0 and self.problem:  # damaged at its first record: nothing was analysed
            raise DataError(self.problem.replace(" after 0 packets", "").replace("; stopped reading there", ""),
                            hint="the file is damaged from its start; re-capture it")

    def _more(self, f: BinaryIO, need: int) -> bytes:
        # read1: return what a pipe has now (tcpdump -U -w - | v6diag ... -), don't wait for a chunk
        data = f.read1(max(self.chunk_size, need))
        self.bytes_read += len(data)
        if self.on_progress is not None:
            self.on_progress(self.bytes_read, self.size, self.count)
        return data

    def _read(self, f: BinaryIO) -> Iterator[Batch]:
        buf = self._more(f, 24)
        while 0 < len(buf) < 24:
            more = self._more(f, 24 - len(buf))
            if not more:
                break
            buf += more
        if len(buf) < 4:
            raise InputError(f"{self.path}: empty or not a capture file")
        if buf[:4] == SHB_BYTES:
            yield from self._pcapng(f, buf)
            return
        for e in "<>":
            magic = struct.unpack_from(e + "I", buf)[0]
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                if len(buf) < 24:
                    raise InputError(f"{self.path}: pcap file header is cut short")
                linktype = struct.unpack_from(e + "I", buf, 20)[0]
                # LinkType is the low 16 bits; the upper ones carry FCS info (pcap spec)
                yield from self._pcap(f, buf, e, magic == PCAP_MAGIC_NS, linktype & 0xFFFF)
                return
        raise InputError(
            f"{self.path}: not a pcap or pcapng file (magic {buf[:4].hex()})",
            hint="write captures with `tcpdump -w FILE` or `v6diag ... --write FILE`",
        )

    def _refill(self, f: BinaryIO, buf: bytes, pos: int, need: int, header: int, names) -> bytes | None:
        """The unread tail of `buf` plus the next chunk; None at the end of input
        (noting a truncated last record when the tail is not empty)."""
        more = self._more(f, need)
        if more:
            return buf[pos:] + more
        rest = len(buf) - pos
        if rest:
            self._truncated(f"{names[0] if rest < header else names[1]} cut short")
        return None

    def _truncated(self, what: str) -> None:
        self.problem = f"{self.path}: {what} after {self.count} packets (truncated capture?)"

    @property
    def span_s(self) -> float:
        """Seconds from the first packet read to the last (0 before any)."""
        return 0.0 if self.first_ts is None else self.last_ts - self.first_ts

    @property
    def interface_name(self) -> str | None:
        """The capture's interface when it names exactly one (pcapng if_name)."""
        names = {n for n in self.interface_names if n}
        return names.pop() if len(names) == 1 else None

    def _batch(self, buf, offs, lens, wls, ts, lts) -> Batch:
        b = Batch(buf, offs, lens, wls, ts, lts, self.count)
        self.count += len(offs)
        if self.first_ts is None:
            self.first_ts = ts[0]
        self.last_ts = ts[-1]
        return b

    # -- classic pcap -------------------------------------------------------
    def _pcap(self, f: BinaryIO, buf: bytes, e: str, nanos: bool, linktype: int) -> Iterator[Batch]:
        scale = 1e-9 if nanos else 1e-6
        unpack = struct.Struct(e + "IIII").unpack_from
        pos = 24
        while True:
            offs, lens, wls, ts = [], [], [], []
            n = len(buf)
            need = 16
            while pos + 16 <= n:
                sec, frac, caplen, wirelen = unpack(buf, pos)
                if caplen > MAX_RECORD:
                    self.problem = (f"{self.path}: corrupt record {self.count + len(offs)} "
                                    f"(length {caplen}); stopped reading there")
                    if offs:
                        yield self._batch(buf, offs, lens, wls, ts, [linktype] * len(offs))
                    return
                if pos + 16 + caplen > n:
                    need = 16 + caplen
                    break
                offs.append(pos + 16)
                lens.append(caplen)
                wls.append(wirelen)
                ts.append(sec + frac * scale)
                pos += 16 + caplen
            if offs:
                yield self._batch(buf, offs, lens, wls, ts, [linktype] * len(offs))
            buf = self._refill(f, buf, pos, need, 16, ("record header", "packet data"))
            if buf is None:
                return
            pos = 0

    # -- pcapng -------------------------------------------------------------
    def _pcapng(self, f: BinaryIO, buf: bytes) -> Iterator[Batch]:
        e = "<"
        ifaces: list[tuple[int, float, int]] = []  # (linktype, seconds per tick, snaplen)
        pos, first = 0, True
        while True:
            offs, lens, wls, ts, lts = [], [], [], [], []
            n = len(buf)
            need = 12
            stop = False
            while pos + 12 <= n:
                if buf[pos : pos + 4] == SHB_BYTES:
                    bom = buf[pos + 8 : pos + 12]
                    e = "<" if bom == BOM_LE else ">" if bom == BOM_BE else ""
                    blen = struct.unpack_from((e or "<") + "I", buf, pos + 4)[0]
                    if not e or blen < 28 or blen % 4 or blen > MAX_BLOCK:
                        what = "bad byte-order magic" if not e else f"bad length {blen}"
                        if first:
                            raise InputError(f"{self.path}: pcapng section header with {what}")
                        self.problem = f"{self.path}: pcapng section header with {what} after {self.count + len(offs)} packets"
                        stop = True
                        break
                    if pos + blen > n:
                        need = blen
                        break
                    first = False
                    ifaces = []  # interface ids are per section
                    pos += blen
                    continue
                btype, blen = struct.unpack_from(e + "II", buf, pos)
                if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                    self.problem = f"{self.path}: corrupt pcapng block (length {blen}) after {self.count + len(offs)} packets"
                    stop = True
                    break
                if pos + blen > n:
                    need = blen
                    break
                body, end = pos + 8, pos + blen - 4
                pos += blen
                if btype == 1 and end - body >= 8:  # Interface Description Block
                    linktype, _res, snap = struct.unpack_from(e + "HHI", buf, body)
                    ifaces.append((linktype, self._idb_resolution(buf[body + 8 : end], e), snap))
                    continue
                if btype == 6 and end - body >= 20:  # Enhanced Packet Block
                    ifid, hi, lo, caplen, wirelen = struct.unpack_from(e + "IIIII", buf, body)
                    data = body + 20
                elif btype == 3 and end - body >= 4 and ifaces:  # Simple Packet Block
                    ifid, hi, lo = 0, 0, 0
                    wirelen = struct.unpack_from(e + "I", buf, body)[0]
                    # data is min(original length, IDB snaplen) (0 = no limit), then padding
                    snap = ifaces[0][2]
                    data = body + 4
                    caplen = min(wirelen, snap, end - data) if snap else min(wirelen, end - data)
                elif btype == 2 and end - body >= 20:  # obsolete Packet Block
                    ifid, _drops, hi, lo, caplen, wirelen = struct.unpack_from(e + "HHIIII", buf, body)
                    data = body + 20
                else:
                    continue  # statistics, name resolution, custom...: not packets
                if ifid >= len(ifaces) or data + caplen > end:
                    self.problem = (f"{self.path}: packet {self.count + len(offs)} refers to a "
                                    "missing interface or is cut short")
                    stop = True
                    break
                linktype, tick, _snap = ifaces[ifid]
                offs.append(data)
                lens.append(caplen)
                wls.append(wirelen)
                ts.append(((hi << 32) | lo) * tick)
                lts.append(linktype)
            if offs:
                yield self._batch(buf, offs, lens, wls, ts, lts)
            if stop:
                return
            buf = self._refill(f, buf, pos, need, 12, ("block header", "block"))
            if buf is None:
                return
            pos = 0

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
    """Write frames to a capture as they come (flushed per frame, so a killed run
    still leaves a readable file): pcapng when the name ends in .pcapng, with an
    optional comment per packet (Wireshark shows it: why a packet was flagged) and
    the interface's name; classic pcap (µs) otherwise."""

    def __init__(self, path: str, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144,
                 interface: str | None = None):
        self.ng = path.lower().endswith(".pcapng")
        try:
            self.f = open(path, "wb")
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror}") from e
        if not self.ng:
            self.f.write(struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, linktype))
            return
        # draft-ietf-opsawg-pcapng: a Section Header, then one Interface Description
        # with if_name (2) and if_tsresol (9) = 10^-9 s; little-endian throughout
        self.f.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        opts = (_option(2, interface.encode()) if interface else b"") + _option(9, bytes([9])) + _END_OF_OPTIONS
        self.f.write(_block(1, struct.pack("<HHI", linktype, 0, snaplen) + opts))

    def write(self, frame: Frame, comment: str | None = None) -> None:
        if self.ng:
            ticks = int(round(frame.ts * 1e9))
            body = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame.data),
                               frame.wire_len or len(frame.data)) + _pad(frame.data)
            if comment:
                body += _option(1, comment.encode()) + _END_OF_OPTIONS  # opt_comment
            self.f.write(_block(6, body))  # Enhanced Packet Block
        else:
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


_END_OF_OPTIONS = b"\0\0\0\0"


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)
