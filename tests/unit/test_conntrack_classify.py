"""The cause classifier. These stacks are SYNTHETIC: written from the callers
of nf_ct_delete() in the kernel sources (6.6: nf_nat_core.c, ip_vs_conn.c),
not recorded: they cover paths the kernel tier has not reproduced
(snat-clash, ipvs-expire). Stacks recorded from the booted stock kernel are
checked in test_conntrack_recorded.py."""

from __future__ import annotations

import pytest

from v6diag.conntrack.classify import CAUSES, Filter, classify

CHAINS = [
    (["nf_ct_delete", "nf_ct_gc_expired", "gc_worker", "process_one_work", "worker_thread"], "timeout"),
    (["nf_ct_delete", "nf_ct_gc_expired", "__nf_conntrack_find_get", "nf_conntrack_in"], "timeout"),
    (["nf_ct_delete", "ctnetlink_del_conntrack", "nfnetlink_rcv_msg", "netlink_rcv_skb"], "userspace-delete"),
    (["nf_ct_delete", "nf_ct_iterate_cleanup_net", "ctnetlink_flush_conntrack", "ctnetlink_del_conntrack"],
     "userspace-flush"),
    (["nf_ct_delete+1", "nf_nat_inet_fn+188", "nf_nat_ipv4_out+80", "nf_hook_slow+70", "ip_output+220",
      "ip_forward_finish+132"], "nat-oif-changed"),  # the seed's bpftrace stack
    (["nf_ct_delete", "iterate_cleanup_work", "process_one_work"], "masquerade-cleanup"),
    (["nf_ct_delete", "early_drop_list", "early_drop", "__nf_conntrack_alloc"], "early-drop"),
    (["nf_ct_delete", "__nf_conntrack_alloc", "init_conntrack"], "early-drop"),  # early_drop* inlined
    (["nf_ct_delete", "gc_worker", "process_one_work", "worker_thread"], "early-drop"),  # live entry, table >95%
    (["nf_ct_delete", "nf_conntrack_cleanup_net_list", "nf_conntrack_pernet_exit", "cleanup_net"], "netns-exit"),
    (["nf_ct_delete", "nf_nat_used_tuple_harder", "nf_nat_setup_info"], "snat-clash"),
    (["nf_ct_delete", "ip_vs_conn_drop_conntrack", "ip_vs_conn_expire"], "ipvs-expire"),
    (["nf_ct_delete", "some_new_kernel_path"], "other"),
]


@pytest.mark.parametrize("stack, cause", CHAINS)
def test_caller_chain_gives_its_cause(stack, cause):
    assert classify(stack, expired=False) == cause
    assert cause in CAUSES and CAUSES[cause][0]


def test_expiry_at_probe_time_wins_over_the_stack():
    assert classify(["nf_ct_delete", "ctnetlink_dump_table"], expired=True) == "timeout"


def test_tcp_path_is_split_by_the_entrys_state():
    stack = ["nf_ct_delete", "nf_conntrack_tcp_packet", "nf_conntrack_in"]
    assert classify(stack, expired=False, tcp_seen_reply=False) == "tcp-rst"
    assert classify(stack, expired=False, tcp_seen_reply=True) == "tcp-reopen"


def test_nat_oif_changed_fix_names_the_mark_mismatch():
    assert "CONNMARK --save-mark" in CAUSES["nat-oif-changed"][1]


def test_filter_matches_either_tuple():
    ev = {"proto": "tcp", "mark": 48,
          "orig": {"src": "172.17.0.2", "dst": "104.16.124.96", "sport": 49194, "dport": 443},
          "reply": {"src": "104.16.124.96", "dst": "10.250.193.4", "sport": 443, "dport": 49194}}
    assert Filter(src="172.17.0.2", port=443, proto="tcp", mark=48).match(ev)
    assert Filter(dst="104.16.124.96").match(ev)
    assert not Filter(port=80).match(ev) and not Filter(mark=54).match(ev) and not Filter(proto="udp").match(ev)


def test_a_venv_that_cannot_see_the_system_bcc_is_told_how_to_fix_it(tmp_path, monkeypatch):
    """The environment is set up by hand here (a folder standing for python3-bpfcc's
    bcc, sys.prefix for a venv): what each case must say."""
    import sys

    from v6diag.core import bcc

    (tmp_path / "bcc").mkdir()
    monkeypatch.setattr(bcc, "SYSTEM_BCC", (str(tmp_path / "bcc"),))
    monkeypatch.setattr(sys, "prefix", "/home/me/venv")
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert "--system-site-packages" in bcc.bcc_missing() and "/home/me/venv" in bcc.bcc_missing()
    monkeypatch.setattr(bcc, "SYSTEM_BCC", (str(tmp_path / "none"),))
    assert bcc.bcc_missing() == "bcc is not installed (Debian/Ubuntu: apt install python3-bpfcc)"
