"""The policy table getaddrinfo sorts with, as glibc builds it (sysdeps/posix/
getaddrinfo.c, glibc 2.36): its RFC 3484 default labels, precedences and IPv4
scopes, or /etc/gai.conf. glibc's rules, which surprise people:

- one valid `label` line in gai.conf drops *every* default label (likewise
  `precedence` and `scopev4`); only a catch-all ::/0 is added back when the file
  has no /0 line of its own;
- entries are looked up first-match after a stable sort by prefix length, longest
  first: among equal lengths the first line in the file wins;
- a bad line is skipped on its own, silently; a prefix without /len is not
  reliable (undefined behaviour, glibc BZ #32465): write /len.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

V4MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
INT_MAX = 2**31 - 1

# (prefix, value) in glibc's table order: default_labels, default_precedence, default_scopes
DEFAULT_LABELS = [("::1/128", 0), ("2002::/16", 2), ("::/96", 3), ("::ffff:0:0/96", 4), ("fec0::/10", 5),
                  ("fc00::/7", 6), ("2001::/32", 7), ("::/0", 1)]
DEFAULT_PRECEDENCE = [("::1/128", 50), ("2002::/16", 30), ("::/96", 20), ("::ffff:0:0/96", 10), ("::/0", 40)]
DEFAULT_SCOPES = [("169.254.0.0/16", 2), ("127.0.0.0/8", 2), ("0.0.0.0/0", 14)]
CATCH_ALL = {"label": 1, "precedence": 40, "scopev4": 14}


@dataclass
class PolicyTable:
    labels: list[tuple[ipaddress.IPv6Network, int]]
    precedence: list[tuple[ipaddress.IPv6Network, int]]
    scopes: list[tuple[ipaddress.IPv4Network, int]]
    source: str = "glibc defaults"  # or the gai.conf path
    ignored: list[str] = field(default_factory=list)  # lines glibc skips, said to the user

    def label(self, address) -> int:
        return _first(self.labels, _as_v6(address), INT_MAX)

    def precedence_of(self, address) -> int:
        return _first(self.precedence, _as_v6(address), 0)

    def scope(self, address) -> int:
        """glibc's get_scope: IPv6 by address type (loopback counts as link-local),
        IPv4 through the scopev4 table."""
        a = ipaddress.ip_address(address)
        if a.version == 6:
            if a.is_multicast:
                return a.packed[1] & 0x0F
            if a.is_link_local or a.is_loopback:
                return 2
            if a.is_site_local:
                return 5
            return 14
        for net, value in self.scopes:
            if a in net:
                return value
        return 14


def _as_v6(address) -> ipaddress.IPv6Address:
    a = ipaddress.ip_address(address)
    return a if a.version == 6 else ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + a.packed)


def _first(table, address, default: int) -> int:
    for net, value in table:
        if address in net:
            return value
    return default


def _net6(text: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(text, strict=False)


def defaults() -> PolicyTable:
    return PolicyTable([(_net6(p), v) for p, v in DEFAULT_LABELS], [(_net6(p), v) for p, v in DEFAULT_PRECEDENCE],
                       [(ipaddress.IPv4Network(p), v) for p, v in DEFAULT_SCOPES])


def parse(text: str, source: str = "/etc/gai.conf") -> PolicyTable:
    """gai.conf as glibc reads it (gaiconf_init)."""
    table = defaults()
    table.source = source
    got: dict[str, list] = {"label": [], "precedence": [], "scopev4": []}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        cmd, args = line[0], line[1:3]
        entry = _entry(cmd, args)
        if entry is None:
            if cmd not in ("reload",):
                table.ignored.append(f"line {n}: {raw.strip()}")
            continue
        got[cmd].append(entry)
    for cmd, attr in (("label", "labels"), ("precedence", "precedence"), ("scopev4", "scopes")):
        entries = got[cmd]
        if not entries:
            continue
        if not any(net.prefixlen == 0 for net, _ in entries):
            catch = ipaddress.IPv4Network("0.0.0.0/0") if cmd == "scopev4" else _net6("::/0")
            entries.append((catch, CATCH_ALL[cmd]))
        entries.sort(key=lambda e: -e[0].prefixlen)  # stable: the first line wins among equal lengths
        setattr(table, attr, entries)
    return table


def _entry(cmd: str, args: list[str]):
    if cmd not in ("label", "precedence", "scopev4") or not args:
        return None
    prefix, value = args[0], args[1] if len(args) > 1 else "0"  # a missing value reads as 0 in glibc
    if "/" not in prefix:
        return None  # glibc reads an uninitialised byte here (BZ #32465): Debian 12 rejects it
    if not value.isdigit() or int(value) > INT_MAX:
        return None
    addr, _, bits = prefix.partition("/")
    bits = bits or "0"  # "prefix/" parses as /0
    if not bits.isdigit():
        return None
    try:
        if cmd == "scopev4":
            if ":" in addr:  # ::ffff:a.b.c.d/96..128
                a6 = ipaddress.IPv6Address(addr)
                if a6 not in V4MAPPED or not 96 <= int(bits) <= 128:
                    return None
                return ipaddress.IPv4Network(f"{ipaddress.IPv4Address(a6.packed[12:])}/{int(bits) - 96}",
                                             strict=False), int(value)
            if int(bits) > 32:
                return None
            return ipaddress.IPv4Network(f"{addr}/{bits}", strict=False), int(value)
        if int(bits) > 128:
            return None
        return ipaddress.IPv6Network(f"{ipaddress.IPv6Address(addr)}/{bits}", strict=False), int(value)
    except ValueError:
        return None


def render(labels: list[tuple[str, int]], precedence: list[tuple[str, int]] | None = None,
           note: str = "") -> str:
    """A complete gai.conf: every label line glibc needs (one line replaces all
    defaults, so all of them are written out), and precedence lines if given."""
    out = ["# /etc/gai.conf written by `v6diag addrsel`" + (f": {note}" if note else ""),
           "# glibc drops ALL its default labels as soon as this file has one `label` line,",
           "# so the whole table is here. Programs read this file when they start.", ""]
    out += [f"label {p:<20} {v}" for p, v in labels]
    if precedence:
        out.append("")
        out += [f"precedence {p:<15} {v}" for p, v in precedence]
    return "\n".join(out) + "\n"


def load(path: str = "/etc/gai.conf") -> PolicyTable:
    """The table glibc would use on this host: the file's, or the defaults."""
    from pathlib import Path

    try:
        table = parse(Path(path).read_text(), path)
    except OSError:
        return defaults()
    base = defaults()
    if (table.labels, table.precedence, table.scopes) == (base.labels, base.precedence, base.scopes):
        table.source = base.source
    return table
