"""Why a conntrack entry was destroyed: the kernel path (stack) and the entry's
own state, mapped to a cause with a plain explanation and a fix.

The table follows every caller of nf_ct_delete() in the kernel (checked against
6.1 and 6.6 sources): ctnetlink (net/netfilter/nf_conntrack_netlink.c), the GC
and early drop (nf_conntrack_core.c), NAT (nf_nat_core.c, nf_nat_masquerade.c),
TCP tracking (nf_conntrack_proto_tcp.c), IPVS (ip_vs_conn.c) and namespace exit.
Every row but snat-clash and ipvs-expire was reproduced in the kernel tier and
its stack is a unit-test fixture (tests/fixtures/conntrack)."""

from __future__ import annotations

from dataclasses import dataclass

from v6diag.conntrack.report import DestroyEvent

# (cause, any of these functions on the stack); first match wins, most specific first
STACK_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("userspace-flush", ("ctnetlink_flush_conntrack",)),
    ("netlink-iterate", ("nf_ct_iterate_cleanup", "nf_ct_iterate_cleanup_net")),  # see classify()
    ("userspace-delete", ("ctnetlink_del_conntrack",)),
    ("masquerade-cleanup", ("masq_device_event", "masq_inet_event", "masq_inet6_event",
                            "nf_nat_masq_schedule", "iterate_cleanup_work")),
    ("nat-oif-changed", ("nf_nat_inet_fn",)),  # its only way to nf_ct_delete is nf_nat_oif_changed
    ("snat-clash", ("nf_nat_used_tuple_harder",)),
    ("ipvs-expire", ("ip_vs_conn_drop_conntrack", "ip_vs_conn_expire")),
    ("netns-exit", ("nf_conntrack_pernet_exit", "nf_conntrack_cleanup_net_list")),
    ("tcp", ("nf_conntrack_tcp_packet",)),  # reopen or RST: decided by the entry's state
    ("timeout", ("nf_ct_gc_expired",)),
    # __nf_conntrack_alloc reaches nf_ct_delete only through early_drop (both may be
    # inlined); gc_worker kills a live entry only when the table is >95% full
    # (gc_worker_can_early_drop, inlined): its expired ones went through nf_ct_gc_expired
    ("early-drop", ("early_drop", "early_drop_list", "gc_worker_can_early_drop", "__nf_conntrack_alloc",
                    "gc_worker")),
]

CAUSES = {
    "timeout": ("the entry's timeout ran out (expected: idle flows age out)",
                "raise the protocol's timeout if flows idle longer, e.g. "
                "`sysctl -w net.netfilter.nf_conntrack_udp_timeout_stream=180`"),
    "userspace-delete": ("a program deleted it over netlink (conntrack -D, kube-proxy, a firewall manager)",
                         "find the program (see comm) and why it deletes this flow"),
    "userspace-flush": ("a program flushed the table (conntrack -F, a firewall reload)",
                        "avoid flushing conntrack on firewall reloads"),
    "nat-oif-changed": ("a NATed (masqueraded) flow's packet now leaves by another interface than the "
                        "entry was created on, so the kernel kills the entry and drops the packet "
                        "(nf_nat_oif_changed, net/netfilter/nf_nat_core.c)",
                        "make routing stable per connection: compare the packet mark with the conntrack "
                        "mark (`conntrack -L` mark=); with fwmark policy routing restore the mark early "
                        "(`-t mangle -A PREROUTING -j CONNMARK --restore-mark`) and save it last, with no "
                        "ACCEPT between setting the mark and `CONNMARK --save-mark`"),
    "masquerade-cleanup": ("the masquerading interface went down or lost its address, so every flow "
                           "NATed to it was dropped (nf_nat_masquerade.c)",
                           "expected when a WAN link drops; if it flaps, fix the link"),
    "tcp-reopen": ("a new SYN reused the ports of a connection in TIME_WAIT/CLOSE; the old entry was "
                   "replaced (nf_conntrack_proto_tcp.c)", "nothing to fix: normal port reuse"),
    "tcp-rst": ("a TCP RST arrived before any reply; the entry was removed",
                "the destination refused the connection, or something injected a RST"),
    "early-drop": ("the conntrack table was full; an entry that was not yet ASSURED was evicted",
                   "raise `net.netfilter.nf_conntrack_max` (check `conntrack -C` against it)"),
    "netns-exit": ("its network namespace was deleted", "expected when containers stop"),
    "snat-clash": ("a new SNAT flow needed these ports; a TIME_WAIT entry was evicted",
                   "widen the SNAT port range or add source addresses"),
    "ipvs-expire": ("IPVS (kube-proxy IPVS mode) expired its connection and dropped the entry",
                    "check IPVS timeouts: `ipvsadm -L --timeout`"),
    "other": ("a kernel path not in v6diag's table destroyed it (see the stack)", ""),
    "unknown": ("no BPF probe could be attached, so the kernel path is not known", ""),
}


def classify(stack: list[str], expired: bool, tcp_seen_reply: bool | None = None) -> str:
    """Cause code for one nf_ct_delete call. 'timeout' comes from the entry's own
    expiry at probe time, not from the stack (attribution rule in the context)."""
    if expired:
        return "timeout"
    names = frame_names(stack)
    for cause, funcs in STACK_RULES:
        if names.intersection(funcs):
            if cause == "netlink-iterate":
                # 6.1 inlines ctnetlink_flush_conntrack into ctnetlink_del_conntrack:
                # a walk over the table under it is a flush (recorded on 6.1.0-56)
                if "ctnetlink_del_conntrack" in names:
                    return "userspace-flush"
                continue
            if cause == "tcp":
                return "tcp-rst" if tcp_seen_reply is False else "tcp-reopen"
            return cause
    return "other"


# softirq frames mean the packet path; workqueue frames a kworker (GC, masquerade
# cleanup); otherwise a process called in (netlink from userspace, netns teardown)
SOFTIRQ_FRAMES = {"__do_softirq", "net_rx_action", "do_softirq", "__local_bh_enable_ip", "irq_exit_rcu",
                  "__netif_receive_skb", "process_backlog"}
WORKQUEUE_FRAMES = {"process_one_work", "worker_thread"}


def frame_names(stack: list[str]) -> set[str]:
    """Function names without offsets or GCC clone suffixes (do_softirq.part.0)."""
    return {f.split("+")[0].split(".")[0] for f in stack}


def context(stack: list[str], comm: str | None) -> str:
    names = frame_names(stack)
    if names & SOFTIRQ_FRAMES:
        return "softirq"
    if names & WORKQUEUE_FRAMES or (comm or "").startswith("kworker"):
        return "kworker"
    return "process"


def explain(ev: DestroyEvent) -> DestroyEvent:
    """Adds cause, context, explanation and fix to one event from the BPF source."""
    stack = ev.get("stack") or []
    cause = classify(stack, bool(ev.get("expired")), tcp_seen_reply="seen_reply" in ev.get("status", []))
    ev.update(cause=cause, context=context(stack, ev.get("comm")),
              explanation=CAUSES[cause][0], fix=CAUSES[cause][1], evidence=evidence(cause, ev))
    return ev


def evidence(cause: str, ev: DestroyEvent) -> str | None:
    """The entry's own facts that back the cause, in words."""
    reply = ev.get("reply") or {}
    if cause in ("nat-oif-changed", "masquerade-cleanup") and "src_nat" in ev.get("status", []):
        mark = ev.get("mark")
        note = (": if this flow is policy-routed by fwmark, its mark was never saved to the connection") if mark == 0 and cause == "nat-oif-changed" else ""
        return f"masqueraded to {reply.get('dst')}; conntrack mark {mark}{note}"
    if cause == "timeout" and isinstance(ev.get("timeout_left_jiffies"), int):
        return f"expired {-ev['timeout_left_jiffies']} jiffies before it was reaped"
    if cause == "tcp-rst":
        return f"TCP state {ev.get('tcp_state')}, no reply ever seen"
    if cause == "tcp-reopen":
        return f"TCP state {ev.get('tcp_state')} when a new SYN arrived on the same ports"
    if cause == "early-drop":
        return "never assured (" + ("a reply was seen" if "seen_reply" in ev.get("status", []) else "no reply seen") + ")"
    return None


@dataclass
class Filter:
    """--src/--dst/--port/--proto/--mark, applied in user space (the BPF program
    already dropped what its -D knobs exclude)."""

    port: int | None = None
    proto: str | None = None
    mark: int | None = None
    src: str | None = None
    dst: str | None = None

    def match(self, ev: DestroyEvent) -> bool:
        o, r = ev.get("orig", {}), ev.get("reply", {})
        if self.src and self.src not in (o.get("src"), r.get("dst")):
            return False
        if self.dst and self.dst not in (o.get("dst"), r.get("src")):
            return False
        if self.port is not None and self.port not in (o.get("sport"), o.get("dport"), r.get("sport"), r.get("dport")):
            return False
        if self.proto and ev.get("proto") != self.proto:
            return False
        return self.mark is None or ev.get("mark") == self.mark


def explain_in_mode(ev: DestroyEvent, mode: str) -> DestroyEvent:
    """explain() for an event from any source: the netlink fallback never knows
    the kernel path, and a recorded netlink event (no stack) did not either."""
    unknown = {"cause": "unknown", "explanation": CAUSES["unknown"][0], "fix": CAUSES["unknown"][1]}
    if mode == "recorded":
        if ev.get("stack"):
            return explain(ev)
        ev.update(unknown)
    elif mode == "netlink":
        ev.update(cause="unknown", comm=None, pid=None, stack=[], context=None, netns=None, expired=None,
                  tcp_state=None, explanation=unknown["explanation"], fix=unknown["fix"], mode=mode)
    else:
        explain(ev)
    return ev
