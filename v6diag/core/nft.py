"""The nftables ruleset as `nft -j list ruleset` prints it (iptables-nft, Debian's
default since buster, lands there too), for core/firewall's pure evaluation.
Read in the calling thread's network namespace: a child process inherits it."""

from __future__ import annotations

import json
import shutil
import subprocess


def ruleset() -> tuple[dict | None, str]:
    """(ruleset, "") or (None, why it could not be read)."""
    nft = shutil.which("nft") or ("/usr/sbin/nft" if shutil.which("/usr/sbin/nft") else None)
    if not nft:
        return None, "nft is not installed (iptables-legacy rules are not read)"
    r = subprocess.run([nft, "-j", "list", "ruleset"], capture_output=True, text=True)
    if r.returncode:
        return None, f"`nft list ruleset` failed: {r.stderr.strip()[:120]} (needs CAP_NET_ADMIN)"
    try:
        return json.loads(r.stdout or '{"nftables": []}'), ""
    except ValueError:
        return None, "`nft -j list ruleset` printed something that is not JSON"
