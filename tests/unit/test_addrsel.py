"""The address selection comparator and glibc's policy table, without a network:
RFC 6724 section 10.2's own destination examples (with the RFC 6724 policy
table written as a gai.conf, which this also tests), glibc's defaults on the
seed's ULA case, and gai.conf parsing as glibc does it, fuzzed. glibc itself is
the truth in tests/integration/test_addrsel.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v6diag.core import gai_policy as policy_mod
from v6diag.core.rfc6724 import Candidate, compare, decisions, sort

RFC6724_TABLE = """
# RFC 6724 section 2.1
precedence ::1/128 50
precedence ::/0 40
precedence ::ffff:0:0/96 35
precedence 2002::/16 30
precedence 2001::/32 5
precedence fc00::/7 3
precedence ::/96 1
precedence fec0::/10 1
precedence 3ffe::/16 1
label ::1/128 0
label ::/0 1
label ::ffff:0:0/96 4
label 2002::/16 2
label 2001::/32 5
label fc00::/7 13
label ::/96 3
label fec0::/10 11
label 3ffe::/16 12
"""


def c(dst, src, order, prefixlen=64):
    return Candidate(dst, 6 if ":" in dst else 4, order, src, prefixlen=prefixlen, index=1)


# (destinations with their sources, in input order) -> expected order, deciding rule (RFC 6724 10.2)
EXAMPLES = [
    ([("198.51.100.121", "169.254.13.78"), ("2001:db8:1::1", "2001:db8:1::2")],
     ["2001:db8:1::1", "198.51.100.121"], 2),
    ([("2001:db8:1::1", "fe80::1"), ("198.51.100.121", "198.51.100.117")],
     ["198.51.100.121", "2001:db8:1::1"], 2),
    ([("10.1.2.3", "10.1.2.4"), ("2001:db8:1::1", "2001:db8:1::2")], ["2001:db8:1::1", "10.1.2.3"], 6),
    ([("2001:db8:1::1", "2001:db8:1::2"), ("fe80::1", "fe80::2")], ["fe80::1", "2001:db8:1::1"], 8),
    ([("2001:db8:1::1", "2002:c633:6401::2"), ("2002:c633:6401::1", "2002:c633:6401::2")],
     ["2002:c633:6401::1", "2001:db8:1::1"], 5),
    ([("2002:c633:6401::1", "2002:c633:6401::2"), ("2001:db8:1::1", "2001:db8:1::2")],
     ["2001:db8:1::1", "2002:c633:6401::1"], 6),
]


@pytest.mark.parametrize("pairs, expected, rule", EXAMPLES)
def test_rfc6724_examples_with_its_policy_table(pairs, expected, rule):
    table = policy_mod.parse(RFC6724_TABLE, "rfc6724")
    cands = [c(d, s, i) for i, (d, s) in enumerate(pairs)]
    ordered = sort(cands, table)
    assert [x.address for x in ordered] == expected
    assert decisions(ordered, table)[0]["rule"] == rule


def test_the_seeds_ula_case_under_glibcs_defaults():
    table = policy_mod.defaults()
    v6, v4 = c("2001:db8:2::10", "fd00:1::2", 0), c("198.51.100.10", "192.0.2.2", 1, prefixlen=24)
    assert compare(v6, v4, table) == (1, 5)  # IPv4 first, by the labels (6 against 1)
    fixed = policy_mod.parse(policy_mod.render(
        [(p, v) for p, v in policy_mod.DEFAULT_LABELS if p != "::/0"] + [("fd00:1::/64", 1), ("::/0", 1)]))
    assert compare(v6, v4, fixed) == (-1, 6)  # labels match now; precedence 40 against 10
    # one line alone: every default label gone, ::/0 -> 1 added back; IPv4 (v4-mapped) is label 1 too
    alone = policy_mod.parse("label fd00:1::/64 1\n")
    assert alone.label("198.51.100.10") == 1 and alone.label("2002::1") == 1


def test_unusable_deprecated_and_tunnels():
    table = policy_mod.defaults()
    routed, unrouted = c("2001:db8::1", "2001:db8::2", 1), Candidate("2001:db8:9::1", 6, 0)
    assert compare(unrouted, routed, table) == (1, 1)
    old = c("2001:db8:2::1", "2001:db8:2::2", 0)
    old.deprecated = True
    v4 = c("198.51.100.1", "192.0.2.2", 1, prefixlen=24)
    assert compare(old, v4, table) == (1, 3)
    tunnel, native = c("2001:db8:5::1", "2001:db8:5::2", 0), c("2001:db8:6::1", "2001:db8:6::2", 1)
    tunnel.native, tunnel.index, native.index = False, 7, 1
    assert compare(tunnel, native, table) == (1, 7)


def test_rule9_as_glibc_computes_it():
    table = policy_mod.defaults()
    near, far = c("2001:db8:1::9", "2001:db8:1::2", 1), c("2001:db9::9", "2001:db8:1::2", 0)
    assert compare(near, far, table) == (-1, 9)
    same_net4, other4 = c("192.0.2.200", "192.0.2.2", 1, 24), c("10.0.0.1", "192.0.2.2", 0, 24)
    assert compare(same_net4, other4, table) == (-1, 9)


def test_gai_conf_as_glibc_reads_it():
    t = policy_mod.parse("""
# a comment
label fd00::/8 1   # trailing comment
label fd00::/8 9
precedence ::ffff:0:0/96 100
scopev4 ::ffff:10.0.0.0/104 5
label nonsense
label fd00:: 3
bogus line
reload yes
""")
    assert t.label("fd00::1") == 1  # the first of two equal prefixes wins
    assert t.label("2001:db8::1") == 1 and t.label("::1") == 1  # defaults dropped, ::/0 -> 1 added
    assert t.precedence_of("192.0.2.1") == 100 and t.precedence_of("2001:db8::1") == 40
    assert t.scope("10.1.2.3") == 5 and t.scope("169.254.1.1") == 14  # default scopes dropped too
    assert len(t.ignored) == 3


LINES = st.lists(st.one_of(
    st.builds(lambda c, p, v: f"{c} {p} {v}", st.sampled_from(["label", "precedence", "scopev4", "reload", "x"]),
              st.sampled_from(["::/0", "fd00::/8", "::ffff:0:0/96", "::ffff:10.0.0.0/104", "10.0.0.0/8", "::1",
                               "2001:db8::/129", "zz::/3", "/", "fe80::/10"]),
              st.sampled_from(["1", "0", "40", "-1", "x", "99999999999", ""])),
    st.text(max_size=40)), max_size=12)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINES)
def test_any_gai_conf_gives_a_complete_table(lines):
    t = policy_mod.parse("\n".join(lines))
    for a in ("2001:db8::1", "fd00::1", "::1", "198.51.100.1", "169.254.0.1", "fe80::1"):
        assert isinstance(t.label(a), int) and isinstance(t.precedence_of(a), int) and isinstance(t.scope(a), int)
