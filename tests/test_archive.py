"""Message-log archives: interop verdicts, our archives and chains verify, tampering is caught, the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xroad_mn.archive import (
    LINKING_INFO,
    MAX_QUERY_ID_LENGTH,
    ArchiveLink,
    WrittenArchive,
    archive_filename,
    asic_entry_name,
    build_linking_info,
    escape_query_id,
    verify_archive,
    verify_archive_chain,
    write_archive,
)
from xroad_mn.cli.archive import app
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import read_archives, save_archive

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
REAL_LAST_DIGEST = (
    "9011ab557706b5050584d6888af7b390e5350f4edad296bd7a582aa51732aac7"
    "f49a4ec44dd361027945ade0de8b8cf607fb7b7d11f17b0560d44b965c358eaa"
)

# INDEX.md verdicts for asic/log-archives/*.zip: (valid as first archive?, last digest or reason fragment)
INTEROP_VERDICTS = {
    "message-archive-0.zip": (True, REAL_LAST_DIGEST),
    "mlog-WITH_LINKINGINFO.zip": (True, "624334053a96e0e1209d342514b5d890aeaeee8f0659da69688a3eeac0304856"),
    "mlog-EXCESSIVE_FILES_IN_LINKINGINFO.zip": (
        False,
        "file names in linking info and in the archive differ",
    ),
    "mlog-NO_ASIC_CONTAINERS.zip": (False, "no ASiC containers"),
    "mlog-NO_LINKINGINFO.zip": (False, "linking info is missing"),
}


def _archives(interop_dir: Path) -> Path:
    return interop_dir / "asic" / "log-archives"


def test_every_interop_archive_is_covered(interop_dir: Path) -> None:
    assert {p.name for p in _archives(interop_dir).glob("*.zip")} == set(INTEROP_VERDICTS)


@pytest.mark.parametrize("name", sorted(INTEROP_VERDICTS))
def test_interop_archive_reaches_index_verdict(interop_dir: Path, name: str) -> None:
    valid, expected = INTEROP_VERDICTS[name]
    data = (_archives(interop_dir) / name).read_bytes()
    if valid:
        result = verify_archive(data, first=True)
        assert result.last_digest == expected
        assert result.linked
        assert result.previous_digest is None
    else:
        with pytest.raises(XRoadError) as err:
            verify_archive(data, first=True)
        assert err.value.code == FaultCode.ARCHIVE_LINKING
        assert expected in err.value.message


def test_real_archive_does_not_link_to_a_wrong_previous_digest(interop_dir: Path) -> None:
    data = (_archives(interop_dir) / "message-archive-0.zip").read_bytes()
    with pytest.raises(XRoadError) as err:
        verify_archive(data, previous_digest="ab" * 64)
    assert err.value.code == FaultCode.ARCHIVE_LINKING


def test_unpacked_real_linkinginfo_is_what_we_would_write(interop_dir: Path) -> None:
    """Rebuild the real 2023 archive's linkinginfo from its container: byte-identical."""
    unpacked = _archives(interop_dir) / "unpacked" / "message-archive-0"
    container = next(unpacked.glob("*.asice"))
    linking, last = build_linking_info([(container.name, container.read_bytes())], previous=None)
    assert linking == (unpacked / LINKING_INFO).read_bytes()
    assert last == REAL_LAST_DIGEST


def test_container_hook_sees_every_container(interop_dir: Path) -> None:
    seen: list[str] = []

    def hook(name: str, data: bytes) -> None:
        assert data[:2] == b"PK"
        seen.append(name)

    verify_archive(
        (_archives(interop_dir) / "message-archive-0.zip").read_bytes(), first=True, verify_container=hook
    )
    assert seen == ["3a2a743f-56da-4085-b643-79e335341eb3-request-1.asice"]

    def reject(name: str, data: bytes) -> None:
        raise XRoadError(FaultCode.ASIC_SIGNATURE_NOT_FOUND, f"{name} has no signature")

    with pytest.raises(XRoadError) as err:
        verify_archive(
            (_archives(interop_dir) / "message-archive-0.zip").read_bytes(),
            first=True,
            verify_container=reject,
        )
    assert err.value.code == FaultCode.ASIC_SIGNATURE_NOT_FOUND


# --- Names -------------------------------------------------------------------------------------------------


def test_entry_names_follow_x_road() -> None:
    assert asic_entry_name("3a2a743f-56da-4085-b643-79e335341eb3", response=False, record_id=1) == (
        "3a2a743f-56da-4085-b643-79e335341eb3-request-1.asice"
    )
    assert asic_entry_name("q", response=True, record_id=32) == "q-response-10.asice"
    assert asic_entry_name("q", response=True, record_id=31 * 32 + 31) == "q-response-vv.asice"
    assert asic_entry_name("q", response=False, record_id=-1) == "q-request-fvvvvvvvvvvvv.asice"
    # Java URLEncoder: space -> '+', '*' '-' '.' '_' kept, '~' and '/' and non-ASCII escaped, upper-case hex.
    assert escape_query_id("a b/c~d*e_f.g-h") == "a+b%2Fc%7Ed*e_f.g-h"
    assert escape_query_id("Сайн") == "%D0%A1%D0%B0%D0%B9%D0%BD"
    long_name = asic_entry_name("/" * 200, response=False, record_id=5)
    assert long_name == "%2F" * 75 + "%" + "-request-5.asice"
    assert len(long_name.split("-request-")[0]) == MAX_QUERY_ID_LENGTH


def test_archive_filename() -> None:
    end = T0 + timedelta(hours=6)
    assert (
        archive_filename(T0, end, "95b1f27097524105aaaa")
        == "mlog-20240501120000-20240501180000-95b1f27097524105.zip"
    )
    assert archive_filename(T0, end, "ab" * 32, group="MN/GOV:5012345") == (
        "mlog-MN_GOV_5012345-20240501120000-20240501180000-abababababababab.zip"
    )


# --- Writing and verifying our own archives ----------------------------------------------------------------


def _entries(rng: random.Random, count: int, start_id: int = 1) -> list[tuple[str, bytes]]:
    return [
        (
            asic_entry_name(f"query-{rng.randrange(10**6)}", response=bool(i % 2), record_id=start_id + i),
            b"PK\x03\x04" + rng.randbytes(rng.randint(10, 300)),
        )
        for i in range(count)
    ]


def test_written_archive_verifies_and_is_shaped_like_java_output() -> None:
    rng = random.Random(1)
    entries = _entries(rng, 5)
    written = write_archive(entries, previous=None, start=T0, end=T0 + timedelta(minutes=5))
    result = verify_archive(written.data, first=True)
    assert result.entries == tuple(name for name, _ in entries)
    assert result.last_digest == written.last_link.digest
    assert written.filename.endswith(f"-{result.last_digest[:16]}.zip")
    with zipfile.ZipFile(io.BytesIO(written.data)) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [*(n for n, _ in entries), LINKING_INFO]
        # Java ZipOutputStream at level 0: the DEFLATE method, no compression (5-byte stored-block overhead).
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)
        assert all(i.compress_size <= i.file_size + 5 * (1 + i.file_size // 65535) for i in infos)
        lines = zf.read(LINKING_INFO).decode().splitlines()
    assert lines[0] == "- - SHA-512"
    assert len(lines) == 6
    # Deterministic: the same inputs give the same archive.
    assert write_archive(entries, previous=None, start=T0, end=T0 + timedelta(minutes=5)) == written


def test_linking_formula_by_hand() -> None:
    entries = [("a-request-1.asice", b"one"), ("b-request-2.asice", b"two")]
    prev = ArchiveLink("cd" * 32, "mlog-prev.zip")
    linking, last = build_linking_info(entries, previous=prev, hash_algorithm="SHA-256")
    d1 = hashlib.sha256(("cd" * 32 + hashlib.sha256(b"one").hexdigest()).encode()).hexdigest()
    d2 = hashlib.sha256((d1 + hashlib.sha256(b"two").hexdigest()).encode()).hexdigest()
    assert (
        linking
        == f"{'cd' * 32} mlog-prev.zip SHA-256\n{d1} a-request-1.asice\n{d2} b-request-2.asice\n".encode()
    )
    assert last == d2


def _chain_of_three(tmp_path: Path) -> list[tuple[Path, WrittenArchive]]:
    rng = random.Random(3)
    out: list[tuple[Path, WrittenArchive]] = []
    previous: ArchiveLink | None = None
    for k in range(3):
        start = T0 + timedelta(hours=6 * k)
        written = write_archive(
            _entries(rng, rng.randint(1, 6), start_id=100 * k),
            previous=previous,
            start=start,
            end=start + timedelta(hours=1),
            group="MN_GOV_5012345",
        )
        out.append((save_archive(tmp_path, written), written))
        previous = written.last_link
    return out


def test_chain_of_three_archives_links(tmp_path: Path) -> None:
    chain = _chain_of_three(tmp_path)
    previous_digest: str | None = None
    for k, (path, written) in enumerate(chain):
        data = path.read_bytes()
        result = (
            verify_archive(data, first=True)
            if k == 0
            else verify_archive(data, previous_digest=previous_digest)
        )
        assert result.last_digest == written.last_link.digest
        if k > 0:
            assert result.previous_file == chain[k - 1][1].filename
            # and it does not pass as a first archive, nor link to the wrong predecessor
            with pytest.raises(XRoadError):
                verify_archive(data, first=True)
            with pytest.raises(XRoadError):
                verify_archive(data, previous_digest=chain[0][1].last_link.digest if k == 2 else "00" * 64)
        previous_digest = result.last_digest
    results = verify_archive_chain(read_archives(p for p, _ in chain), first=True)
    assert [r.last_digest for r in results] == [w.last_link.digest for _, w in chain]
    with pytest.raises(XRoadError) as err:
        verify_archive_chain(read_archives([chain[0][0], chain[2][0]]), first=True)
    assert err.value.details["archive"] == chain[2][0].name
    assert f"{chain[1][0].name} is missing from the chain" in err.value.message


# --- Tampering ---------------------------------------------------------------------------------------------


def _rezip(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=0) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buffer.getvalue()


def _unzip(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def _expect_linking_failure(data: bytes, **kwargs: str | bool) -> XRoadError:
    with pytest.raises(XRoadError) as err:
        verify_archive(data, **kwargs)  # type: ignore[arg-type]
    assert err.value.code == FaultCode.ARCHIVE_LINKING
    return err.value


def test_flipping_any_byte_of_any_entry_fails() -> None:
    """Entries re-zipped with valid CRCs, so only the linking chain can notice."""
    rng = random.Random(7)
    written = write_archive(_entries(rng, 3), previous=None, start=T0, end=T0)
    entries = _unzip(written.data)
    for index, (name, data) in enumerate(entries):
        for pos in range(len(data)):
            if name == LINKING_INFO and data[pos : pos + 1] in (b" ", b"\n"):
                continue  # whitespace in linkinginfo only separates fields; X-Road splits on \s+
            tampered = [*entries]
            tampered[index] = (name, data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :])
            _expect_linking_failure(_rezip(tampered), first=True)


def test_flipping_stored_bytes_in_the_zip_itself_fails() -> None:
    """Raw flips inside each entry's data region: the zip's CRC or the linking chain notices."""
    rng = random.Random(8)
    written = write_archive(_entries(rng, 2), previous=None, start=T0, end=T0)
    raw = written.data
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        infos = zf.infolist()
    for info in infos:
        name_len = len(info.filename.encode())
        extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
        start = info.header_offset + 30 + name_len + extra_len
        for pos in range(start, start + info.compress_size):
            _expect_linking_failure(raw[:pos] + bytes([raw[pos] ^ 0x01]) + raw[pos + 1 :], first=True)


def test_missing_extra_and_reordered_entries_fail() -> None:
    rng = random.Random(9)
    written = write_archive(_entries(rng, 3), previous=None, start=T0, end=T0)
    entries = _unzip(written.data)
    containers, linking = entries[:-1], entries[-1]
    err = _expect_linking_failure(_rezip([*containers[1:], linking]), first=True)
    assert "differ" in err.message
    _expect_linking_failure(_rezip([*containers, ("x-request-9.asice", b"PK"), linking]), first=True)
    _expect_linking_failure(_rezip([*containers, ("notes.txt", b"hi"), linking]), first=True)
    _expect_linking_failure(_rezip([containers[1], containers[0], containers[2], linking]), first=True)
    _expect_linking_failure(_rezip(containers), first=True)
    _expect_linking_failure(b"not a zip at all", first=True)
    bad_head = linking[1].replace(b"- - SHA-512", b"- - MD5", 1)
    _expect_linking_failure(_rezip([*containers, (LINKING_INFO, bad_head)]), first=True)
    with pytest.raises(XRoadError):
        verify_archive(written.data, first=True, previous_digest="00")


# --- CLI ---------------------------------------------------------------------------------------------------


def test_cli_verifies_interop_archives(interop_dir: Path) -> None:
    runner = CliRunner()
    for name, (valid, expected) in INTEROP_VERDICTS.items():
        path = str(_archives(interop_dir) / name)
        human = runner.invoke(app, ["verify", path, "--first"])
        as_json = runner.invoke(app, ["verify", path, "--first", "--json"])
        obj = json.loads(as_json.stdout)
        assert set(obj) >= {"valid", "code", "reason", "last_digest", "entries", "linked"}
        assert obj["linked"] is valid
        if valid:
            assert human.exit_code == 0, human.output
            assert f"last digest: {expected}" in human.stdout
            assert as_json.exit_code == 0
            assert obj["valid"] is True
            assert obj["last_digest"] == expected
            assert obj["code"] is None
            assert len(obj["entries"]) == 1
        else:
            assert human.exit_code == 1
            assert "archive_linking_failed" in human.output
            assert expected in human.output
            assert as_json.exit_code == 1
            assert obj["valid"] is False
            assert obj["code"] == "archive_linking_failed"
            assert expected in obj["reason"]


def test_cli_chains_our_archives(tmp_path: Path) -> None:
    chain = _chain_of_three(tmp_path)
    runner = CliRunner()
    previous: list[str] = ["--first"]
    for path, written in chain:
        result = runner.invoke(app, ["verify", str(path), *previous, "--json"])
        assert result.exit_code == 0, result.output
        digest = json.loads(result.stdout)["last_digest"]
        assert digest == written.last_link.digest
        previous = ["--previous-digest", digest]
    wrong = runner.invoke(
        app, ["verify", str(chain[2][0]), "--previous-digest", chain[0][1].last_link.digest]
    )
    assert wrong.exit_code == 1
    assert "archive_linking_failed" in wrong.output
    unlinked = runner.invoke(app, ["verify", str(chain[1][0])])
    assert unlinked.exit_code == 0
    assert "not checked" in unlinked.stdout
    assert "linked" in unlinked.stdout
    whole = runner.invoke(app, ["verify-chain", *(str(p) for p, _ in chain), "--first", "--json"])
    assert whole.exit_code == 0, whole.output
    assert [o["last_digest"] for o in json.loads(whole.stdout)] == [w.last_link.digest for _, w in chain]
    broken = runner.invoke(app, ["verify-chain", str(chain[0][0]), str(chain[2][0]), "--first"])
    assert broken.exit_code == 1
    both = runner.invoke(app, ["verify", str(chain[0][0]), "--first", "--previous-digest", "00"])
    assert both.exit_code == 2


def test_cli_says_whether_the_link_was_checked(tmp_path: Path) -> None:
    # Review finding T2: "valid": true alone hid that the link to the previous archive was not checked.
    chain = _chain_of_three(tmp_path)
    runner = CliRunner()
    second, digest = str(chain[1][0]), chain[0][1].last_link.digest
    unlinked = runner.invoke(app, ["verify", second, "--json"])
    assert unlinked.exit_code == 0, unlinked.output
    assert json.loads(unlinked.stdout)["valid"] is True
    assert json.loads(unlinked.stdout)["linked"] is False
    linked = runner.invoke(app, ["verify", second, "--previous-digest", digest, "--json"])
    assert json.loads(linked.stdout)["linked"] is True
    first = runner.invoke(app, ["verify", str(chain[0][0]), "--first", "--json"])
    assert json.loads(first.stdout)["linked"] is True
    human = runner.invoke(app, ["verify", second])
    assert "linked" in human.stdout
    assert "no: link not checked" in human.stdout
    human_linked = runner.invoke(app, ["verify", second, "--previous-digest", digest])
    assert "not checked" not in human_linked.stdout
    chained = runner.invoke(app, ["verify-chain", *(str(p) for p, _ in chain), "--json"])
    assert [o["linked"] for o in json.loads(chained.stdout)] == [False, True, True]
