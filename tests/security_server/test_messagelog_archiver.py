"""The message-log archiver: archives that ``xroad-mn archive verify`` accepts with containers that verify
(and whose tokens ``openssl ts -verify`` accepts), the linking chain across runs, grouping, rotation, a
crash at every step followed by a run that finishes the job, retention, the transfer command, GnuPG
encryption, the background task and ``xroad-mn node log archive``."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from security_server.home import create_home, open_home
from security_server.messagelog import LogRecord, MessageLogStore
from security_server.messagelog.archiver import (
    ArchiveFile,
    Archiver,
    ArchiveStep,
    archive_once,
    clean_once,
    run_transfer_command,
)
from security_server.messagelog.archivestate import LOCK_FILE, STATE_FILE, exclusive, load_state, save_state
from security_server.messagelog.models import MessageAttachmentRow, MessageRecordRow, TimestampRecordRow
from security_server.messagelog.verify import verify_log
from security_server.operations import open_node_store
from security_server.settings import ArchiveGrouping, NodeSettings
from tests.test_signature import Evidence, build_evidence
from trust_services.pki import random_serial
from trust_services.tsa import build_timestamp_reply
from xroad_mn.archive import LINKING_INFO, asic_entry_name, verify_archive_chain
from xroad_mn.asic import build_timestamp_hash_chains, read_container, verify_container
from xroad_mn.cli.archive import app as archive_cli
from xroad_mn.cli.main import build_app
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, MemberId
from xroad_mn.timestamp import build_timestamp_request, timestamp_token_gen_time, verify_timestamp_response

from .messagelog_fixtures import CLIENT, signed_record

POOL_SIZE = 16
OTHER_MEMBER = MemberId("MN", "COM", "7770001")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Pool:
    """Signed records and one real batch time-stamp over all of them (from the dev PKI's TSA)."""

    evidence: Evidence
    records: tuple[LogRecord, ...]
    token: bytes
    result_xml: bytes
    chains: tuple[bytes, ...]


def _client(i: int) -> ClientId:
    return (CLIENT, CLIENT.subsystem("a"), CLIENT.subsystem("b"), OTHER_MEMBER)[i % 4]


@pytest.fixture(scope="module")
def pool() -> Pool:
    evidence = build_evidence()
    records = tuple(
        dataclasses.replace(
            signed_record(
                evidence, f"q-{i // 2}", response=i % 2 == 1, attachments=(b"\x00body",) if i == 3 else ()
            ),
            client=_client(i // 2),
        )
        for i in range(POOL_SIZE)
    )
    chains = build_timestamp_hash_chains([r.signature.signature_xml for r in records])
    query = build_timestamp_request(chains.result_xml)
    reply = build_timestamp_reply(
        query,
        tsa=evidence.pki.tsa,
        serial=random_serial(),
        now=datetime.now(UTC),
        include_certificate="always",
    )
    token = verify_timestamp_response(reply, query)
    return Pool(evidence, records, token, chains.result_xml, tuple(chains.chains))


async def _log(store: MessageLogStore, pool: Pool, indices: Sequence[int], *, at: datetime = T0) -> list[int]:
    """Log the pool's records ``indices`` (a second apart from ``at``) and time-stamp them."""
    ids: list[int] = []
    for n, i in enumerate(indices):
        ids += await store.insert_records([pool.records[i]], at=at + timedelta(seconds=n))
    await store.save_batch_timestamp(
        ids,
        token=pool.token,
        gen_time=timestamp_token_gen_time(pool.token),
        hash_chain_result=pool.result_xml,
        hash_chains=[pool.chains[i] for i in indices],
    )
    return ids


@pytest.fixture
def store(node_db: AsyncEngine) -> Iterator[MessageLogStore]:
    s = MessageLogStore(node_db)
    yield s
    s.close()


def _settings(tmp_path: Path, **values: Any) -> NodeSettings:
    home = tmp_path / "node"
    home.mkdir(parents=True, exist_ok=True)
    return NodeSettings(home=home, **values)


def _entries(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _record_ids(paths: Sequence[Path]) -> list[int]:
    """The record ids named by the containers of ``paths`` (base 32 after the last ``-``)."""
    return [
        int(name.removesuffix(".asice").rsplit("-", 1)[1], 32)
        for path in paths
        for name, _ in _entries(path)
        if name != LINKING_INFO
    ]


def _chain_order(directory: Path) -> list[Path]:
    """The archives of ``directory`` (one chain) from the first, each following the one its linkinginfo
    names."""
    previous_of: dict[str, str] = {}
    for path in directory.glob("mlog-*.zip"):
        head = dict(_entries(path))[LINKING_INFO].decode().split("\n", 1)[0].split()
        previous_of[path.name] = head[1]
    order: list[Path] = []
    name = "-"
    while True:
        following = [n for n, p in previous_of.items() if p == name]
        assert len(following) <= 1, f"the chain forks after {name}"
        if not following:
            break
        name = following[0]
        order.append(directory / name)
    assert len(order) == len(previous_of), "archives outside the chain"
    return order


def _verify_chain(paths: Sequence[Path], pool: Pool) -> None:
    """Every archive links to the one before it from the first, and every container verifies."""

    def container_ok(name: str, data: bytes) -> None:
        assert str(verify_container(data, trust=pool.evidence.trust).signer) == str(CLIENT), name

    verify_archive_chain([(p.name, p.read_bytes()) for p in paths], first=True, verify_container=container_ok)


async def _unarchived(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(MessageRecordRow).where(MessageRecordRow.archived.is_(False))
        return int((await conn.execute(query)).scalar_one())


# -- archives ------------------------------------------------------------------------------------------------


async def test_archive_verifies_with_the_cli_and_its_containers_verify(
    store: MessageLogStore, node_db: AsyncEngine, pool: Pool, tmp_path: Path, openssl: str
) -> None:
    settings = _settings(tmp_path)
    ids = await _log(store, pool, range(6))
    (archive,) = await archive_once(store, settings, now=T0)
    assert archive.path.parent == settings.home / "archive"
    assert archive.path.name.startswith("mlog-20240501120000-20240501120005-")
    assert archive.path.name == f"mlog-20240501120000-20240501120005-{archive.last_digest[:16]}.zip"
    assert (archive.records, archive.group, archive.encrypted) == (6, None, False)
    assert archive.path.stat().st_mode & 0o777 == 0o600  # message bodies: the node's user only

    with zipfile.ZipFile(archive.path) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos][-1] == LINKING_INFO
        assert infos[0].filename == asic_entry_name("q-0", response=False, record_id=ids[0])
        assert infos[1].filename == asic_entry_name("q-0", response=True, record_id=ids[1])
        # Level 0: nothing is compressed (the containers are zips already).
        assert all(i.compress_size >= i.file_size for i in infos)
    assert sorted(_record_ids([archive.path])) == ids
    assert await _unarchived(node_db) == 0

    result = CliRunner().invoke(archive_cli, ["verify", str(archive.path), "--first", "--json"])
    assert result.exit_code == 0, result.stdout
    verdict = json.loads(result.stdout)
    assert (verdict["valid"], verdict["linked"], verdict["last_digest"]) == (True, True, archive.last_digest)
    _verify_chain([archive.path], pool)

    # An outside tool checks a container's batch time-stamp token over its ts-hashchainresult.xml.
    container = read_container(dict(_entries(archive.path))[verdict["entries"][3]])
    assert container.attachments == (b"\x00body",)
    assert container.timestamp is not None
    await asyncio.to_thread(
        _openssl_ts_verify,
        openssl,
        tmp_path,
        pool,
        container.timestamp.token,
        container.timestamp.hash_chain_result,
    )

    assert await archive_once(store, settings, now=T0) == []  # nothing new


def _openssl_ts_verify(openssl: str, tmp_path: Path, pool: Pool, token: bytes, data: bytes) -> None:
    (tmp_path / "token.der").write_bytes(token)
    (tmp_path / "data.bin").write_bytes(data)
    pki = pool.evidence.pki
    (tmp_path / "ca.pem").write_bytes(pki.root.certificate.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        [openssl, "ts", "-verify", "-token_in", "-in", "token.der", "-data", "data.bin", "-CAfile", "ca.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout


async def test_runs_extend_one_linking_chain(store: MessageLogStore, pool: Pool, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    written: list[ArchiveFile] = []
    for run, indices in enumerate([range(0, 3), range(3, 7), range(7, 8)]):
        await _log(store, pool, indices, at=T0 + timedelta(hours=run))
        written += await archive_once(store, settings, now=T0)
    assert len(written) == 3
    paths = [f.path for f in written]
    assert _chain_order(settings.archive_dir()) == paths
    _verify_chain(paths, pool)
    head = dict(_entries(paths[1]))[LINKING_INFO].decode().split("\n", 1)[0]
    assert head == f"{written[0].last_digest} {paths[0].name} SHA-512"
    assert load_state(settings.home / STATE_FILE).links[""].filename == paths[-1].name

    # The whole-log verifier (node log verify) accepts the records and the chain.
    verified = await verify_log(
        store, pool.evidence.trust, now=datetime.now(UTC), archives=settings.archive_dir()
    )
    assert verified.ok, verified.first_broken
    assert (verified.archives, verified.archived_containers) == (3, 8)


@pytest.mark.parametrize(
    ("grouping", "groups"),
    [
        (ArchiveGrouping.MEMBER, {"MN/GOV/5012345": 12, "MN/COM/7770001": 4}),
        (
            ArchiveGrouping.SUBSYSTEM,
            {"MN/GOV/5012345": 4, "MN/GOV/5012345/a": 4, "MN/GOV/5012345/b": 4, "MN/COM/7770001": 4},
        ),
    ],
)
async def test_grouping_keeps_a_chain_per_group(
    store: MessageLogStore, pool: Pool, tmp_path: Path, grouping: ArchiveGrouping, groups: dict[str, int]
) -> None:
    settings = _settings(tmp_path, archive_grouping=grouping)
    assert await archive_once(store, settings, now=T0) == []
    await _log(store, pool, range(0, 8))
    first = await archive_once(store, settings, now=T0)
    await _log(store, pool, range(8, POOL_SIZE), at=T0 + timedelta(days=1))
    second = await archive_once(store, settings, now=T0)
    by_group: dict[str, list[ArchiveFile]] = {}
    for f in first + second:
        assert f.group is not None
        assert f.path.name.startswith("mlog-" + f.group.replace("/", "_") + "-")
        by_group.setdefault(f.group, []).append(f)
    assert {g: sum(f.records for f in files) for g, files in by_group.items()} == groups
    for files in by_group.values():
        assert len(files) == 2  # one per run, the second linked to the first
        _verify_chain([f.path for f in files], pool)


async def test_archives_rotate_at_the_maximum_size(
    store: MessageLogStore, pool: Pool, tmp_path: Path
) -> None:
    await _log(store, pool, range(10))
    (probe,) = await archive_once(store, _settings(tmp_path / "probe"), now=T0)
    container_size = max(len(data) for name, data in _entries(probe.path) if name != LINKING_INFO)

    await _log(store, pool, range(10, 16))
    max_size = 3 * container_size + 2000
    settings = _settings(tmp_path, archive_max_filesize=max_size)
    files = await archive_once(store, settings, now=T0)
    assert sum(f.records for f in files) == 6
    assert len(files) >= 2
    assert all(f.size <= max_size for f in files)
    assert all(f.records >= 2 for f in files[:-1])
    _verify_chain([f.path for f in files], pool)


# -- crashes -------------------------------------------------------------------------------------------------


class Crash(Exception):
    """Stands for the process dying at a step: nothing after it runs, nothing is cleaned up."""


def _crash_at(step: ArchiveStep, *, archive: int) -> Any:
    seen = {"archives": 0}

    def checkpoint(current: ArchiveStep) -> None:
        if current is step and seen["archives"] == archive:
            raise Crash(step)
        if current is ArchiveStep.DONE:
            seen["archives"] += 1

    return checkpoint


@pytest.mark.parametrize("step", list(ArchiveStep))
async def test_a_crash_at_any_step_loses_nothing_and_archives_nothing_twice(
    store: MessageLogStore, node_db: AsyncEngine, pool: Pool, tmp_path: Path, step: ArchiveStep
) -> None:
    """Three archives per run (rotation); the run dies at ``step`` of the second; the next run finishes."""
    await _log(store, pool, range(2))
    (probe,) = await archive_once(store, _settings(tmp_path / "probe"), now=T0)
    settings = _settings(tmp_path, archive_max_filesize=probe.size + 4000)
    ids = await _log(store, pool, range(2, 8))
    with pytest.raises(Crash):
        await archive_once(store, settings, now=T0, checkpoint=_crash_at(step, archive=1))
    directory = settings.archive_dir()
    assert await _unarchived(node_db) > 0

    await archive_once(store, settings, now=T0)
    assert await _unarchived(node_db) == 0
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]
    chain = _chain_order(directory)
    assert sorted(_record_ids(chain)) == ids  # each record in exactly one archive
    _verify_chain(chain, pool)
    assert load_state(settings.home / STATE_FILE).pending is None


async def test_a_killed_archiver_process_is_finished_by_the_next_run(pool: Pool, tmp_path: Path) -> None:
    """A real kill -9 between the rename and marking the records: the next run marks them."""
    home = create_home(tmp_path / "node", {"address": "127.0.0.2"})
    settings = open_home(home)
    async with open_node_store(settings) as node_store:
        store = MessageLogStore(node_store.engine)
        try:
            ids = await _log(store, pool, range(4))
        finally:
            store.close()
    script = f"""
import asyncio, os, signal
from datetime import UTC, datetime
from pathlib import Path
from security_server.home import open_home
from security_server.messagelog import MessageLogStore
from security_server.messagelog.archiver import ArchiveStep, archive_once
from security_server.operations import open_node_store

def kill(step):
    if step is ArchiveStep.LINK_SAVED:
        os.kill(os.getpid(), signal.SIGKILL)

async def main():
    settings = open_home(Path({str(home)!r}))
    async with open_node_store(settings) as node_store:
        store = MessageLogStore(node_store.engine)
        await archive_once(store, settings, now=datetime.now(UTC), checkpoint=kill)

asyncio.run(main())
"""
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await child.wait() == -9
    assert load_state(home / STATE_FILE).pending is not None
    async with open_node_store(settings) as node_store:
        store = MessageLogStore(node_store.engine)
        try:
            assert await _unarchived(node_store.engine) == 4
            assert await archive_once(store, settings, now=T0) == []
            assert await _unarchived(node_store.engine) == 0
        finally:
            store.close()
    chain = _chain_order(settings.archive_dir())
    assert sorted(_record_ids(chain)) == ids
    _verify_chain(chain, pool)


async def test_one_archiver_at_a_time_and_a_damaged_state_is_refused(
    store: MessageLogStore, pool: Pool, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    await _log(store, pool, range(2))
    with exclusive(settings.home / LOCK_FILE), pytest.raises(XRoadError) as busy:
        await archive_once(store, settings, now=T0)
    assert busy.value.kind is ErrorKind.CONFLICT
    (settings.home / STATE_FILE).write_text('{"version": 1, "links": []}')
    with pytest.raises(XRoadError) as damaged:
        await archive_once(store, settings, now=T0)
    assert damaged.value.code == FaultCode.INTERNAL_ERROR
    assert "damaged" in damaged.value.message
    (settings.home / STATE_FILE).write_text('{"version": 1, "links": {}, "last_round": 17}')
    with pytest.raises(XRoadError) as damaged:
        load_state(settings.home / STATE_FILE)
    assert "last_round is not a time" in damaged.value.message


def test_a_state_file_from_before_last_round_was_kept_still_loads(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    path.write_text(
        '{"version": 1, "links": {"": {"digest": "ab", "filename": "mlog-1.zip"}}, "pending": null}'
    )
    state = load_state(path)
    assert (state.links[""].filename, state.last_round) == ("mlog-1.zip", None)
    save_state(path, state.with_last_round(T0))
    assert load_state(path).last_round == T0


# -- retention -----------------------------------------------------------------------------------------------


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_cleaner_deletes_only_archived_records_past_retention(
    store: MessageLogStore, node_db: AsyncEngine, pool: Pool, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, keep_records_for_days=30, clean_transaction_batch=2)
    now = T0 + timedelta(days=40)
    old = await _log(store, pool, range(0, 5))  # with the attachment of record 3
    await archive_once(store, settings, now=now)
    unarchived_old = await store.insert_records([pool.records[5]], at=T0)  # never time-stamped
    recent = await _log(store, pool, range(6, 8), at=now - timedelta(days=1))
    await archive_once(store, settings, now=now)

    assert await clean_once(store, settings, now=now) == len(old)
    async with node_db.connect() as conn:
        left = set((await conn.execute(select(MessageRecordRow.id))).scalars())
    assert left == set(unarchived_old + recent)
    assert await _count(node_db, MessageAttachmentRow) == 0
    assert await _count(node_db, TimestampRecordRow) == 1  # the recent records' time-stamp
    assert await clean_once(store, settings, now=now) == 0


# -- transfer command ----------------------------------------------------------------------------------------


async def test_transfer_command_gets_the_archive_directory_and_its_failure_is_not_fatal(
    store: MessageLogStore, pool: Pool, tmp_path: Path
) -> None:
    out = tmp_path / "transferred.txt"
    script = tmp_path / "transfer.py"
    script.write_text(f"import sys, pathlib\npathlib.Path({str(out)!r}).write_text(sys.argv[-1])\n")
    settings = _settings(tmp_path, archive_transfer_command=f"{sys.executable} {script}")
    await _log(store, pool, range(2))
    assert len(await archive_once(store, settings, now=T0)) == 1
    assert out.read_text() == str(settings.archive_dir())

    failing = _settings(tmp_path, archive_transfer_command=f"{sys.executable} -c 'raise SystemExit(3)'")
    await _log(store, pool, range(2, 4))
    assert len(await archive_once(store, failing, now=T0)) == 1
    assert await run_transfer_command(f"{sys.executable} -c 'raise SystemExit(3)'", tmp_path) is False
    assert await run_transfer_command(str(tmp_path / "missing-command"), tmp_path) is False


# -- encryption ----------------------------------------------------------------------------------------------


def _gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    result = subprocess.run(
        ["gpg", f"--homedir={home}", "--batch", "--no-tty", "--quiet", *args],
        input=data,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def _new_key(home: Path, uid: str) -> str:
    _gpg(home, "--passphrase", "", "--quick-gen-key", uid, "future-default", "default", "never")
    listing = _gpg(home, "--with-colons", "--list-keys", uid).decode()
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


@pytest.fixture
def gpg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed (apt-get install gnupg)")
    home = Path(tmp_path_factory.mktemp("gpg", numbered=True))
    os.chmod(home, 0o700)
    yield home
    subprocess.run(["gpgconf", f"--homedir={home}", "--kill", "all"], check=False, capture_output=True)


async def test_archives_are_encrypted_to_their_members_key(
    store: MessageLogStore, pool: Pool, tmp_path: Path, gpg_home: Path
) -> None:
    node_key = await asyncio.to_thread(_new_key, gpg_home, "node <node@example.mn>")
    member_key = await asyncio.to_thread(_new_key, gpg_home, "MN/COM/7770001 <member@example.mn>")
    settings = _settings(
        tmp_path,
        archive_grouping=ArchiveGrouping.MEMBER,
        archive_encryption_enabled=True,
        archive_gpg_home=gpg_home,
        archive_encryption_keys={"MN/COM/7770001": [member_key]},
    )
    await _log(store, pool, range(8))  # records 6 and 7 are OTHER_MEMBER's
    files = await archive_once(store, settings, now=T0)
    assert {f.group for f in files} == {"MN/GOV/5012345", "MN/COM/7770001"}
    for f in files:
        assert f.encrypted
        assert f.path.name.endswith(".zip.gpg")
        assert f.path.stat().st_mode & 0o777 == 0o600
        packets = await asyncio.to_thread(_gpg, gpg_home, "--list-packets", str(f.path))
        expected = member_key if f.group == "MN/COM/7770001" else node_key
        # The session key is encrypted to the member's key (else the node's own): its subkey's id.
        assert await asyncio.to_thread(_encrypted_to, gpg_home, expected, packets)
        plain = await asyncio.to_thread(_gpg, gpg_home, "--decrypt", str(f.path))
        with zipfile.ZipFile(io.BytesIO(plain)) as zf:
            assert zf.namelist()[-1] == LINKING_INFO
        verify_archive_chain([(f.path.name, plain)], first=True)
        assert f.path.name.removesuffix(".gpg").endswith(f"{f.last_digest[:16]}.zip")


def _encrypted_to(home: Path, fingerprint: str, packets: bytes) -> bool:
    listing = _gpg(home, "--with-colons", "--list-keys", fingerprint).decode()
    subkeys = [line.split(":")[4] for line in listing.splitlines() if line.startswith("sub:")]
    return any(f"keyid {k}" in packets.decode() for k in subkeys)


async def test_a_missing_key_fails_the_archive_and_leaves_the_records(
    store: MessageLogStore, node_db: AsyncEngine, pool: Pool, tmp_path: Path, gpg_home: Path
) -> None:
    await asyncio.to_thread(_new_key, gpg_home, "node <node@example.mn>")
    settings = _settings(
        tmp_path,
        archive_encryption_enabled=True,
        archive_gpg_home=gpg_home,
        archive_default_encryption_key="nobody@example.mn",
    )
    await _log(store, pool, range(2))
    with pytest.raises(XRoadError) as failed:
        await archive_once(store, settings, now=T0)
    assert "gpg" in failed.value.message
    assert await _unarchived(node_db) == 2
    assert list(settings.archive_dir().iterdir()) == [] or all(
        p.name.startswith(".") for p in settings.archive_dir().iterdir()
    )


# -- the background task and the CLI -------------------------------------------------------------------------


async def test_background_task_archives_at_start_and_when_woken(
    store: MessageLogStore, node_db: AsyncEngine, pool: Pool, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    await _log(store, pool, range(2))
    archiver = Archiver(store, settings, clock=lambda: T0 + timedelta(days=1))
    async with archiver.running():
        async with asyncio.timeout(10):
            rounds = await archiver.wait_for_round(0)
        assert await _unarchived(node_db) == 0
        await _log(store, pool, range(2, 4))
        archiver.wake()
        async with asyncio.timeout(10):
            await archiver.wait_for_round(rounds)
        assert await _unarchived(node_db) == 0
        assert await archiver.archive_now() == []
    # Monitoring's archive age: the round is noted in the state file, read by any process.
    assert load_state(settings.home / STATE_FILE).last_round == T0 + timedelta(days=1)
    assert len(_chain_order(settings.archive_dir())) == 2


async def test_node_log_archive_prints_the_archives_written(pool: Pool, tmp_path: Path) -> None:
    home = create_home(tmp_path / "node", {"address": "127.0.0.2"})
    settings = open_home(home)
    async with open_node_store(settings) as node_store:
        store = MessageLogStore(node_store.engine)
        try:
            ids = await _log(store, pool, range(4))
        finally:
            store.close()
    runner = CliRunner()
    cli = build_app()
    args = ["node", "log", "archive", "--dir", str(home)]
    before = datetime.now(UTC)
    result = await asyncio.to_thread(runner.invoke, cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    # The serving node's monitoring sees this round too (its archive age comes from the state file).
    last_round = load_state(home / STATE_FILE).last_round
    assert last_round is not None
    assert before <= last_round <= datetime.now(UTC)
    (archive,) = json.loads(result.stdout)["archives"]
    assert archive["records"] == 4
    assert sorted(_record_ids([Path(archive["file"])])) == ids
    again = await asyncio.to_thread(runner.invoke, cli, args)
    assert again.exit_code == 0, again.output
    assert "Nothing to archive" in again.stdout


# -- settings ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"archive_encryption_keys": {"MN/GOV/5012345/sub": ["ABCD"]}}, "names a subsystem"),
        ({"archive_encryption_keys": {"MN/GOV/5012345": ["--homedir=/tmp"]}}, "is not a GnuPG key"),
        ({"archive_encryption_keys": {"MN/GOV/5012345": []}}, "needs 1 to"),
        ({"archive_default_encryption_key": "-r x"}, "is not a GnuPG key"),
        ({"archive_transfer_command": "  "}, "is empty"),
        ({"archive_transfer_command": "upload 'unclosed"}, "cannot be split"),
        ({"archive_grouping": "client"}, "archive_grouping"),
    ],
)
def test_archive_settings_refuse_what_cannot_work(
    values: dict[str, Any], reason: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=reason):
        NodeSettings(home=tmp_path, **values)


def test_archive_settings_default_to_the_nodes_home(tmp_path: Path) -> None:
    settings = NodeSettings(home=tmp_path)
    assert (settings.archive_dir(), settings.gpg_home()) == (tmp_path / "archive", tmp_path / "gpghome")
    assert (settings.archive_grouping, settings.keep_records_for_days) == (ArchiveGrouping.NONE, 30)
    assert (settings.archive_max_filesize, settings.archive_transaction_batch) == (33554432, 10000)
    assert settings.archive_interval_seconds == 6 * 3600
