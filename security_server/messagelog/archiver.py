"""The archiver: time-stamped records into ``mlog-*.zip`` archives, linked into one chain per group, then the
cleaner (X-Road's ``LogArchiver`` and ``LogCleaner``).

:func:`archive_once` takes the time-stamped records not archived yet (``archive_transaction_batch`` at a
time, oldest first), groups them by their client as ``archive_grouping`` says (``none``, ``member``,
``subsystem``), and writes each group's records as ASiC-E containers into archives in ``archive_path``
(:func:`xroad_mn.archive.write_archive`: entries stored uncompressed, ``linkinginfo`` last, chained to the
group's previous archive), starting a new archive when the next container would take one past
``archive_max_filesize``. Each archive goes through these steps, one at a time, so that a crash (kill -9)
anywhere loses nothing and archives nothing twice:

1. written under a temporary name in the archive directory, readable by the node's user only (and
   encrypted with GnuPG when ``archive_encryption_enabled``), synced;
2. verified: the file read back is a valid archive linked to the group's previous one (an encrypted
   archive is verified before encryption);
3. noted as pending in the state file (:mod:`.archivestate`): its name, its records, its new last link;
4. renamed to its final name, the directory synced;
5. its last link saved as the group's in the state file;
6. its records marked archived in the database, in one transaction;
7. the pending note cleared.

A run first finishes a pending archive left by a crash (its file exists: its records are marked archived,
its link kept) or rolls it back (no file: its temporary file is removed, its records wait for this run),
and removes temporary files left before step 3. Then ``archive_transfer_command`` runs when archives were
written. :func:`clean_once` deletes archived records older than ``keep_records_for_days``.
:class:`Archiver` runs both in the background of a node.

Example::

    >>> files = await archive_once(store, settings, now=datetime.now(UTC))  # doctest: +SKIP
    >>> [f.path.name for f in files]  # doctest: +SKIP
    ['mlog-20240501120000-20240501180000-95b1f27097524105.zip']
    >>> archiver = Archiver(store, settings)  # doctest: +SKIP
    >>> async with archiver.running():  # every archive_interval_seconds; cleaning too  # doctest: +SKIP
    ...     await archiver.archive_now()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import structlog
from aiohttp import web

from security_server.messagelog.archivegpg import (
    ENCRYPTED_SUFFIX,
    archive_recipients,
    encrypt_archive,
    run_command,
)
from security_server.messagelog.archivestate import (
    LOCK_FILE,
    STATE_FILE,
    ArchiverState,
    PendingArchive,
    exclusive,
    load_state,
    save_state,
)
from security_server.messagelog.export import write_containers
from security_server.messagelog.store import ArchivableRecord, MessageLogStore
from security_server.settings import ArchiveGrouping, NodeSettings
from xroad_mn.archive import LINKING_INFO, ArchiveLink, WrittenArchive, verify_archive, write_archive
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import PRIVATE_DIRECTORY_MODE, PRIVATE_FILE_MODE, fsync_directory
from xroad_mn.identifiers import ClientId, MemberId, format_client_header
from xroad_mn.tasks import wait_for_wake

__all__ = [
    "TEMP_PREFIX",
    "TRANSFER_COMMAND_TIMEOUT_SECONDS",
    "ArchiveFile",
    "ArchiveStep",
    "Archiver",
    "Checkpoint",
    "archive_once",
    "clean_once",
    "group_key",
    "run_transfer_command",
]

log = structlog.get_logger(__name__)

TEMP_PREFIX: Final = ".mlog-"
"""Archives being written are hidden files ``.mlog-....tmp`` in the archive directory."""
TEMP_SUFFIX: Final = ".tmp"
TRANSFER_COMMAND_TIMEOUT_SECONDS: Final = 3600.0
"""Longest ``archive_transfer_command`` may run before it is killed."""
MAX_GROUP_NAME_CHARS: Final = 128
"""A group's part of an archive's file name is cut to this length (X-Road: "possibly truncated")."""
ZIP_ENTRY_OVERHEAD: Final = 30 + 46 + 16
"""Bytes a zip entry adds besides its name (twice) and data: local header, central directory record,
slack."""
DEFLATE_BLOCK: Final = 65535
DEFLATE_BLOCK_OVERHEAD: Final = 5
"""Level-0 DEFLATE stores data in blocks of at most 65535 bytes, 5 header bytes each."""
ZIP_END_OVERHEAD: Final = 22
LINKING_LINE_OVERHEAD: Final = 130
"""A ``linkinginfo`` line besides the entry name: a SHA-512 hex digest, a space and a newline."""


class ArchiveStep(StrEnum):
    """The steps of writing one archive (see the module docstring); a :data:`Checkpoint` sees each."""

    WRITTEN = "written"
    VERIFIED = "verified"
    PENDING_SAVED = "pending_saved"
    RENAMED = "renamed"
    LINK_SAVED = "link_saved"
    MARKED = "marked"
    DONE = "done"


Checkpoint = Callable[[ArchiveStep], None]
"""Called after each step of each archive; tests raise from it to stop the archiver as a crash would."""


def _no_checkpoint(step: ArchiveStep) -> None:
    return None


@dataclass(frozen=True)
class ArchiveFile:
    """An archive written by :func:`archive_once`."""

    path: Path
    group: str | None
    """The group (``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``), ``None`` without grouping."""
    records: int
    start: datetime
    """When the first of its records was logged."""
    end: datetime
    last_digest: str
    """The last linking digest: the next archive of the group links to it."""
    encrypted: bool
    size: int

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "group": self.group,
            "records": self.records,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "last_digest": self.last_digest,
            "encrypted": self.encrypted,
            "bytes": self.size,
        }


def group_key(client: ClientId, grouping: ArchiveGrouping) -> str:
    """The chain a record of ``client`` belongs to: ``""`` (no grouping), the member or the subsystem
    (``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``, a member client being its own group under ``subsystem``)."""
    if grouping is ArchiveGrouping.NONE:
        return ""
    return format_client_header(client.member if grouping is ArchiveGrouping.MEMBER else client)


def _io_error(what: str, e: OSError) -> XRoadError:
    return XRoadError(FaultCode.IO_ERROR, f"cannot {what}: {e.strerror or e}")


# -- recovery -----------------------------------------------------------------------------------------------


def _remove_temporary_files(directory: Path) -> None:
    for stray in directory.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            stray.unlink()
        log.warning("archive_temporary_file_removed", file=stray.name)


async def _recover(store: MessageLogStore, directory: Path, state_path: Path) -> ArchiverState:
    """Finish or roll back the archive a crash left pending; remove temporary files."""
    state = await asyncio.to_thread(load_state, state_path)
    pending = state.pending
    if pending is not None:
        if (directory / pending.filename).exists():
            await store.mark_archived(pending.record_ids)
            state = state.with_link(pending.group, pending.link).with_pending(None)
            log.warning(
                "archive_finished_after_crash", file=pending.filename, records=len(pending.record_ids)
            )
        else:
            state = state.with_pending(None)
            log.warning("archive_rolled_back_after_crash", file=pending.filename)
        await asyncio.to_thread(save_state, state_path, state)
    await asyncio.to_thread(_remove_temporary_files, directory)
    return state


# -- one archive --------------------------------------------------------------------------------------------


def _entry_cost(name: str, data: bytes) -> int:
    """An upper bound of what a container adds to an archive (its entry and its ``linkinginfo`` line)."""
    blocks = len(data) // DEFLATE_BLOCK + 1
    return (
        len(data)
        + blocks * DEFLATE_BLOCK_OVERHEAD
        + 3 * len(name)
        + ZIP_ENTRY_OVERHEAD
        + LINKING_LINE_OVERHEAD
    )


def _rotated(
    records: Sequence[ArchivableRecord], entries: Sequence[tuple[str, bytes]], max_size: int, base: int
) -> Iterator[tuple[list[ArchivableRecord], list[tuple[str, bytes]]]]:
    """Split a group's containers into archives of at most ``max_size`` bytes (one container, however
    large, always makes an archive). ``base`` is an archive's fixed cost: its ``linkinginfo`` header and
    entry, and the end record."""
    part_records: list[ArchivableRecord] = []
    part_entries: list[tuple[str, bytes]] = []
    size = base
    for record, entry in zip(records, entries, strict=True):
        cost = _entry_cost(*entry)
        if part_entries and size + cost > max_size:
            yield part_records, part_entries
            part_records, part_entries, size = [], [], base
        part_records.append(record)
        part_entries.append(entry)
        size += cost
    if part_entries:
        yield part_records, part_entries


def _base_cost(previous: ArchiveLink | None) -> int:
    header = len(previous.digest) + len(previous.filename) + 16 if previous else 16
    return header + ZIP_ENTRY_OVERHEAD + 2 * len(LINKING_INFO) + DEFLATE_BLOCK_OVERHEAD + ZIP_END_OVERHEAD


def _write_temp(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise _io_error(f"write the archive {path}", e) from e


def _sync_file(path: Path) -> int:
    """Narrow ``path`` (written by another process) to :data:`PRIVATE_FILE_MODE` and fsync it; its size."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
            os.fsync(fd)
            return os.fstat(fd).st_size
        finally:
            os.close(fd)
    except OSError as e:
        raise _io_error(f"sync the archive {path}", e) from e


def _verify(data: bytes, previous: ArchiveLink | None) -> None:
    verify_archive(data, previous_digest=previous.digest if previous else None, first=previous is None)


def _read_back_and_verify(path: Path, previous: ArchiveLink | None) -> None:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _io_error(f"read back the archive {path}", e) from e
    _verify(data, previous)


def _rename(temp: Path, final: Path) -> None:
    try:
        os.rename(temp, final)
    except OSError as e:
        raise _io_error(f"rename {temp.name} to {final.name}", e) from e
    fsync_directory(final.parent)


@dataclass
class _Run:
    """One :func:`archive_once` run: where it writes and the state it keeps."""

    store: MessageLogStore
    settings: NodeSettings
    directory: Path
    state_path: Path
    state: ArchiverState
    checkpoint: Checkpoint

    async def _save(self, state: ArchiverState) -> None:
        await asyncio.to_thread(save_state, self.state_path, state)
        self.state = state

    async def finished(self, at: datetime) -> None:
        """Note that the round that began ``at`` finished (monitoring's archive age, whichever process)."""
        await self._save(self.state.with_last_round(at))

    async def _write(
        self, written: WrittenArchive, temp: Path, previous: ArchiveLink | None, member: MemberId | None
    ) -> None:
        if not self.settings.archive_encryption_enabled:
            await asyncio.to_thread(_write_temp, temp, written.data)
            self.checkpoint(ArchiveStep.WRITTEN)
            await asyncio.to_thread(_read_back_and_verify, temp, previous)
            return
        await asyncio.to_thread(_verify, written.data, previous)
        recipients = archive_recipients(self.settings, member)
        await encrypt_archive(written.data, temp, gpg_home=self.settings.gpg_home(), recipients=recipients)
        await asyncio.to_thread(_sync_file, temp)
        self.checkpoint(ArchiveStep.WRITTEN)

    async def archive(
        self, group: str, records: Sequence[ArchivableRecord], entries: Sequence[tuple[str, bytes]]
    ) -> ArchiveFile:
        """Steps 1-7 of the module docstring for one archive of ``group``."""
        previous = self.state.links.get(group)
        start, end = records[0].record.time, records[-1].record.time
        name = group[:MAX_GROUP_NAME_CHARS] or None
        written = await asyncio.to_thread(
            write_archive, entries, previous=previous, start=start, end=end, group=name
        )
        encrypted = self.settings.archive_encryption_enabled
        filename = written.filename + (ENCRYPTED_SUFFIX if encrypted else "")
        final = self.directory / filename
        if final.exists():
            raise XRoadError(FaultCode.INTERNAL_ERROR, f"archive {final} exists already; not overwriting it")
        temp = self.directory / f"{TEMP_PREFIX}{filename}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        # 1-2. Written under a temporary name, synced, verified.
        await self._write(written, temp, previous, records[0].client.member if group else None)
        self.checkpoint(ArchiveStep.VERIFIED)
        # 3. Pending.
        ids = tuple(r.record.id for r in records)
        pending = PendingArchive(group, filename, temp.name, written.last_link, ids)
        await self._save(self.state.with_pending(pending))
        self.checkpoint(ArchiveStep.PENDING_SAVED)
        # 4. In place.
        await asyncio.to_thread(_rename, temp, final)
        self.checkpoint(ArchiveStep.RENAMED)
        # 5. The chain's new last link.
        await self._save(self.state.with_link(group, written.last_link))
        self.checkpoint(ArchiveStep.LINK_SAVED)
        # 6. The records archived.
        await self.store.mark_archived(ids)
        self.checkpoint(ArchiveStep.MARKED)
        # 7. Done.
        await self._save(self.state.with_pending(None))
        self.checkpoint(ArchiveStep.DONE)
        size = await asyncio.to_thread(lambda: final.stat().st_size)
        log.info("archive_written", file=filename, records=len(ids), group=group or None)
        return ArchiveFile(
            final, group or None, len(ids), start, end, written.last_link.digest, encrypted, size
        )

    async def archive_batch(self, batch: Sequence[ArchivableRecord]) -> list[ArchiveFile]:
        groups: dict[str, list[ArchivableRecord]] = {}
        for item in batch:
            groups.setdefault(group_key(item.client, self.settings.archive_grouping), []).append(item)
        files: list[ArchiveFile] = []
        for group, records in groups.items():
            entries = await asyncio.to_thread(write_containers, [r.record for r in records])
            base = _base_cost(self.state.links.get(group))
            for part_records, part_entries in _rotated(
                records, entries, self.settings.archive_max_filesize, base
            ):
                files.append(await self.archive(group, part_records, part_entries))
        return files


def _prepare(directory: Path) -> None:
    """Create the archive directory, private (archives hold message bodies) unless it exists already."""
    try:
        directory.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    except OSError as e:
        raise _io_error(f"create the archive directory {directory}", e) from e


async def archive_once(
    store: MessageLogStore,
    settings: NodeSettings,
    *,
    now: datetime,
    checkpoint: Checkpoint = _no_checkpoint,
) -> list[ArchiveFile]:
    """Archive every time-stamped record not archived yet (see the module docstring); the archives written,
    in order. ``now`` is when the run happens (logged). Runs ``archive_transfer_command`` after writing
    archives. ``conflict`` when another process archives this node's log right now."""
    directory = settings.archive_dir()
    await asyncio.to_thread(_prepare, directory)
    files: list[ArchiveFile] = []
    with exclusive(settings.home / LOCK_FILE):
        state_path = settings.home / STATE_FILE
        state = await _recover(store, directory, state_path)
        run = _Run(store, settings, directory, state_path, state, checkpoint)
        while batch := await store.archivable(settings.archive_transaction_batch):
            files.extend(await run.archive_batch(batch))
            if len(batch) < settings.archive_transaction_batch:
                break
        await run.finished(now)
    log.info("archiving_done", archives=len(files), at=now.isoformat())
    if files and settings.archive_transfer_command is not None:
        await run_transfer_command(settings.archive_transfer_command, directory)
    return files


async def run_transfer_command(command: str, directory: Path) -> bool:
    """Run ``command`` (split as a shell would, run without one) with ``directory`` as its last argument;
    whether it succeeded. A failure is logged, never raised: the archives stay for the next run."""
    argv = [*shlex.split(command), str(directory)]
    failure: dict[str, object] = {}
    try:
        status, stderr = await run_command(argv, stdin=None, seconds=TRANSFER_COMMAND_TIMEOUT_SECONDS)
    except OSError as e:
        failure = {"error": e.strerror or str(e)}
    except TimeoutError:
        failure = {"error": f"did not finish in {TRANSFER_COMMAND_TIMEOUT_SECONDS} s"}
    else:
        if status != 0:
            failure = {"status": status, "stderr": stderr}
    if failure:
        log.error("archive_transfer_failed", command=argv[0], **failure)
        return False
    log.info("archive_transfer_done", command=argv[0])
    return True


async def clean_once(store: MessageLogStore, settings: NodeSettings, *, now: datetime) -> int:
    """Delete archived records logged more than ``keep_records_for_days`` before ``now`` (X-Road's cleaner),
    ``clean_transaction_batch`` per transaction; how many were deleted. Unarchived records stay."""
    before = now - timedelta(days=settings.keep_records_for_days)
    total = 0
    while True:
        deleted = await store.delete_archived(before, settings.clean_transaction_batch)
        total += deleted
        if deleted < settings.clean_transaction_batch:
            break
    if total:
        log.info("records_cleaned", records=total, before=before.isoformat())
    return total


# -- the background task ------------------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Archiver:
    """Archives every ``archive_interval_seconds`` and cleans every ``clean_interval_seconds`` (a first
    round of each at start, which also finishes an archive a crash left pending)."""

    def __init__(
        self,
        store: MessageLogStore,
        settings: NodeSettings,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.last_error: XRoadError | None = None
        self.rounds = 0
        self._round_done = asyncio.Condition()

    async def archive_now(self) -> list[ArchiveFile]:
        """One archiving round now; the archives written. Errors are raised."""
        async with self._lock:
            return await archive_once(self.store, self.settings, now=self._clock())

    async def clean_now(self) -> int:
        """One cleaning round now; how many records were deleted."""
        return await clean_once(self.store, self.settings, now=self._clock())

    def wake(self) -> None:
        """Archive now rather than at the end of the interval."""
        self._wake.set()

    async def wait_for_round(self, after: int) -> int:
        """Wait until more than ``after`` archiving rounds of the background task completed."""
        async with self._round_done:
            await self._round_done.wait_for(lambda: self.rounds > after)
            return self.rounds

    async def _archive_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.archive_now()
                self.last_error = None
            except XRoadError as e:
                self.last_error = e
                log.warning("archiving_failed", code=e.code, error=e.message)
            async with self._round_done:
                self.rounds += 1
                self._round_done.notify_all()
            await wait_for_wake(self._wake, self.settings.archive_interval_seconds)

    async def _clean_loop(self) -> None:
        while True:
            try:
                await self.clean_now()
            except XRoadError as e:
                log.warning("cleaning_failed", code=e.code, error=e.message)
            await asyncio.sleep(self.settings.clean_interval_seconds)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Archiver]:
        """Run the archiving and cleaning tasks in the block."""
        tasks = [
            asyncio.create_task(self._archive_loop(), name="archiver"),
            asyncio.create_task(self._clean_loop(), name="log-cleaner"),
        ]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the archiving and cleaning tasks, stopped with the application."""
        async with self.running():
            yield
