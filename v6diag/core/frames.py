"""Frames as every source delivers them: one at a time (Frame), or a batch still
inside the buffer it was read into (Batch), for the hot paths."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Frame:
    """One link-layer frame from any source (capture file, live socket)."""

    ts: float  # seconds since the epoch
    linktype: int  # pcap LINKTYPE_* (core.constants)
    data: bytes
    outgoing: bool = False  # sent by this host (live capture only)
    wire_len: int = 0  # original length on the wire (0 = same as data)
    csum_not_ready: bool | None = None  # live: the kernel's TP_STATUS_CSUMNOTREADY


@dataclass
class Batch:
    """Consecutive packets of one capture, still inside the chunk they were read
    in: `buf[offsets[i] : offsets[i] + lengths[i]]` is packet `first_index + i`.
    Fast paths (checksum) work on these without making an object per packet."""

    buf: bytes
    offsets: list[int]
    lengths: list[int]
    wire_lens: list[int]
    ts: list[float]
    linktypes: list[int]
    first_index: int
    outgoing: list[bool] | None = None  # live: sent by this host (PACKET_OUTGOING); None from a file

    def __len__(self) -> int:
        return len(self.offsets)

    def frames(self) -> Iterator[Frame]:
        buf = self.buf
        for off, n, wl, ts, lt in zip(self.offsets, self.lengths, self.wire_lens, self.ts, self.linktypes):
            yield Frame(ts, lt, buf[off : off + n], wire_len=wl)

    @classmethod
    def of(cls, frames: list[Frame], first_index: int) -> Batch:
        """A batch made of frames received one by one (live capture)."""
        offs, pos = [], 0
        for f in frames:
            offs.append(pos)
            pos += len(f.data)
        lens = [len(f.data) for f in frames]
        return cls(b"".join(f.data for f in frames), offs, lens, list(lens), [f.ts for f in frames],
                   [f.linktype for f in frames], first_index, [f.outgoing for f in frames])
