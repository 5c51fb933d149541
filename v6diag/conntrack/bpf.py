"""Conntrack destructions seen by a BPF probe on nf_ct_delete (bpf/conntrack_delete.c),
loaded with bcc: the entry's tuples and state plus the kernel stack that led there.
What the probe needs is checked first, each missing piece named with how to get
it (bcc's tools do the same). bcc is imported here and nowhere else, late, so
--help stays instant."""

from __future__ import annotations

import ctypes as ct
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from v6diag.conntrack.ctnetlink import status_names, tcp_state_names
from v6diag.conntrack.report import DestroyEvent
from v6diag.core import bcc
from v6diag.core.constants import PROTO_NAMES
from v6diag.core.errors import UnavailableError

PROGRAM = "conntrack_delete.c"  # in the package as v6diag.bpf (bpf/ in the source tree)
PROBED = "nf_ct_delete"


def source():
    """The program's C source, as shipped: a Traversable (a real file once installed)."""
    return bcc.source(PROGRAM)


NO_KPROBES = "kprobes unavailable on this kernel (no kprobe event source: CONFIG_KPROBES off?)"


def kprobes_available() -> bool:
    return (os.path.exists("/sys/bus/event_source/devices/kprobe")
            or os.path.exists("/sys/kernel/tracing/kprobe_events")
            or os.path.exists("/sys/kernel/debug/tracing/kprobe_events"))


def missing_for_bcc() -> list[str]:
    return bcc.missing()


class CtTuple(ct.Structure):  # struct ct_tuple in bpf/conntrack_delete.c
    _fields_ = [("src", ct.c_uint8 * 16), ("dst", ct.c_uint8 * 16), ("sport", ct.c_uint16), ("dport", ct.c_uint16)]


class CtEvent(ct.Structure):  # struct ct_event; same field order, natural alignment
    _fields_ = [("ts_ns", ct.c_uint64), ("pid", ct.c_uint32), ("netns", ct.c_uint32), ("mark", ct.c_uint32),
                ("status", ct.c_uint32), ("stack_id", ct.c_int32), ("timeout_left", ct.c_int32),
                ("zone", ct.c_uint16), ("l3", ct.c_uint8), ("l4", ct.c_uint8), ("tcp_state", ct.c_uint8),
                ("comm", ct.c_char * 16), ("orig", CtTuple), ("reply", CtTuple)]


@dataclass
class KernelFilter:
    """What the BPF program drops before an event is even sent or counted (-D knobs)."""
    l3: int | None = None  # socket.AF_INET / AF_INET6
    proto: int | None = None
    port: int | None = None
    mark: int | None = None
    netns: int | None = None  # inode of the namespace
    src: str | None = None  # an address, as --src/--dst take it
    dst: str | None = None

    def cflags(self) -> list[str]:
        knobs = {"FILTER_L3": self.l3, "FILTER_PROTO": self.proto, "FILTER_PORT": self.port,
                 "FILTER_MARK": self.mark, "FILTER_NETNS": self.netns}
        out = [f"-D{k}={v}u" if k in ("FILTER_MARK", "FILTER_NETNS") else f"-D{k}={v}"
               for k, v in knobs.items() if v is not None]
        for name, address in (("SRC", self.src), ("DST", self.dst)):
            if address is not None:
                out += [f"-DFILTER_{name}_W{i}={w}u" for i, w in enumerate(address_words(address))]
        return out


def address_words(address: str) -> tuple[int, ...]:
    """The 16 bytes the kernel keeps for an address (nf_inet_addr: IPv4 in the
    first 4, the rest zero), as the four u32 words the program compares."""
    import ipaddress
    import struct

    return struct.unpack("=4I", ipaddress.ip_address(address).packed.ljust(16, b"\0"))


def cflags(mode: str, kfilter: KernelFilter, buffer: str = "perf", summary_only: bool = False) -> list[str]:
    return ((["-DUSE_FENTRY"] if mode == "fentry" else []) + (["-DUSE_RINGBUF"] if buffer == "ring" else [])
            + (["-DSUMMARY_ONLY"] if summary_only else []) + kfilter.cflags())


def fentry_blocker() -> str | None:
    """Why the fentry variant cannot attach here, or None.
    bcc (0.26, Debian 12) resolves fentry targets in vmlinux BTF only; nf_ct_delete
    sits in the nf_conntrack module on distribution kernels, so fentry needs a kernel
    with conntrack built in (measured on 6.1.0-56-amd64: "nf_ct_delete is not found
    in vmlinux BTF")."""
    if not bcc.supports_fentry():
        return "BPF trampolines (fentry) unsupported: needs x86-64, kernel BTF and bpf_trampoline"
    if not conntrack_builtin():
        return ("fentry cannot attach to nf_ct_delete: it lives in the nf_conntrack module and bcc "
                "attaches fentry only to functions in vmlinux BTF")
    return None


def conntrack_builtin() -> bool:
    mod = Path("/sys/module/nf_conntrack")
    if mod.exists():  # loadable modules have an initstate, built-in ones do not
        return not (mod / "initstate").exists()
    release = os.uname().release
    try:
        builtin = Path(f"/lib/modules/{release}/modules.builtin").read_text()
    except OSError:
        return False
    return any(line.endswith("/nf_conntrack.ko") for line in builtin.splitlines())


def ensure_conntrack_loaded() -> bool:
    """nf_ct_delete lives in the nf_conntrack module; a probe can only attach once
    it is loaded. Returns True when this call loaded it."""
    if Path("/sys/module/nf_conntrack").exists():
        return False
    r = subprocess.run(["modprobe", "nf_conntrack"], capture_output=True, text=True)
    if r.returncode:
        raise UnavailableError(f"cannot load nf_conntrack: {r.stderr.strip() or 'modprobe failed'}",
                               hint="this kernel may have no conntrack (CONFIG_NF_CONNTRACK)")
    return True


class BpfDeleteEvents:
    """Destroy events from the program's buffer, and its in-kernel counts."""

    def __init__(self, mode: str, kfilter: KernelFilter, buffer: str = "auto", summary_only: bool = False,
                 pages: int | None = None):
        # A `conntrack -F` of a busy table arrives as one burst, faster than any
        # reader (bench/conntrack): 512 pages (2 MiB) per CPU of perf buffer, or one
        # 4 MiB ring shared by all CPUs, hold ~15k-30k events. What overflows is
        # counted in the kernel, and the totals come from the counts anyway.
        self.mode, self.summary_only = mode, summary_only
        self.buffer = ("ring" if bcc.ring_buffer_available() else "perf") if buffer == "auto" else buffer
        flags = cflags(mode, kfilter, self.buffer, summary_only)
        if pages and self.buffer == "ring":
            flags.append(f"-DRING_PAGES={pages}")
        self.bpf = bcc.compile_program(PROGRAM, flags)
        if not self.bpf.num_open_kprobes() and not getattr(self.bpf, "kfunc_entry_fds", None):
            raise UnavailableError(f"the {mode} probe on {PROBED} did not attach")
        self.lost = 0
        self.malformed = 0
        self._pending: list[dict] = []
        self._status = status_names()
        self._status_cache: dict[int, list[str]] = {}
        self._tcp = tcp_state_names()
        self._modules = bcc.modules()
        self._stacks: dict[int, list[str]] = {}  # stack id -> names; a flush repeats one stack
        if summary_only:
            self._poll = None
        elif self.buffer == "ring":
            self.bpf["events"].open_ring_buffer(self._on_ring_event)
            self._poll = self.bpf.ring_buffer_poll
        else:
            self.bpf["events"].open_perf_buffer(self._on_event, page_cnt=pages or 512, lost_cb=self._on_lost)
            self._poll = self.bpf.perf_buffer_poll
        # ktime (CLOCK_MONOTONIC) -> wall clock
        self._offset = time.time() - time.monotonic()

    def _on_lost(self, n: int) -> None:
        # the same losses are counted in the kernel (dropped map) when perf_submit
        # fails; this callback only keeps bcc from printing its own warning
        pass

    def _on_event(self, cpu, data, size) -> None:
        # bcc swallows exceptions raised in this ctypes callback: none may escape
        if size < ct.sizeof(CtEvent):
            self.malformed += 1
            return
        self._pending.append(self._decode(ct.cast(data, ct.POINTER(CtEvent)).contents))

    def _on_ring_event(self, ctx, data, size) -> int:
        self._on_event(0, data, size)
        return 0

    def events(self, deadline: float | None) -> Iterator[DestroyEvent | None]:
        """One dict per destroyed entry; None on idle ticks (for progress). With
        summary_only, only ticks until the deadline: the counts are in the kernel."""
        for batch in bcc.batches(self._poll, self._take, deadline):
            if batch is None:
                yield None
                continue
            self._refresh_symbols()
            for ev in batch:
                ev["stack"] = self._stack(ev.pop("stack_id"))
                yield ev

    def _take(self) -> list[dict]:
        batch, self._pending = self._pending, []
        return batch

    def dropped(self) -> int:
        """Events the program could not submit because the buffer was full."""
        return self._dropped(0)

    def uncounted(self) -> int:
        """Destructions the count table had no room for (COUNT_SLOTS keys in use)."""
        return self._dropped(1)

    def _dropped(self, slot: int) -> int:
        value = self.bpf["dropped"][ct.c_int(slot)]
        return int(value.value)

    def counts(self) -> list[tuple[list[str], bool, bool, int]]:
        """(stack, expired, reply seen, destructions) as counted in the kernel."""
        self._refresh_symbols()
        return [(self._stack(k.stack_id), bool(k.expired), bool(k.seen_reply), int(v.value))
                for k, v in self.bpf["counts"].items()]

    def _decode(self, e) -> DestroyEvent:
        fam = socket.AF_INET6 if e.l3 == socket.AF_INET6 else socket.AF_INET
        proto = PROTO_NAMES.get(e.l4, str(e.l4))
        return {
            "time": self._offset + e.ts_ns / 1e9,
            "family": "ipv6" if fam == socket.AF_INET6 else "ipv4",
            "orig": _tuple(e.orig, fam, proto), "reply": _tuple(e.reply, fam, proto), "proto": proto,
            "mark": e.mark, "zone": e.zone, "netns": e.netns,
            "status": self._status_list(e.status),
            "tcp_state": self._tcp.get(e.tcp_state) if e.l4 == socket.IPPROTO_TCP else None,
            "expired": e.timeout_left <= 0, "timeout_left_jiffies": e.timeout_left,
            "pid": e.pid, "comm": e.comm.decode(errors="replace"), "stack_id": e.stack_id,
            "mode": self.mode,
        }

    def _status_list(self, status: int) -> list[str]:
        names = self._status_cache.get(status)
        if names is None:  # a handful of distinct values in practice
            names = self._status_cache[status] = [n for bit, n in sorted(self._status.items()) if status & bit]
        return list(names)

    def _stack(self, stack_id: int) -> list[str]:
        if stack_id < 0:  # -EFAULT/-EEXIST: the stack map was full or the walk failed
            return []
        if stack_id not in self._stacks:
            try:
                addrs = list(self.bpf["stacks"].walk(stack_id))
            except KeyError:
                return []
            self._stacks[stack_id] = [bcc.ksym(a) for a in addrs]
        return list(self._stacks[stack_id])

    def _refresh_symbols(self) -> None:
        mods = bcc.modules()
        if mods != self._modules:  # a module loaded since (nf_conntrack_netlink on the first `conntrack -D`)
            bcc.forget_symbols()
            self._modules = mods
            self._stacks.clear()

    def close(self) -> None:
        bcc.release(self.bpf)


def _tuple(t, fam: int, proto: str) -> dict:
    raw_src, raw_dst = bytes(t.src), bytes(t.dst)
    if fam == socket.AF_INET:
        raw_src, raw_dst = raw_src[:4], raw_dst[:4]
    ports = proto in ("tcp", "udp", "sctp", "udplite", "dccp")
    return {  # inet_ntop: the same text as ipaddress, several times faster per event
        "src": socket.inet_ntop(fam, raw_src), "dst": socket.inet_ntop(fam, raw_dst),
        "sport": socket.ntohs(t.sport) if ports else None, "dport": socket.ntohs(t.dport) if ports else None,
        "proto": proto,
    }
