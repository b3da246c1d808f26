"""Downloaded global configuration on disk, laid out exactly as X-Road's configuration client stores it.

::

    <root>/instance-identifier              the own instance (from the anchor), no newline
    <root>/<INSTANCE>/shared-params.xml      SHARED-PARAMETERS of INSTANCE
    <root>/<INSTANCE>/shared-params.xml.metadata
    <root>/<INSTANCE>/private-params.xml     PRIVATE-PARAMETERS (own instance only)
    <root>/<INSTANCE>/private-params.xml.metadata
    <root>/<INSTANCE>/<other part files>     optional parts (MONITORING, ...), named by their location

Each ``.metadata`` file is the JSON X-Road's ``ConfigurationPartMetadata`` writes::

    {"contentIdentifier":"SHARED-PARAMETERS","instanceIdentifier":"DEV",
     "expirationDate":"2035-11-11T03:07:40Z","contentFileName":null,
     "contentLocation":"/V6/20251110170000548026000/shared-params.xml","configurationVersion":"6"}

Every file is written to a temporary file in the same directory, flushed to disk and renamed over the old
one, so a reader sees either the old or the new file, never a half-written one. Files of one instance are
written only after the whole download was verified (content files first, their metadata last).

Example::

    >>> from pathlib import Path
    >>> from xroad_mn.globalconf.store import ConfigurationStore
    >>> store = ConfigurationStore(Path("/var/lib/xroad-mn/globalconf"))  # doctest: +SKIP
    >>> store.instance_identifier()  # doctest: +SKIP
    'DEV'
    >>> store.read_metadata("DEV", "shared-params.xml").expiration_date  # doctest: +SKIP
    datetime.datetime(2035, 11, 11, 3, 7, 40, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import (
    INSTANCE_IDENTIFIER_FILE,
    MAX_PARAMS_BYTES,
    PRIVATE_PARAMS_FILE,
    SHARED_PARAMS_FILE,
)

__all__ = [
    "METADATA_SUFFIX",
    "ConfigurationStore",
    "PartMetadata",
    "StoredPart",
    "check_instance_name",
    "part_file_name",
]

METADATA_SUFFIX: Final = ".metadata"
MAX_METADATA_BYTES: Final = 64 * 1024
"""Largest ``.metadata`` file read (real ones are about 250 bytes)."""
_NAME_OK: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_FIXED_NAMES: Final = {"PRIVATE-PARAMETERS": PRIVATE_PARAMS_FILE, "SHARED-PARAMETERS": SHARED_PARAMS_FILE}


def check_instance_name(instance: str) -> str:
    """``instance`` if it is usable as a directory name, else ``malformed_global_conf``."""
    if not _NAME_OK.match(instance) or instance in (".", ".."):
        raise XRoadError(
            FaultCode.MALFORMED_GLOBALCONF,
            f"instance identifier {instance[:60]!r} cannot name a configuration directory",
        )
    return instance


def part_file_name(content_identifier: str, content_location: str, content_file_name: str | None) -> str:
    """The stored file name of a part, as X-Road's ``FileNameProviderImpl`` chooses it.

    ``private-params.xml`` / ``shared-params.xml`` for the parameter files; otherwise the
    ``Content-file-name`` header or the last segment of the content location. Names that could escape the
    instance directory or collide with the metadata files are ``malformed_global_conf``.
    """
    fixed = _FIXED_NAMES.get(content_identifier)
    if fixed is not None:
        return fixed
    source = content_file_name or content_location
    name = source.replace("\\", "/").rsplit("/", 1)[-1]
    if (
        not _NAME_OK.match(name)
        or name in (".", "..", INSTANCE_IDENTIFIER_FILE, *_FIXED_NAMES.values())
        or name.endswith(METADATA_SUFFIX)
    ):
        raise XRoadError(
            FaultCode.MALFORMED_GLOBALCONF,
            f"configuration part {content_identifier!r} declares an unusable file name {source[:80]!r}",
        )
    return name


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PartMetadata:
    """The ``<file>.metadata`` JSON of one stored part."""

    content_identifier: str
    instance_identifier: str
    expiration_date: datetime | None
    """None in old metadata written without one."""
    content_location: str | None = None
    content_file_name: str | None = None
    configuration_version: int | None = None

    def to_json(self) -> bytes:
        """Compact JSON with X-Road's field names and order."""
        doc = {
            "contentIdentifier": self.content_identifier,
            "instanceIdentifier": self.instance_identifier,
            "expirationDate": (
                _format_time(self.expiration_date) if self.expiration_date is not None else None
            ),
            "contentFileName": self.content_file_name,
            "contentLocation": self.content_location,
            "configurationVersion": (
                str(self.configuration_version) if self.configuration_version is not None else None
            ),
        }
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> PartMetadata:
        """Parse a metadata file (X-Road's, of any version); unusable content is ``malformed_global_conf``."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise XRoadError(FaultCode.MALFORMED_GLOBALCONF, "configuration metadata is not JSON") from e
        if not isinstance(doc, dict):
            raise XRoadError(FaultCode.MALFORMED_GLOBALCONF, "configuration metadata is not a JSON object")

        def text(name: str) -> str | None:
            value = doc.get(name)
            if value is None:
                return None
            if not isinstance(value, str | int):
                raise XRoadError(
                    FaultCode.MALFORMED_GLOBALCONF, f"configuration metadata {name} is no string"
                )
            return str(value)

        expiration = text("expirationDate")
        expires: datetime | None = None
        if expiration is not None:
            try:
                expires = datetime.fromisoformat(expiration)
            except ValueError as e:
                raise XRoadError(
                    FaultCode.MALFORMED_GLOBALCONF, f"expirationDate {expiration[:40]!r} is not ISO 8601"
                ) from e
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
        version_text = text("configurationVersion")
        version = int(version_text) if version_text is not None and version_text.isdigit() else None
        return cls(
            content_identifier=text("contentIdentifier") or "",
            instance_identifier=text("instanceIdentifier") or "",
            expiration_date=expires,
            content_location=text("contentLocation"),
            content_file_name=text("contentFileName"),
            configuration_version=version,
        )


@dataclass(frozen=True)
class StoredPart:
    """A verified part ready to be stored: its file name in the instance directory, bytes and metadata."""

    file_name: str
    content: bytes
    metadata: PartMetadata


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never a half-written file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class ConfigurationStore:
    """The configuration directory of one security server (``/etc/xroad/globalconf`` in X-Road)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def instance_dir(self, instance: str) -> Path:
        return self.root / check_instance_name(instance)

    # -- reading

    def _read(self, path: Path, limit: int) -> bytes | None:
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"cannot read {path}: {e.strerror}") from e
        if len(data) > limit:
            raise XRoadError(FaultCode.MALFORMED_GLOBALCONF, f"{path} is larger than {limit} bytes")
        return data

    def instance_identifier(self) -> str | None:
        """The own instance named by ``instance-identifier``, or None before the first download."""
        data = self._read(self.root / INSTANCE_IDENTIFIER_FILE, 1024)
        if data is None:
            return None
        return data.decode("utf-8", "replace").strip() or None

    def read_file(self, instance: str, file_name: str) -> bytes | None:
        """A stored part's bytes, or None when it is not stored."""
        return self._read(self.instance_dir(instance) / file_name, MAX_PARAMS_BYTES)

    def read_metadata(self, instance: str, file_name: str) -> PartMetadata | None:
        """A stored part's metadata, or None when it has none."""
        data = self._read(self.instance_dir(instance) / (file_name + METADATA_SUFFIX), MAX_METADATA_BYTES)
        return None if data is None else PartMetadata.from_json(data)

    def stored_instances(self) -> tuple[str, ...]:
        """Instance directories present (those holding at least one part with metadata), sorted."""
        if not self.root.is_dir():
            return ()
        out: list[str] = []
        for p in self.root.iterdir():
            if p.is_dir() and _NAME_OK.match(p.name) and any(p.glob("*" + METADATA_SUFFIX)):
                out.append(p.name)
        return tuple(sorted(out))

    # -- writing

    def write_instance_identifier(self, instance: str) -> None:
        """Write ``instance-identifier`` (only when it changes)."""
        check_instance_name(instance)
        self.root.mkdir(parents=True, exist_ok=True)
        if self.instance_identifier() != instance:
            self._guard(lambda: _write_atomic(self.root / INSTANCE_IDENTIFIER_FILE, instance.encode("utf-8")))

    def write_parts(self, instance: str, parts: Sequence[StoredPart], *, delete_others: bool) -> list[Path]:
        """Store verified parts of ``instance``; returns the paths written or refreshed.

        Unchanged content files are left alone (only their metadata, with the new expiry, is rewritten).
        With ``delete_others`` the instance directory keeps only these parts, as X-Road's
        ``deleteExtraFiles`` does.
        """
        names = [p.file_name for p in parts]
        if len({n.lower() for n in names}) != len(names):
            raise XRoadError(
                FaultCode.MALFORMED_GLOBALCONF, "two configuration parts resolve to the same stored file"
            )
        directory = self.instance_dir(instance)
        written: list[Path] = []

        def run() -> None:
            directory.mkdir(parents=True, exist_ok=True)
            for part in parts:  # content first ...
                target = directory / part.file_name
                if self._read(target, MAX_PARAMS_BYTES) != part.content:
                    _write_atomic(target, part.content)
                written.append(target)
            for part in parts:  # ... then the metadata that says until when it is valid
                meta = directory / (part.file_name + METADATA_SUFFIX)
                _write_atomic(meta, part.metadata.to_json())
                written.append(meta)
            if delete_others:
                keep = {p.name for p in written}
                for p in directory.iterdir():
                    if p.is_file() and p.name not in keep and not p.name.startswith("."):
                        p.unlink()
            _fsync_dir(directory)

        self._guard(run)
        return written

    def delete_instances_except(self, keep: Iterable[str]) -> tuple[str, ...]:
        """Remove stored instance directories not in ``keep`` (federations no longer followed)."""
        keep_set = set(keep)
        removed = [name for name in self.stored_instances() if name not in keep_set]
        for name in removed:
            path = self.root / name
            self._guard(lambda: shutil.rmtree(path))  # noqa: B023 - called before the next iteration
        return tuple(removed)

    @staticmethod
    def _guard(action: Callable[[], None]) -> None:
        try:
            action()
        except OSError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"cannot store global configuration: {e}") from e
