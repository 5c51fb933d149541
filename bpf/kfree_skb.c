// SPDX-License-Identifier: GPL-2.0
// Every packet the kernel frees as dropped (the skb:kfree_skb tracepoint, whose
// `reason` is enum skb_drop_reason, Linux 5.17+), with the flow read from the
// packet's own headers: family, addresses, protocol, ports, the device and its
// network namespace, and for VXLAN and sit packets the tunnelled flow too.
// v6diag's drops command loads this with bcc; reason names come from the running
// kernel's tracepoint format, never from here.
//
// Every drop that passes the filters is counted here, by reason and by (reason,
// location), so totals stay exact when the event buffer overflows.
//
// Knobs (-D cflags; defaults keep everything):
//   USE_RINGBUF      events through a BPF ring buffer (5.8+) of RING_PAGES pages, else the perf buffer
//   SUMMARY_ONLY     count only; send no events
//   REASON_SLOTS     size of the per-reason counter array (the kernel's highest reason + 1)
//   REASONS_W0..W2   only these reasons: bit n of the 192-bit mask (three u64 words) is reason n
//   FILTER_NETNS     only packets whose device is in this network namespace (inode)
//   FILTER_IFINDEX   only packets on this device
//   FILTER_PROTO     only this l4 protocol (outer or tunnelled)
//   FILTER_PORT      only this port (host order), source or destination, outer or tunnelled
//   VXLAN_PORT_A/B   UDP ports read as VXLAN (default 4789 and 8472)
//   GENEVE_PORT      UDP port read as GENEVE (default 6081, RFC 8926)
#include <uapi/linux/ptrace.h>
#include <linux/skbuff.h>
#include <linux/netdevice.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <net/net_namespace.h>

#ifndef REASON_SLOTS
#define REASON_SLOTS 256
#endif
#ifndef LOCATION_SLOTS
#define LOCATION_SLOTS 4096
#endif
#ifndef RING_PAGES
#define RING_PAGES 1024
#endif
#ifndef VXLAN_PORT_A
#define VXLAN_PORT_A 4789
#endif
#ifndef VXLAN_PORT_B
#define VXLAN_PORT_B 8472
#endif
#ifndef GENEVE_PORT
#define GENEVE_PORT 6081
#endif

struct flow {
    u8 family;  // 4, 6, or 0 when the headers could not be read
    u8 l4;
    u16 sport;  // host order
    u16 dport;
    u8 icmp_type;
    u8 pad;
    u8 src[16];
    u8 dst[16];
};

struct drop_event {
    u64 ts_ns;
    u64 location;
    u32 reason;
    u32 ifindex;
    u32 netns;
    u16 protocol;  // skb->protocol (EtherType), host order
    u16 pad;
    struct flow outer;
    struct flow inner;
};

struct location_key {
    u64 location;
    u32 reason;
    u32 pad;
};

#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(events, RING_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif
BPF_ARRAY(by_reason, u64, REASON_SLOTS);
BPF_HASH(by_location, struct location_key, u64, LOCATION_SLOTS);
// [0] events the buffer could not take; [1] drops whose (reason, location) found the table full
BPF_ARRAY(dropped, u64, 2);
BPF_PERCPU_ARRAY(scratch, struct drop_event, 1);  // too big for the 512-byte BPF stack with the parsing

static __always_inline void bump(int slot)
{
    u64 *n = dropped.lookup(&slot);
    if (n)
        __sync_fetch_and_add(n, 1);
}

// the network header at `nh`: family, addresses, l4 protocol and where l4 starts
static __always_inline int read_ip(struct flow *f, unsigned char *nh, u16 ethertype, unsigned char **l4)
{
    if (ethertype == 0x86DD) {
        struct ipv6hdr ip6 = {};
        if (bpf_probe_read_kernel(&ip6, sizeof(ip6), nh))
            return -1;
        if ((ip6.version) != 6)
            return -1;
        f->family = 6;
        f->l4 = ip6.nexthdr;
        __builtin_memcpy(f->src, &ip6.saddr, 16);
        __builtin_memcpy(f->dst, &ip6.daddr, 16);
        *l4 = nh + sizeof(ip6);  // extension headers are not walked: l4 then stays its header number
        return 0;
    }
    if (ethertype == 0x0800) {
        struct iphdr ip4 = {};
        if (bpf_probe_read_kernel(&ip4, sizeof(ip4), nh))
            return -1;
        if (ip4.version != 4 || ip4.ihl < 5)
            return -1;
        f->family = 4;
        f->l4 = ip4.protocol;
        __builtin_memcpy(f->src, &ip4.saddr, 4);
        __builtin_memcpy(f->dst, &ip4.daddr, 4);
        *l4 = nh + ip4.ihl * 4;
        if (ip4.frag_off & bpf_htons(0x1FFF))  // a later fragment carries no l4 header
            f->l4 = 0xFF;
        return 0;
    }
    return -1;
}

static __always_inline void read_ports(struct flow *f, unsigned char *l4)
{
    if (f->l4 == IPPROTO_TCP || f->l4 == IPPROTO_UDP) {
        u16 ports[2] = {};
        if (!bpf_probe_read_kernel(ports, sizeof(ports), l4)) {
            f->sport = bpf_ntohs(ports[0]);
            f->dport = bpf_ntohs(ports[1]);
        }
    } else if (f->l4 == IPPROTO_ICMPV6 || f->l4 == IPPROTO_ICMP) {
        bpf_probe_read_kernel(&f->icmp_type, 1, l4);
    }
}

static __always_inline int wanted_reason(u32 reason)
{
#ifdef REASONS_W0
    u64 mask = reason < 64 ? REASONS_W0 : reason < 128 ? REASONS_W1 : reason < 192 ? REASONS_W2 : 0;
    return (mask >> (reason & 63)) & 1;
#else
    return 1;
#endif
}

TRACEPOINT_PROBE(skb, kfree_skb)
{
    u32 reason = args->reason;
    if (!wanted_reason(reason))
        return 0;
    int scratch_slot = 0;  // the one per-CPU scratch event
    struct drop_event *ev = scratch.lookup(&scratch_slot);
    if (!ev)
        return 0;
    __builtin_memset(ev, 0, sizeof(*ev));
    ev->reason = reason;
    ev->location = (u64)args->location;
    ev->protocol = args->protocol;  // the tracepoint already stores ntohs(skb->protocol) (trace/events/skb.h)

    struct sk_buff *skb = (struct sk_buff *)args->skbaddr;
    struct net_device *dev = NULL;
    bpf_probe_read_kernel(&dev, sizeof(dev), &skb->dev);
    if (dev) {
        bpf_probe_read_kernel(&ev->ifindex, sizeof(ev->ifindex), &dev->ifindex);
#ifdef CONFIG_NET_NS
        struct net *net = NULL;
        bpf_probe_read_kernel(&net, sizeof(net), &dev->nd_net.net);
        if (net)
            bpf_probe_read_kernel(&ev->netns, sizeof(ev->netns), &net->ns.inum);
#endif
    }
#ifdef FILTER_NETNS
    if (ev->netns != FILTER_NETNS)
        return 0;
#endif
#ifdef FILTER_IFINDEX
    if (ev->ifindex != FILTER_IFINDEX)
        return 0;
#endif
    unsigned char *head = NULL;
    u16 network = 0xFFFF;
    bpf_probe_read_kernel(&head, sizeof(head), &skb->head);
    bpf_probe_read_kernel(&network, sizeof(network), &skb->network_header);
    unsigned char *l4 = NULL;
    if (head && network != 0xFFFF && !read_ip(&ev->outer, head + network, ev->protocol, &l4)) {
        read_ports(&ev->outer, l4);
        // tunnels: VXLAN (UDP, 8-byte VXLAN header, inner Ethernet), GENEVE (UDP, 8 bytes and
        // Opt Len x 4 bytes of options, inner Ethernet when Protocol Type is 0x6558, RFC 8926 3.4)
        // and sit (IPv6 in IPv4, RFC 4213)
        unsigned char *inner_l4 = NULL;
        unsigned char *eth = NULL;
        if (ev->outer.l4 == IPPROTO_UDP &&
            (ev->outer.dport == VXLAN_PORT_A || ev->outer.dport == VXLAN_PORT_B)) {
            eth = l4 + 8 + 8;
        } else if (ev->outer.l4 == IPPROTO_UDP && ev->outer.dport == GENEVE_PORT) {
            u8 opt_len = 0;
            u16 ptype = 0;
            bpf_probe_read_kernel(&opt_len, 1, l4 + 8);
            bpf_probe_read_kernel(&ptype, 2, l4 + 8 + 2);
            if (bpf_ntohs(ptype) == 0x6558)
                eth = l4 + 8 + 8 + (opt_len & 0x3f) * 4;
        }
        if (eth) {
            u16 inner_type = 0;
            bpf_probe_read_kernel(&inner_type, 2, eth + 12);
            if (!read_ip(&ev->inner, eth + 14, bpf_ntohs(inner_type), &inner_l4))
                read_ports(&ev->inner, inner_l4);
        } else if (ev->outer.family == 4 && ev->outer.l4 == 41) {
            if (!read_ip(&ev->inner, l4, 0x86DD, &inner_l4))
                read_ports(&ev->inner, inner_l4);
        }
    }
#ifdef FILTER_PROTO
    if (ev->outer.l4 != FILTER_PROTO && ev->inner.l4 != FILTER_PROTO)
        return 0;
#endif
#ifdef FILTER_PORT
    if (ev->outer.sport != FILTER_PORT && ev->outer.dport != FILTER_PORT &&
        ev->inner.sport != FILTER_PORT && ev->inner.dport != FILTER_PORT)
        return 0;
#endif
    u32 slot = reason < REASON_SLOTS ? reason : REASON_SLOTS - 1;
    u64 *n = by_reason.lookup(&slot);
    if (n)
        __sync_fetch_and_add(n, 1);
    struct location_key key = {};
    key.location = ev->location;
    key.reason = reason;
    u64 zero = 0;
    u64 *c = by_location.lookup_or_try_init(&key, &zero);
    if (c)
        __sync_fetch_and_add(c, 1);
    else
        bump(1);
#ifndef SUMMARY_ONLY
    ev->ts_ns = bpf_ktime_get_ns();
#ifdef USE_RINGBUF
    if (events.ringbuf_output(ev, sizeof(*ev), 0) < 0)
        bump(0);
#else
    if (events.perf_submit(args, ev, sizeof(*ev)) < 0)
        bump(0);
#endif
#endif
    return 0;
}
