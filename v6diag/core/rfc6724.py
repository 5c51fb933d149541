"""Destination address selection as glibc does it (rfc3484_sort in sysdeps/posix/
getaddrinfo.c, glibc 2.36: RFC 3484 tables, RFC 6724 section 6 rules), one
comparison at a time so that every step can say which rule decided it.

glibc's deviations from RFC 6724 are kept on purpose, since the point is to
predict what programs on this host do: loopback counts as link-local scope,
rule 2 applies to IPv4 through the scopev4 table, an optimistic source counts as
deprecated (rule 3), temporary addresses play no role, rule 9 compares only the
first 32-bit word where the addresses differ and is not capped at the source's
prefix length, and the sort is a top-down merge sort (the comparator is not
always transitive, so the algorithm matters)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from v6diag.core.gai_policy import PolicyTable

RULES = {
    1: "avoid unusable destinations (no source address: no route)",
    2: "prefer matching scope",
    3: "avoid deprecated (or optimistic) source addresses",
    4: "prefer home addresses",
    5: "prefer matching label",
    6: "prefer higher precedence",
    7: "prefer native transport (not through a tunnel device)",
    8: "prefer smaller scope",
    9: "prefer the longest matching prefix",
    10: "keep the resolver's order",
}
NO_INDEX = 0xFFFFFFFF


@dataclass
class Candidate:
    """One destination with the source the kernel would use to reach it."""

    address: str
    family: int  # 4 | 6
    order: int  # position in the resolver's (NSS) answer
    source: str | None = None  # None: connect() failed (no route)
    deprecated: bool = False  # IFA_F_DEPRECATED | IFA_F_OPTIMISTIC
    home: bool = False  # IFA_F_HOMEADDRESS
    prefixlen: int = 0
    index: int = NO_INDEX  # ifindex of the source address
    native: bool = True  # the source's device is not a tunnel (ARPHRD_TUNNEL/TUNNEL6/SIT)


def compare(a: Candidate, b: Candidate, policy: PolicyTable) -> tuple[int, int]:
    """(-1 if a goes first else 1, the rule that decided)."""
    if (a.source is not None) != (b.source is not None):  # rule 1
        return (-1 if a.source is not None else 1), 1
    got = a.source is not None
    if got:
        a_match = policy.scope(a.address) == policy.scope(a.source)
        b_match = policy.scope(b.address) == policy.scope(b.source)
        if a_match != b_match:
            return (-1 if a_match else 1), 2
        if a.deprecated != b.deprecated:
            return (1 if a.deprecated else -1), 3
        if a.home != b.home:
            return (-1 if a.home else 1), 4
        a_label = policy.label(a.address) == policy.label(a.source)
        b_label = policy.label(b.address) == policy.label(b.source)
        if a_label != b_label:
            return (-1 if a_label else 1), 5
    pa, pb = policy.precedence_of(a.address), policy.precedence_of(b.address)
    if pa != pb:
        return (-1 if pa > pb else 1), 6
    if got and a.index != b.index and a.native != b.native:
        return (-1 if a.native else 1), 7
    sa, sb = policy.scope(a.address), policy.scope(b.address)
    if sa != sb:
        return (-1 if sa < sb else 1), 8
    if got and a.family == b.family:
        ba, bb = _rule9_bits(a, b)
        if ba != bb:
            return (-1 if ba > bb else 1), 9
    return (-1 if a.order < b.order else 1), 10


def _clz32(x: int) -> int:
    """glibc's fls() in this file: leading zero bits of a 32-bit value (32 for 0)."""
    return 32 - x.bit_length() if x else 32


def _rule9_bits(a: Candidate, b: Candidate) -> tuple[int, int]:
    """Rule 9 as glibc computes it: IPv4 scores only a destination in its source's
    subnet; IPv6 compares both pairs in the first 32-bit word where either
    destination differs from its source, with no cap at the prefix length."""
    if a.family == 4:
        return _bits4(a), _bits4(b)
    da, sa = ipaddress.ip_address(a.address).packed, ipaddress.ip_address(a.source).packed
    db, sb = ipaddress.ip_address(b.address).packed, ipaddress.ip_address(b.source).packed

    def word(x: bytes, i: int) -> int:
        return int.from_bytes(x[4 * i: 4 * i + 4], "big")

    i = next((i for i in range(4) if word(da, i) != word(sa, i) or word(db, i) != word(sb, i)), None)
    if i is None:
        return 0, 0
    return _clz32(word(da, i) ^ word(sa, i)), _clz32(word(db, i) ^ word(sb, i))


def _bits4(c: Candidate) -> int:
    dst, src = int(ipaddress.ip_address(c.address)), int(ipaddress.ip_address(c.source))
    # prefixlen 0 (no address list): glibc shifts by 32, undefined, an all-ones mask on x86/arm64
    mask = (0xFFFFFFFF << (32 - c.prefixlen)) & 0xFFFFFFFF if c.prefixlen else 0xFFFFFFFF
    return _clz32(dst ^ src) if (dst & mask) == (src & mask) else 0


def sort(candidates: list[Candidate], policy: PolicyTable) -> list[Candidate]:
    """glibc 2.36's qsort for small arrays: a top-down merge sort, n1 = n/2, taking
    from the left run when the comparison is <= 0."""
    if len(candidates) <= 1:
        return list(candidates)
    n1 = len(candidates) // 2
    left, right = sort(candidates[:n1], policy), sort(candidates[n1:], policy)
    out: list[Candidate] = []
    while left and right:
        if compare(left[0], right[0], policy)[0] <= 0:
            out.append(left.pop(0))
        else:
            out.append(right.pop(0))
    return out + left + right


def decisions(ordered: list[Candidate], policy: PolicyTable) -> list[dict]:
    """For each adjacent pair of the final order: the rule that puts the first ahead."""
    out = []
    for a, b in zip(ordered, ordered[1:]):
        _, rule = compare(a, b, policy)
        out.append({"a": a.address, "b": b.address, "rule": rule, "why": why(a, b, rule, policy)})
    return out


def why(a: Candidate, b: Candidate, rule: int, policy: PolicyTable) -> str:
    if rule == 1:
        return f"{b.address} has no source address (no route to it)"
    if rule == 2:
        return (f"{a.address} has the scope of its source ({policy.scope(a.address)}); {b.address} "
                f"(scope {policy.scope(b.address)}) does not match its source's ({policy.scope(b.source)})")
    if rule == 3:
        return f"{b.address} would be reached from a deprecated source address ({b.source})"
    if rule == 5:
        return (f"{a.address} (label {policy.label(a.address)}) has the label of its source {a.source} "
                f"(label {policy.label(a.source)}); {b.address} (label {policy.label(b.address)}) does not match "
                f"its source {b.source} (label {policy.label(b.source)})")
    if rule == 6:
        return (f"precedence {policy.precedence_of(a.address)} for {a.address} against "
                f"{policy.precedence_of(b.address)} for {b.address}")
    if rule == 7:
        return f"{b.address} would leave through a tunnel device, {a.address} natively"
    if rule == 8:
        return f"scope {policy.scope(a.address)} is smaller than {policy.scope(b.address)}"
    if rule == 9:
        return f"{a.address} shares a longer prefix with its source {a.source}"
    return "tied on every rule: the resolver's order is kept"
