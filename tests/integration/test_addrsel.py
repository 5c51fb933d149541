"""`v6diag addrsel` against real glibc: namespaces with global, ULA-only,
IPv4-only, IPv6-only, deprecated and temporary addresses; names resolve from a
hosts file bind-mounted over /etc/hosts in a private mount namespace (so is any
gai.conf under test: this machine's own files are never touched). For each, the
order v6diag predicts from the rules must equal what glibc's getaddrinfo returns
in that namespace; in the ULA case IPv4 comes first by rule 5, and with the
gai.conf v6diag suggests, glibc itself puts IPv6 first."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import require_root, require_tools
from tests.lab import Namespaces, wait_until
from tests.schemas import validate

V6_DST, V4_DST = "2001:db8:2::10", "198.51.100.10"
HOSTS = f"127.0.0.1 localhost\n{V4_DST} dual.test\n{V6_DST} dual.test\n"  # IPv4 first in the file


def lab(prefix: str, h_script: str) -> Namespaces:
    return Namespaces(prefix, ["h", "r"], [("h", f"""
ip link add eth0 type veth peer name eth0 netns @r
ip -n @r addr add 2001:db8:1::1/64 dev eth0 nodad
ip -n @r addr add fd00:1::1/64 dev eth0 nodad
ip -n @r addr add 192.0.2.1/24 dev eth0
ip -n @r link set eth0 up
sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip link set eth0 up
{h_script}
""")])


SCENARIOS = {
    "global": ("""ip addr add 2001:db8:1::2/64 dev eth0 nodad
ip addr add 192.0.2.2/24 dev eth0
ip -6 route add default via 2001:db8:1::1
ip route add default via 192.0.2.1""", [V6_DST, V4_DST], 6),
    "ula-only": ("""ip addr add fd00:1::2/64 dev eth0 nodad
ip addr add 192.0.2.2/24 dev eth0
ip -6 route add default via fd00:1::1
ip route add default via 192.0.2.1""", [V4_DST, V6_DST], 5),
    "ipv4-only": ("""sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
ip addr add 192.0.2.2/24 dev eth0
ip route add default via 192.0.2.1""", [V4_DST, V6_DST], 1),
    "ipv6-only": ("""ip addr add 2001:db8:1::2/64 dev eth0 nodad
ip -6 route add default via 2001:db8:1::1""", [V6_DST, V4_DST], 1),
    "deprecated": ("""ip addr add 2001:db8:1::2/64 dev eth0 nodad preferred_lft 0
ip addr add 192.0.2.2/24 dev eth0
ip -6 route add default via 2001:db8:1::1
ip route add default via 192.0.2.1""", [V4_DST, V6_DST], 3),
}


def addrsel(ns: Namespaces, tmp_path, *args: str, gai: str | None = None) -> dict:
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    mounts = f"mount --bind {hosts} /etc/hosts"
    if gai is not None:
        (tmp_path / "gai.conf").write_text(gai)
        mounts += f" && mount --bind {tmp_path / 'gai.conf'} /etc/gai.conf"
    cmd = " ".join(f"'{a}'" for a in args)
    r = ns.run("h", "unshare", "-m", "--propagation", "private", "sh", "-c", f"{mounts} && exec {cmd}")
    assert r.returncode in (0, 1), r.stderr
    report = json.loads(r.stdout)
    validate("addrsel", report)
    return report


@pytest.fixture(autouse=True)
def _needs():
    require_root()
    require_tools("ip", "unshare", "mount")
    if not os.path.exists("/etc/gai.conf"):
        pytest.skip("needs /etc/gai.conf to bind-mount over (libc-bin ships it)")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_predicted_order_is_glibcs(name, v6diag_cmd, tmp_path, build_lab):
    script, expected, rule = SCENARIOS[name]
    ns = build_lab(lab(f"as{os.getpid() % 1000}{name[:3]}", script))
    report = addrsel(ns, tmp_path, *v6diag_cmd, "addrsel", "dual.test", "--json")
    assert report["system_order"] == expected, report
    assert report["order"] == report["system_order"], report
    assert report["decisions"][0]["rule"] == rule, report["decisions"]
    codes = {f["code"] for f in report["findings"]}
    if name == "ula-only":
        assert "ipv4-first-ula-source" in codes and report["gai_conf"]
        assert "label fd00:1::/64" in report["gai_conf"] and "label ::/0" in report["gai_conf"]
        assert report["decisions"][0]["why"].startswith(f"{V4_DST} (label 4)")
    if name == "deprecated":
        assert "deprecated-source" in codes
    if name == "ipv4-only":
        assert "ipv4-first-no-ipv6-route" in codes


def test_the_suggested_gai_conf_makes_glibc_prefer_ipv6(v6diag_cmd, tmp_path, build_lab):
    ns = build_lab(lab(f"ag{os.getpid() % 1000}", SCENARIOS["ula-only"][0]))
    report = addrsel(ns, tmp_path, *v6diag_cmd, "addrsel", "dual.test", "--json")
    fixed = addrsel(ns, tmp_path, *v6diag_cmd, "addrsel", "dual.test", "--json", gai=report["gai_conf"])
    assert fixed["system_order"] == [V6_DST, V4_DST], fixed  # glibc itself, with the file in place
    assert fixed["order"] == fixed["system_order"] and fixed["policy"] == "/etc/gai.conf"
    assert not [f for f in fixed["findings"] if f["code"].startswith("ipv4-first")]
    # the trap the seed fell in: the one line alone replaces every default label
    alone = addrsel(ns, tmp_path, *v6diag_cmd, "addrsel", "dual.test", "--json", gai="label fd00:1::/64 1\n")
    assert alone["order"] == alone["system_order"]


def test_a_temporary_address_from_router_advertisements(v6diag_cmd, tmp_path, build_lab):
    require_tools("radvd")
    ns = build_lab(lab(f"at{os.getpid() % 1000}", """sysctl -qw net.ipv6.conf.eth0.accept_ra=2
sysctl -qw net.ipv6.conf.eth0.use_tempaddr=2
ip addr add 192.0.2.2/24 dev eth0
ip route add default via 192.0.2.1"""))
    conf = tmp_path / "radvd.conf"
    conf.write_text("interface eth0 { AdvSendAdvert on; MinRtrAdvInterval 3; MaxRtrAdvInterval 4; AdvDefaultLifetime 600;"
                    " prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; }; };\n")
    ns.spawn(ns.name("r"), "radvd", "-n", "-C", str(conf), "-p", str(tmp_path / "radvd.pid"),
             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: "temporary" in ns.run("h", "ip", "-6", "addr", "show", "dev", "eth0").stdout,
               "a temporary address from SLAAC", timeout=30)
    wait_until(lambda: "tentative" not in ns.run("h", "ip", "-6", "addr", "show", "dev", "eth0").stdout,
               "DAD done", timeout=30)
    report = addrsel(ns, tmp_path, *v6diag_cmd, "addrsel", "dual.test", "--json")
    assert report["order"] == report["system_order"] == [V6_DST, V4_DST], report
    assert "temporary-addresses" in {f["code"] for f in report["findings"]}


def test_addresses_given_and_family_filter(v6diag_cmd, tmp_path, build_lab):
    ns = build_lab(lab(f"aa{os.getpid() % 1000}", SCENARIOS["global"][0]))
    report = addrsel(ns, tmp_path, *v6diag_cmd, "addrsel", V4_DST, V6_DST, "fe80::1", "--json")
    assert report["system_order"] is None and report["order"][0] == V6_DST
    only4 = addrsel(ns, tmp_path, *v6diag_cmd, "addrsel", "dual.test", "--family", "4", "--json")
    assert only4["order"] == only4["system_order"] == [V4_DST]
