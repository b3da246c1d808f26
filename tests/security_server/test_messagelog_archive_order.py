"""``node log verify`` walks a group's archives in chain order, following each ``linkinginfo``: archives
rotated within one second carry the same times in their names, which then sort by their digests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from security_server.messagelog.verify import _chains
from xroad_mn.archive import WrittenArchive, linked_previous, write_archive
from xroad_mn.fileio import save_archive

MOMENT = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)


def chain_of_three(salt: int) -> list[WrittenArchive]:
    out: list[WrittenArchive] = []
    for i in range(3):
        entries = [(f"q{i}-request-A.asice", f"container {i} {salt}".encode())]
        previous = out[-1].last_link if out else None
        out.append(write_archive(entries, previous=previous, start=MOMENT, end=MOMENT))
    return out


def test_linked_previous_reads_x_road_archives(interop_dir: Path) -> None:
    real = interop_dir / "asic" / "log-archives" / "mlog-WITH_LINKINGINFO.zip"
    assert linked_previous(real.read_bytes()) is None  # the first of its chain


def test_archives_of_one_second_are_walked_in_chain_order(tmp_path: Path) -> None:
    # A chain whose file names do not sort in chain order (the digests decide among equal times).
    salt = 0
    while [a.filename for a in chain_of_three(salt)] == sorted(a.filename for a in chain_of_three(salt)):
        salt += 1
    paths = [save_archive(tmp_path, archive) for archive in chain_of_three(salt)]
    assert linked_previous(paths[0].read_bytes()) is None
    assert linked_previous(paths[2].read_bytes()) == paths[1].name
    assert list(_chains(tmp_path)) == [("", paths)]
