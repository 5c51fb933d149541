"""What the checksum verdicts mean for the user, with the fix."""

from __future__ import annotations

from v6diag.checksum.report import LiveCapture
from v6diag.checksum.tally import OUTER_FRAGMENT, ChecksumTally
from v6diag.checksum.verify import KINDS, OUTER_UDP6_ZERO, UNVERIFIABLE
from v6diag.core.report import Finding


def findings(t: ChecksumTally, capture_problem: str | None = None) -> list[Finding]:
    out: list[Finding] = []
    if t.vxlan_packets == 0:
        out.append(Finding.warning("no-vxlan",
                                   f"no VXLAN packets on UDP ports {', '.join(map(str, t.ports))} "
                                   f"among {t.packets} packets",
                                   fix="name the tunnel's port with --port N (see `ip -d link show type vxlan`)"))
    bad = t.bad_total()
    if bad:
        by_kind = ", ".join(f"{t.counts[k]} {k}" for k in KINDS if k.endswith("_bad") and t.counts[k])
        worst = t.flows.worst([k for k in KINDS if k.endswith("_bad")])
        fix = ("the sender wrote a wrong checksum: receivers drop these packets and count them in "
               "UDP InCsumErrors (`nstat -az UdpInCsumErrors`). A VXLAN packet NATed twice on the sender "
               "(kube-proxy/flannel, fixed in Kubernetes 1.16.13/1.17.9/1.18.6) is the known cause; "
               "workaround: `ethtool -K flannel.1 tx-checksum-ip-generic off` on the sending node")
        out.append(Finding.error("checksum-bad",
                                 f"{bad} checksums are wrong ({by_kind})",
                                 evidence=f"worst flow: {worst.text()}" if worst else "", fix=fix))
    partial = t.partial_total()
    if partial:
        confirmed = f"; the kernel confirmed {t.kernel_not_ready} as not yet computed" if t.kernel_not_ready else ""
        out.append(Finding.info("checksum-offload-pending",
                                f"{partial} checksums are partial: left for the NIC to fill in (TX offload), "
                                f"captured before it did; not corruption{confirmed}",
                                evidence=", ".join(f"{t.counts[k]} {k}" for k in KINDS if k.endswith('_partial') and t.counts[k])))
    if t.counts[OUTER_UDP6_ZERO]:
        out.append(Finding.info("outer-udp6-zero-checksum",
                                f"{t.counts[OUTER_UDP6_ZERO]} VXLAN packets over IPv6 carry UDP checksum 0, "
                                "allowed for tunnels by RFC 6935/6936 (udp6zerocsumtx)"))
    if t.counts[UNVERIFIABLE]:
        out.append(Finding.info("checksum-unverifiable",
                                f"{t.counts[UNVERIFIABLE]} VXLAN packets could not be verified",
                                evidence="; ".join(f"{n} {why}" for why, n in t.unverifiable_why.most_common(3)),
                                fix="capture whole packets (`tcpdump -s 0`); fragments cannot be checked one by one (no reassembly)"))
    if t.unverifiable_why[OUTER_FRAGMENT]:
        out.append(Finding.warning("vxlan-outer-fragmented",
                                   f"{t.unverifiable_why[OUTER_FRAGMENT]} VXLAN packets were fragmented on the underlay: "
                                   "the VXLAN device's MTU is larger than the underlay allows",
                                   fix="give the VXLAN device the underlay MTU minus 50 (IPv4 underlay) or 70 (IPv6), "
                                       "e.g. `ip link set vxlan0 mtu 1450` on a 1500-byte underlay"))
    if capture_problem:
        out.append(Finding.warning("capture-truncated", capture_problem))
    return out


def offload_findings(t: ChecksumTally, live: LiveCapture) -> list[Finding]:
    """Live capture only: what the kernel itself says, and the device to fix."""
    out: list[Finding] = []
    errors = live.udp_in_csum_errors
    dropped = sum(errors.values())
    if dropped:
        out.append(Finding.error("udp-incsumerrors",
                                 f"this host dropped {dropped} UDP datagrams for bad checksums during the capture",
                                 evidence=f"InCsumErrors +{errors.get('ipv4', 0)} (IPv4), +{errors.get('ipv6', 0)} (IPv6)",
                                 fix="find the sender with the flows above; a capture on the sending node shows "
                                     "whether it wrote them wrong (bad) or its NIC did not fill them in (partial)"))
    kernel = {r: n for r, n in (live.kernel_drops or {}).items() if n}
    if kernel:
        out.append(Finding.error(
            "kernel-dropped-bad-checksums",
            f"the kernel dropped {sum(kernel.values())} packets for bad checksums during the capture",
            evidence=", ".join(f"{r} {n}" for r, n in sorted(kernel.items())) + " (skb:kfree_skb drop reasons, "
                     "this whole host)",
            fix="`v6diag drops -r UDP_CSUM -r TCP_CSUM` names each dropped packet's flow and device"))
    out += _offload_layers(t, live)
    return out


INNER_PARTIAL = ("inner_tcp_partial", "inner_udp_partial")
TX_CSUM = "tx-checksum-ip-generic"


def _offload_layers(t: ChecksumTally, live: LiveCapture) -> list[Finding]:
    """Which device left the checksums partial, per layer: an inner TCP/UDP
    checksum is the VXLAN device's TX offload, the outer UDP checksum the
    underlay's (where the capture was). Only packets this host sends count: the
    received ones were the sender's NIC's business."""
    sent, received = t.sent, t.received
    out: list[Finding] = []
    if sent["vxlan"] and sent["partial"] * 2 > sent["vxlan"]:
        inner = sum(sent[k] for k in INNER_PARTIAL)
        outer = sent["outer_udp_partial"]
        ports = t.flows.ports()
        vx_on = [d.name for d in live.vxlan_devices if d.offload.get(TX_CSUM) and (d.port in ports or not ports)]
        layers, fixes = [], []
        if inner:
            names = vx_on or [d.name for d in live.vxlan_devices] or ["<vxlan-device>"]
            layers.append(f"{inner} inner checksums left by {', '.join(names)}'s offload")
            fixes += [f"ethtool -K {n} {TX_CSUM} off" for n in names]
        if outer:
            dev = live.interface
            layers.append(f"{outer} outer UDP checksums left by {dev}'s offload ({TX_CSUM} "
                          f"{_on_off(live.offload.get(TX_CSUM))})")
            if live.offload.get(TX_CSUM) is not False and dev != "any":
                fixes.append(f"ethtool -K {dev} {TX_CSUM} off")
        out.append(Finding.warning(
            "offload-partial-dominates",
            f"{sent['partial']} of {sent['vxlan']} VXLAN packets sent from here leave with checksums the NIC must "
            "complete; if receivers drop them (InCsumErrors there), turn that offload off where it is on",
            evidence="; ".join(layers) + (f"; {received['vxlan']} VXLAN packets received" if received["vxlan"] else ""),
            fix="; ".join(dict.fromkeys(fixes))))
    if received["partial"]:
        out.append(Finding.info(
            "received-partial", f"{received['partial']} of {received['vxlan']} VXLAN packets received carry partial "
            "checksums: the sender left them to a NIC that never ran (a veth or a bridge in between); its own "
            "capture says which device", evidence=", ".join(f"{received[k]} {k}" for k in sorted(received)
                                                           if k.endswith("_partial"))))
    return out


def _on_off(value: bool | None) -> str:
    return "unknown" if value is None else "on" if value else "off"
