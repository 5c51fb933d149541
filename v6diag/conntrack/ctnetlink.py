"""Conntrack DESTROY events from ctnetlink (the fallback when no BPF probe can
be attached): what was destroyed, never why. Messages are decoded with
pyroute2's nfct_msg; only the socket is opened here (pyroute2 0.9's NFCTSocket
does not subscribe to event groups)."""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Iterator

from v6diag.conntrack.report import DestroyEvent
from v6diag.core.constants import PROTO_NAMES
from v6diag.core.errors import PrivilegeError, UnavailableError

NETLINK_NETFILTER = 12
NFNLGRP_CONNTRACK_DESTROY = 3  # include/uapi/linux/netfilter/nfnetlink.h
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_DELETE = 2


def status_names() -> dict[int, str]:
    """IPS_* status bits by value, from pyroute2 (a maintained copy, not ours)."""
    from pyroute2.netlink.nfnetlink import nfctsocket

    return {v: k[4:].lower() for k, v in vars(nfctsocket).items()
            if k.startswith("IPS_") and isinstance(v, int) and v and v & (v - 1) == 0}


def tcp_state_names() -> dict[int, str]:
    """TCP_CONNTRACK_* states by value (include/uapi/linux/netfilter/nf_conntrack_tcp.h)."""
    from pyroute2.netlink.nfnetlink import nfctsocket

    return {v: k[14:].lower() for k, v in vars(nfctsocket).items()
            if k.startswith("TCP_CONNTRACK_") and isinstance(v, int)}


class DestroyEvents:
    def __init__(self):
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            self.sock.bind((0, 1 << (NFNLGRP_CONNTRACK_DESTROY - 1)))
        except PermissionError as e:
            raise PrivilegeError("CAP_NET_ADMIN", "listening to conntrack events") from e
        except OSError as e:
            if e.errno in (errno.EPROTONOSUPPORT, errno.ENOENT):
                raise UnavailableError("conntrack netlink (nf_conntrack_netlink) is not available",
                                       hint="modprobe nf_conntrack_netlink") from e
            raise
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.lost = 0
        self._status = status_names()

    def events(self, deadline: float | None) -> Iterator[DestroyEvent | None]:
        """Yields one dict per destroyed entry, None on idle ticks (for progress)."""
        from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

        while deadline is None or time.monotonic() < deadline:
            self.sock.settimeout(0.2 if deadline is None else max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                yield None
                continue
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # the kernel dropped events: count, never hide
                    self.lost += 1
                    continue
                raise
            ts = time.time()
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if length < 16:
                    break
                if kind == (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE:
                    msg = nfct_msg(data[off : off + length])
                    msg.decode()
                    yield self._event(msg, ts)
                off += (length + 3) & ~3

    def _event(self, msg, ts: float) -> DestroyEvent:
        orig, reply = _tuple(msg.get_attr("CTA_TUPLE_ORIG")), _tuple(msg.get_attr("CTA_TUPLE_REPLY"))
        status = msg.get_attr("CTA_STATUS") or 0
        return {
            "time": ts, "family": "ipv6" if msg["nfgen_family"] == socket.AF_INET6 else "ipv4",
            "orig": orig, "reply": reply, "proto": orig.get("proto"),
            "mark": msg.get_attr("CTA_MARK") or 0, "zone": msg.get_attr("CTA_ZONE") or 0,
            "status": [name for bit, name in sorted(self._status.items()) if status & bit],
        }

    def close(self) -> None:
        self.sock.close()


def _tuple(t) -> dict:
    if t is None:
        return {}
    ip, proto = t.get_attr("CTA_TUPLE_IP"), t.get_attr("CTA_TUPLE_PROTO")
    num = proto.get_attr("CTA_PROTO_NUM") if proto else None
    return {
        "src": ip.get_attr("CTA_IP_V4_SRC") or ip.get_attr("CTA_IP_V6_SRC"),
        "dst": ip.get_attr("CTA_IP_V4_DST") or ip.get_attr("CTA_IP_V6_DST"),
        "sport": proto.get_attr("CTA_PROTO_SRC_PORT") if proto else None,
        "dport": proto.get_attr("CTA_PROTO_DST_PORT") if proto else None,
        "proto": PROTO_NAMES.get(num, str(num)),
    }
