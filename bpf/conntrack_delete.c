// SPDX-License-Identifier: GPL-2.0
// Every call of nf_ct_delete() that really destroys a conntrack entry, with the
// entry's own state and the kernel stack that led there. v6diag's conntrack
// command loads this with bcc and classifies the stack (v6diag/conntrack/classify.py).
//
// Every destruction that passes the filters is also counted here, by what its
// cause depends on (stack, expired, reply seen): the totals stay exact when a
// burst (a table flush) overflows the event buffer, and --summary reads only them.
//
// Knobs (-D cflags; defaults keep everything):
//   USE_FENTRY      attach as fentry (BPF trampoline) instead of a kprobe
//   USE_RINGBUF     send events through a BPF ring buffer (kernel 5.8+) of RING_PAGES
//                   pages, not the per-CPU perf buffer
//   SUMMARY_ONLY    count only; send no events
//   FILTER_L3       only this family (2 = AF_INET, 10 = AF_INET6)
//   FILTER_PROTO    only this l4 protocol number (6 tcp, 17 udp, 58 icmpv6, ...)
//   FILTER_PORT     only entries with this port (host order) on either side of either tuple
//   FILTER_MARK     only entries with this conntrack mark
//   FILTER_NETNS    only this network namespace (inode number, as in /proc/PID/ns/net)
//   FILTER_SRC_W0..W3, FILTER_DST_W0..W3
//                   only entries from (to) this address: its 16 bytes as four u32 words
//                   read in host order (IPv4: the first word, the rest 0), matched as the
//                   original source (destination) or the reply destination (source)
//   STACK_SLOTS     stack map size (distinct stacks held at once)
//   COUNT_SLOTS     distinct (stack, expired, reply seen) counters
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>
#include <net/net_namespace.h>
#include <net/netfilter/nf_conntrack.h>

#ifndef STACK_SLOTS
#define STACK_SLOTS 16384
#endif
#ifndef COUNT_SLOTS
#define COUNT_SLOTS 4096
#endif
#ifndef RING_PAGES
#define RING_PAGES 1024
#endif

struct ct_tuple {
    u8 src[16];
    u8 dst[16];
    u16 sport;  // network order, as in the kernel's tuple
    u16 dport;
};

struct ct_event {
    u64 ts_ns;
    u32 pid;
    u32 netns;
    u32 mark;
    u32 status;
    s32 stack_id;
    s32 timeout_left;  // jiffies until expiry at probe time; <= 0 means already expired
    u16 zone;
    u8 l3;
    u8 l4;
    u8 tcp_state;
    char comm[TASK_COMM_LEN];
    struct ct_tuple orig;
    struct ct_tuple reply;
};

// what the cause of one destruction depends on (v6diag/conntrack/classify.py)
struct count_key {
    s32 stack_id;
    u8 expired;
    u8 seen_reply;
    u16 pad;
};

#ifdef USE_RINGBUF
BPF_RINGBUF_OUTPUT(events, RING_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif
BPF_STACK_TRACE(stacks, STACK_SLOTS);
BPF_HASH(counts, struct count_key, u64, COUNT_SLOTS);
// [0] events the buffer could not take; [1] destructions not counted (counts full)
BPF_ARRAY(dropped, u64, 2);

static __always_inline void bump(int slot)
{
    u64 *n = dropped.lookup(&slot);
    if (n)
        __sync_fetch_and_add(n, 1);
}

#if defined(FILTER_SRC_W0) || defined(FILTER_DST_W0)
static __always_inline int same_addr(u8 *a, u32 w0, u32 w1, u32 w2, u32 w3)
{
    u32 w[4];
    __builtin_memcpy(w, a, 16);
    return w[0] == w0 && w[1] == w1 && w[2] == w2 && w[3] == w3;
}
#endif

static __always_inline void copy_tuple(struct ct_tuple *out, struct nf_conntrack_tuple *t)
{
    // nf_inet_addr is 16 bytes for both families; IPv4 uses the first 4
    bpf_probe_read_kernel(out->src, 16, &t->src.u3);
    bpf_probe_read_kernel(out->dst, 16, &t->dst.u3);
    bpf_probe_read_kernel(&out->sport, 2, &t->src.u.all);
    bpf_probe_read_kernel(&out->dport, 2, &t->dst.u.all);
}

static __always_inline int record(void *ctx, struct nf_conn *ct)
{
    struct ct_event ev = {};
    unsigned long status = 0;

    bpf_probe_read_kernel(&status, sizeof(status), &ct->status);
    // nf_ct_delete() returns at once for an entry already dying
    // (test_and_set_bit(IPS_DYING_BIT), nf_conntrack_core.c): not a destruction
    if (status & IPS_DYING)
        return 0;

    struct nf_conntrack_tuple *o = &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple;
    struct nf_conntrack_tuple *r = &ct->tuplehash[IP_CT_DIR_REPLY].tuple;
    bpf_probe_read_kernel(&ev.l3, 1, &o->src.l3num);
    bpf_probe_read_kernel(&ev.l4, 1, &o->dst.protonum);
#ifdef FILTER_L3
    if (ev.l3 != FILTER_L3)
        return 0;
#endif
#ifdef FILTER_PROTO
    if (ev.l4 != FILTER_PROTO)
        return 0;
#endif
    copy_tuple(&ev.orig, o);
    copy_tuple(&ev.reply, r);
#ifdef FILTER_PORT
    u16 p = htons(FILTER_PORT);
    if (ev.orig.sport != p && ev.orig.dport != p && ev.reply.sport != p && ev.reply.dport != p)
        return 0;
#endif
#ifdef CONFIG_NF_CONNTRACK_MARK
    bpf_probe_read_kernel(&ev.mark, 4, &ct->mark);
#endif
#ifdef FILTER_MARK
    if (ev.mark != FILTER_MARK)
        return 0;
#endif
#ifdef CONFIG_NET_NS
    struct net *net = NULL;
    bpf_probe_read_kernel(&net, sizeof(net), &ct->ct_net.net);
    if (net)
        bpf_probe_read_kernel(&ev.netns, 4, &net->ns.inum);
#endif
#ifdef FILTER_NETNS
    if (ev.netns != FILTER_NETNS)
        return 0;
#endif
#ifdef FILTER_SRC_W0
    if (!same_addr(ev.orig.src, FILTER_SRC_W0, FILTER_SRC_W1, FILTER_SRC_W2, FILTER_SRC_W3) &&
        !same_addr(ev.reply.dst, FILTER_SRC_W0, FILTER_SRC_W1, FILTER_SRC_W2, FILTER_SRC_W3))
        return 0;
#endif
#ifdef FILTER_DST_W0
    if (!same_addr(ev.orig.dst, FILTER_DST_W0, FILTER_DST_W1, FILTER_DST_W2, FILTER_DST_W3) &&
        !same_addr(ev.reply.src, FILTER_DST_W0, FILTER_DST_W1, FILTER_DST_W2, FILTER_DST_W3))
        return 0;
#endif
#ifdef CONFIG_NF_CONNTRACK_ZONES
    bpf_probe_read_kernel(&ev.zone, 2, &ct->zone.id);
#endif
    ev.status = status;
    if (ev.l4 == IPPROTO_TCP)
        bpf_probe_read_kernel(&ev.tcp_state, 1, &ct->proto.tcp.state);

    // nf_ct_is_expired(): (s32)(ct->timeout - nfct_time_stamp) <= 0, where the
    // stamp is the low 32 bits of jiffies (include/net/netfilter/nf_conntrack.h)
    u32 timeout = 0;
    bpf_probe_read_kernel(&timeout, 4, &ct->timeout);
    ev.timeout_left = (s32)(timeout - (u32)bpf_jiffies64());

    // kernel stack only: the deleting path is all in the kernel
    ev.stack_id = stacks.get_stackid(ctx, 0);

    struct count_key key = {};
    key.stack_id = ev.stack_id;
    key.expired = ev.timeout_left <= 0;
    key.seen_reply = (status & IPS_SEEN_REPLY) != 0;
    u64 zero = 0;
    u64 *count = counts.lookup_or_try_init(&key, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bump(1);

#ifndef SUMMARY_ONLY
    ev.ts_ns = bpf_ktime_get_ns();
    ev.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&ev.comm, sizeof(ev.comm));
#ifdef USE_RINGBUF
    if (events.ringbuf_output(&ev, sizeof(ev), 0) < 0)
        bump(0);
#else
    if (events.perf_submit(ctx, &ev, sizeof(ev)) < 0)
        bump(0);
#endif
#endif
    return 0;
}

#ifdef USE_FENTRY
KFUNC_PROBE(nf_ct_delete, struct nf_conn *ct, u32 portid, int report)
{
    return record(ctx, ct);
}
#else
int kprobe__nf_ct_delete(struct pt_regs *ctx, struct nf_conn *ct, u32 portid, int report)
{
    return record(ctx, ct);
}
#endif
