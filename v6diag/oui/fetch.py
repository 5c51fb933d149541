"""Download Wireshark's manuf data into the user's cache, atomically: fetched to a
temporary file beside it, parsed by the same parser lookups use, then renamed
over the old one. A failed or bad download leaves the old data in place."""

from __future__ import annotations

import email.utils
import gzip
import json
import os
import tempfile
import urllib.error
import urllib.request
from datetime import timezone
from pathlib import Path

from v6diag.core import vendor
from v6diag.core.errors import InputError, UnavailableError

# The canonical location (the file's own header says so); Wireshark asks for at
# most one download a week: `oui update` is a command a person runs, never automatic.
URL = "https://www.wireshark.org/download/automated/data/manuf.gz"
MAX_BYTES = 64 << 20  # the real file is ~3 MB (0.8 MB gzipped): refuse anything absurd


def update(url: str = URL, timeout: float = 30.0) -> vendor.VendorData:
    folder = vendor.cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UnavailableError(f"cannot create the cache folder {folder}: {e.strerror}") from e
    request = urllib.request.Request(url, headers={"User-Agent": "v6diag (oui update)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
            modified = response.headers.get("Last-Modified")
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise UnavailableError(f"cannot download {url}: {reason}",
                               hint="check the network, or pass --url to a reachable copy of Wireshark's manuf") from e
    if len(body) > MAX_BYTES:
        raise InputError(f"{url}: more than {MAX_BYTES >> 20} MiB: not Wireshark's manuf file")
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as e:
            raise InputError(f"{url}: a damaged gzip file ({e})") from e
    date = _date(modified)
    fd, tmp = tempfile.mkstemp(prefix=".manuf-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        entries = _check(tmp, url)
        meta = {"url": url, "date": date, "entries": entries}
        with open(tmp + ".json", "w") as f:
            json.dump(meta, f)
        os.replace(tmp, folder / "manuf")
        os.replace(tmp + ".json", folder / "manuf.json")
    finally:
        for leftover in (tmp, tmp + ".json"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return vendor.VendorData("oui update", date, entries, str(folder / "manuf"))


def _date(header: str | None) -> str | None:
    if not header:
        return None
    try:
        return email.utils.parsedate_to_datetime(header).astimezone(timezone.utc).date().isoformat()
    except (TypeError, ValueError):
        return None


def _check(path: str, url: str) -> int:
    """Parse the download as lookups will; count its blocks."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if not text.lstrip().startswith("#") and "\t" not in text[:4096]:
        raise InputError(f"{url}: not Wireshark's manuf file (no tab-separated blocks)")
    try:
        parser = vendor.parse(path, quiet=True)
    except Exception as e:
        raise InputError(f"{url}: does not parse as Wireshark's manuf file ({type(e).__name__}: {e})") from e
    entries = len(getattr(parser, "_masks", {}))
    if entries < 1000:  # today's file has ~58,000 blocks
        raise InputError(f"{url}: only {entries} vendor blocks: not the whole manuf file")
    return entries
