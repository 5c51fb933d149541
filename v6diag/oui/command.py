"""`v6diag oui`: the vendor data behind every MAC vendor v6diag prints.

    v6diag oui update [--url URL]     download Wireshark's current manuf data into the cache
    v6diag oui lookup MAC...          the vendor of each MAC, and which data said so"""

from __future__ import annotations

from typing import List, Optional

import typer

from v6diag.core.console import Options, stderr, stdout
from v6diag.core.errors import EXIT_OK, EXIT_PROBLEMS, UsageError

oui = typer.Typer(help="The MAC vendor data: update it, look MACs up.", no_args_is_help=True)


@oui.command()
def update(
    ctx: typer.Context,
    url: Optional[str] = typer.Option(None, "--url", help="Where to download from (default: wireshark.org)."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> int:
    """Download Wireshark's current manuf file into ~/.cache/v6diag (at most weekly, please)."""
    from v6diag.core import vendor
    from v6diag.core.jsonout import emit
    from v6diag.oui import fetch

    opts: Options = ctx.obj
    stderr().print(f"downloading {url or fetch.URL}", highlight=False)
    data = fetch.update(url or fetch.URL)
    vendor.chosen.cache_clear()
    if json_out or opts.json:
        emit(data)
    else:
        when = f"published {data.date}" if data.date else "publication date unknown"
        stdout().print(f"{data.entries} vendor blocks ({when}) in {data.path}", highlight=False)
    return EXIT_OK


@oui.command()
def lookup(
    ctx: typer.Context,
    macs: List[str] = typer.Argument(..., help="MAC addresses (aa:bb:cc:dd:ee:ff, aa-bb-..., aabb.ccdd.eeff)."),
    json_out: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> int:
    """Print the vendor of each MAC (MA-L, MA-M and MA-S blocks) and which data answered."""
    import netaddr

    from v6diag.core import vendor
    from v6diag.core.jsonout import emit

    opts: Options = ctx.obj
    rows = []
    for text in macs:
        try:
            mac = str(netaddr.EUI(text, dialect=netaddr.mac_unix_expanded))
        except (netaddr.AddrFormatError, TypeError, ValueError):
            raise UsageError(f"not a MAC address: {text!r}") from None
        rows.append({"mac": mac, "vendor": vendor.vendor_of(mac),
                     "locally_administered": vendor.is_locally_administered(mac)})
    data = vendor.used()
    if json_out or opts.json:
        emit({"macs": rows, "vendor_data": data})
    else:
        out = stdout()
        for r in rows:
            name = r["vendor"] or ("(locally administered: no vendor)" if r["locally_administered"] else "(unknown)")
            out.print(f"{r['mac']}  {name}", highlight=False, soft_wrap=True)
        stderr().print(vendor.describe(data), highlight=False, soft_wrap=True)
    return EXIT_OK if all(r["vendor"] for r in rows) else EXIT_PROBLEMS
