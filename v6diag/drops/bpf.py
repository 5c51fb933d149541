"""Drops with their flows, from a bcc program on the skb:kfree_skb tracepoint
(bpf/kfree_skb.c): a tracepoint needs no kprobes, and costs a fraction of one.
Filters run in the kernel (-D knobs); the program counts per reason and per
(reason, location), so totals are exact whatever the event buffer loses."""

from __future__ import annotations

import ctypes as ct
import socket
import time
from collections import Counter
from collections.abc import Iterator

from v6diag.core import bcc
from v6diag.core.constants import PROTO_NAMES
from v6diag.drops.report import DropEvent

PROGRAM = "kfree_skb.c"
REASON_WORDS = 3  # the reason mask covers reasons 0..191
FAMILIES = {4: ("ipv4", socket.AF_INET, 4), 6: ("ipv6", socket.AF_INET6, 16)}
ETHERTYPES = {0x86DD: "ipv6", 0x0800: "ipv4", 0x0806: "arp"}


class Flow(ct.Structure):  # struct flow in bpf/kfree_skb.c
    _fields_ = [("family", ct.c_uint8), ("l4", ct.c_uint8), ("sport", ct.c_uint16), ("dport", ct.c_uint16),
                ("icmp_type", ct.c_uint8), ("pad", ct.c_uint8), ("src", ct.c_uint8 * 16), ("dst", ct.c_uint8 * 16)]


class DropRecord(ct.Structure):  # struct drop_event
    _fields_ = [("ts_ns", ct.c_uint64), ("location", ct.c_uint64), ("reason", ct.c_uint32), ("ifindex", ct.c_uint32),
                ("netns", ct.c_uint32), ("protocol", ct.c_uint16), ("pad", ct.c_uint16), ("outer", Flow),
                ("inner", Flow)]


def missing() -> list[str]:
    return bcc.missing()


def cflags(fmt, wanted, buffer: str) -> list[str]:
    from v6diag.core import netns

    out = [f"-DREASON_SLOTS={max(fmt.reasons, default=0) + 2}"]
    if buffer == "ring":
        out.append("-DUSE_RINGBUF")
    if wanted.summary_only:
        out.append("-DSUMMARY_ONLY")
    if wanted.reasons:
        words = [0] * REASON_WORDS
        for name in wanted.reasons:
            n = fmt.number(name)
            if n is not None and n < 64 * REASON_WORDS:
                words[n // 64] |= 1 << (n % 64)
        out += [f"-DREASONS_W{i}={w}ULL" for i, w in enumerate(words)]
    if wanted.netns:
        out.append(f"-DFILTER_NETNS={netns.inode(wanted.netns)}u")
    if wanted.iface:
        out.append(f"-DFILTER_IFINDEX={ifindex(wanted.iface, wanted.netns)}u")
    if wanted.proto is not None:
        out.append(f"-DFILTER_PROTO={wanted.proto}")
    if wanted.port is not None:
        out.append(f"-DFILTER_PORT={wanted.port}")
    return out


def ifindex(name: str, netns_name: str | None) -> int:
    from v6diag.core import netlink
    from v6diag.core.errors import UsageError

    if netns_name:
        index = netlink.index_in(netns_name, name)
    else:
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            index = None
    if not index:
        raise UsageError(f"no such interface: {name}" + (f" in {netns_name}" if netns_name else ""),
                         hint="list interfaces with `ip -br link`")
    return index


class BpfDrops:
    name = "bpf"

    def __init__(self, fmt, wanted, buffer: str = "auto", pages: int | None = None):
        self.fmt, self.summary_only = fmt, wanted.summary_only
        self.buffer = ("ring" if bcc.ring_buffer_available() else "perf") if buffer == "auto" else buffer
        flags = cflags(fmt, wanted, self.buffer)
        if pages and self.buffer == "ring":
            flags.append(f"-DRING_PAGES={pages}")
        self.bpf = bcc.compile_program(PROGRAM, flags)  # TRACEPOINT_PROBE attaches itself
        self._pending: list[DropEvent] = []
        self.malformed = 0
        self._names: dict[tuple[int, int], str] = {}
        self._symbols: dict[int, str] = {}
        if self.summary_only:
            self._poll = None
        elif self.buffer == "ring":
            self.bpf["events"].open_ring_buffer(self._on_ring)
            self._poll = self.bpf.ring_buffer_poll
        else:
            self.bpf["events"].open_perf_buffer(self._on_event, page_cnt=pages or 512, lost_cb=lambda n: None)
            self._poll = self.bpf.perf_buffer_poll
        self._offset = time.time() - time.monotonic()  # bpf_ktime_get_ns is CLOCK_MONOTONIC

    def _on_ring(self, ctx, data, size) -> int:
        self._on_event(0, data, size)
        return 0

    def _on_event(self, cpu, data, size) -> None:
        # bcc swallows exceptions raised in this ctypes callback: none may escape
        if size < ct.sizeof(DropRecord):
            self.malformed += 1
            return
        self._pending.append(self._decode(ct.cast(data, ct.POINTER(DropRecord)).contents))

    def events(self, deadline: float | None) -> Iterator[DropEvent | None]:
        for batch in bcc.batches(self._poll, self._take, deadline):
            if batch is None:
                yield None
            else:
                yield from batch

    def _take(self) -> list[DropEvent]:
        batch, self._pending = self._pending, []
        return batch

    def drain(self) -> Iterator[DropEvent]:
        """What the kernel already handed over, without waiting (after Ctrl-C)."""
        if self._poll is not None:
            self._poll(timeout=0)
        yield from self._take()

    def _decode(self, r) -> DropEvent:
        outer, inner = _flow(r.outer), _flow(r.inner)
        return {"time": round(self._offset + r.ts_ns / 1e9, 6), "reason": self.fmt.reasons.get(r.reason, f"REASON_{r.reason}"),
                "location": self._symbol(r.location),
                "family": outer.get("family") or ETHERTYPES.get(r.protocol), "proto": outer.get("proto"),
                "src": outer.get("src"), "dst": outer.get("dst"), "sport": outer.get("sport"),
                "dport": outer.get("dport"), "ifname": self._ifname(r.ifindex, r.netns), "netns": r.netns or None,
                "inner": inner or None, "source": "bpf"}

    def _symbol(self, address: int) -> str | None:
        if not address:
            return None
        name = self._symbols.get(address)
        if name is None:
            name = self._symbols[address] = bcc.ksym(address, offset=True)
        return name

    def _ifname(self, index: int, netns: int) -> str | None:
        """The device's name in its own namespace (an index means nothing elsewhere)."""
        if not index:
            return None
        key = (netns, index)
        if key not in self._names:
            if len(self._names) >= 4096:  # bounded: namespaces and devices come and go
                self._names.clear()
            self._names[key] = self._lookup(index, netns) or f"if{index}"
        return self._names[key]

    def _lookup(self, index: int, netns: int) -> str | None:
        from v6diag.core import netns as ns

        try:
            if not netns or netns == ns.own_inode():
                return socket.if_indextoname(index)
            name = ns.name_of_inode(netns)
            return ns.call_in(name, socket.if_indextoname, index) if name else None
        except Exception:  # the namespace or device is gone already
            return None

    def counts(self) -> tuple[Counter, Counter]:
        """(by reason, by location) as the program counted them."""
        by_reason: Counter = Counter()
        for k, v in self.bpf["by_reason"].items():
            if v.value:
                by_reason[self.fmt.reasons.get(k.value, f"REASON_{k.value}")] += int(v.value)
        by_location: Counter = Counter()
        for k, v in self.bpf["by_location"].items():
            by_location[(self._symbol(k.location) or "?").split("/")[0]] += int(v.value)
        return by_reason, by_location

    def dropped(self) -> int:
        return int(self.bpf["dropped"][ct.c_int(0)].value)

    def uncounted(self) -> int:
        return int(self.bpf["dropped"][ct.c_int(1)].value)

    def close(self) -> None:
        bcc.release(self.bpf)


def _flow(f) -> dict:
    if f.family not in FAMILIES:
        return {}
    family, af, size = FAMILIES[f.family]
    proto = PROTO_NAMES.get(f.l4, str(f.l4))
    ports = proto in ("tcp", "udp")
    out = {"family": family, "proto": proto, "src": socket.inet_ntop(af, bytes(f.src)[:size]),
           "dst": socket.inet_ntop(af, bytes(f.dst)[:size]), "sport": f.sport if ports else None,
           "dport": f.dport if ports else None}
    if proto in ("icmp", "icmpv6"):
        out["icmp_type"] = f.icmp_type
    return out
