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
    >>> from xroad_mn.confclient.store import ConfigurationStore
    >>> store = ConfigurationStore(Path("/var/lib/xroad-mn/globalconf"))  # doctest: +SKIP
    >>> store.instance_identifier()  # doctest: +SKIP
    'DEV'
    >>> store.read_metadata("DEV", "shared-params.xml").expiration_date  # doctest: +SKIP
    datetime.datetime(2035, 11, 11, 3, 7, 40, tzinfo=datetime.timezone.utc)
    >>> from datetime import UTC, datetime
    >>> check = check_stored_directory(Path("/etc/xroad/globalconf"), at=datetime.now(UTC))  # doctest: +SKIP
    >>> check.instance, check.instances, check.approved_cas  # doctest: +SKIP
    ('EE', ('EE', 'bar', 'foo'), 10)

:func:`check_stored_directory` gives a verdict on an installed directory: ``instance-identifier`` names the
own instance, every instance's ``shared-params.xml`` parses (a malformed federated part is skipped, as
X-Road's ``VersionedConfigurationDirectory`` skips it), the own instance has parameters, and the
``.metadata`` files present parse, describe their file and have not expired (an expired federated part is
skipped; an expired own instance is ``global_conf_outdated``). The ``instanceIdentifier`` inside a metadata
file is not compared: X-Road's own test directories write ``v2`` for ``foo_v2``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Final

from xroad_mn.confclient.installed import load_trust_store
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.fileio import fsync_directory, write_atomic
from xroad_mn.globalconf.trust import (
    INSTANCE_IDENTIFIER_FILE,
    MAX_PARAMS_BYTES,
    PRIVATE_PARAMS_FILE,
    SHARED_PARAMS_FILE,
    TrustStore,
)

__all__ = [
    "METADATA_SUFFIX",
    "ConfigurationStore",
    "DirectoryCheck",
    "PartMetadata",
    "StoredPart",
    "check_instance_name",
    "check_stored_directory",
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

        def scan() -> None:
            for p in self.root.iterdir():
                if p.is_dir() and _NAME_OK.match(p.name) and any(p.glob("*" + METADATA_SUFFIX)):
                    out.append(p.name)

        self._guard(scan, "read global configuration")
        return tuple(sorted(out))

    # -- writing

    def write_instance_identifier(self, instance: str) -> None:
        """Write ``instance-identifier`` (only when it changes); an unusable root is ``io_error``."""
        check_instance_name(instance)
        self._guard(lambda: self.root.mkdir(parents=True, exist_ok=True))
        if self.instance_identifier() != instance:
            self._guard(lambda: write_atomic(self.root / INSTANCE_IDENTIFIER_FILE, instance.encode("utf-8")))

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
                    write_atomic(target, part.content)
                written.append(target)
            for part in parts:  # ... then the metadata that says until when it is valid
                meta = directory / (part.file_name + METADATA_SUFFIX)
                write_atomic(meta, part.metadata.to_json())
                written.append(meta)
            if delete_others:
                keep = {p.name for p in written}
                for p in directory.iterdir():
                    if p.is_file() and p.name not in keep and not p.name.startswith("."):
                        p.unlink()
            fsync_directory(directory)

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
    def _guard(action: Callable[[], None], what: str = "store global configuration") -> None:
        try:
            action()
        except OSError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"cannot {what}: {e}") from e


# ------------------------------------------------------------------------------------------------------------
# Checking an installed directory


@dataclass(frozen=True)
class DirectoryCheck:
    """What :func:`check_stored_directory` found in a valid configuration directory."""

    instance: str
    """The own instance (``instance-identifier``)."""
    instances: tuple[str, ...]
    """Instances whose parameters were loaded, own instance first."""
    approved_cas: int
    approved_tsas: int
    ocsp_freshness_seconds: int
    time_stamping_interval_seconds: int | None
    expires: datetime | None
    """Earliest expiration date the own instance's metadata gives (None when it gives none)."""
    skipped: tuple[str, ...]
    """Federated parts left out, each as ``"<dir>: <reason>"``."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {
            "instance": self.instance,
            "instances": list(self.instances),
            "approved_cas": self.approved_cas,
            "approved_tsas": self.approved_tsas,
            "ocsp_freshness_seconds": self.ocsp_freshness_seconds,
            "time_stamping_interval_seconds": self.time_stamping_interval_seconds,
            "expires": _format_time(self.expires) if self.expires is not None else None,
            "skipped": list(self.skipped),
        }


_EXPECTED_CONTENT: Final = {v: k for k, v in _FIXED_NAMES.items()}


def _metadata_problem(store: ConfigurationStore, name: str, at: datetime) -> tuple[str, datetime | None]:
    """``(problem, earliest expiry)`` of the parameter files' metadata in instance directory ``name``;
    ``problem`` is ``""`` (fine), ``"outdated"`` or ``"malformed"`` with the reason after a colon."""
    earliest: datetime | None = None
    for file_name, content_identifier in _EXPECTED_CONTENT.items():
        if not (store.root / name / file_name).is_file():
            continue
        try:
            meta = store.read_metadata(name, file_name)
        except XRoadError as e:
            return f"malformed:{file_name}{METADATA_SUFFIX}: {e.message}", earliest
        if meta is None:
            continue
        if meta.content_identifier and meta.content_identifier != content_identifier:
            return (
                f"malformed:{file_name}{METADATA_SUFFIX} describes {meta.content_identifier[:40]!r}",
                earliest,
            )
        expires = meta.expiration_date
        if expires is None:
            continue
        if expires <= at:
            return f"outdated:{file_name} expired at {_format_time(expires)}", expires
        earliest = expires if earliest is None else min(earliest, expires)
    return "", earliest


def check_stored_directory(root: Path, *, at: datetime) -> DirectoryCheck:
    """Check an installed configuration directory (as the configuration client stores it) at time ``at``.

    Raises ``io_error`` (not a readable directory), ``malformed_global_conf`` (details ``reason``
    ``missing_instance_identifier`` or ``malformed``) or ``global_conf_outdated`` (reason ``outdated``).
    Federated parts that are malformed or expired are skipped, as X-Road's configuration directory does.
    """
    # 1. A directory that names its own instance (X-Road: FAILURE_MISSING_INSTANCE_IDENTIFIER).
    if not root.is_dir():
        raise XRoadError(FaultCode.IO_ERROR, f"{root} is not a directory")
    store = ConfigurationStore(root)
    own = store.instance_identifier()
    if own is None:
        raise XRoadError(
            FaultCode.MALFORMED_GLOBALCONF,
            f"configuration directory {root} has no {INSTANCE_IDENTIFIER_FILE}",
            details={"reason": "missing_instance_identifier"},
        )
    check_instance_name(own)
    # 2. Every instance's shared-params (and the own private-params) parse; malformed federated parts are
    #    skipped, a malformed own part fails.
    try:
        trust_store = load_trust_store(root)
    except XRoadError as e:
        raise XRoadError(e.code, e.message, details={"reason": "malformed"}) from e
    by_instance = dict(trust_store.by_instance)
    skipped = list(trust_store.skipped)
    # 3. The own instance has parameters (X-Road: FAILURE_MALFORMED).
    if own not in by_instance:
        raise XRoadError(
            FaultCode.MALFORMED_GLOBALCONF,
            f"configuration directory {root} has no readable {SHARED_PARAMS_FILE} for its instance {own}",
            details={"reason": "malformed", **({"skipped": "; ".join(skipped)} if skipped else {})},
        )
    # 4. Metadata, where present, parses and names its file's content; nothing used has expired.
    expires: datetime | None = None
    for name in sorted(by_instance, key=lambda n: (n != own, n)):
        if not _NAME_OK.match(name):
            continue
        problem, earliest = _metadata_problem(store, name, at)
        if name == own:
            if problem.startswith("outdated:"):
                raise XRoadError(
                    FaultCode.GLOBAL_CONF_OUTDATED,
                    f"global configuration of {own} is outdated: {problem.partition(':')[2]}",
                    details={"reason": "outdated"},
                )
            if problem:
                raise XRoadError(
                    FaultCode.MALFORMED_GLOBALCONF, problem.partition(":")[2], details={"reason": "malformed"}
                )
            expires = earliest
        elif problem:
            del by_instance[name]
            skipped.append(f"{name}: {problem.partition(':')[2]}")
    kept = TrustStore(instance=own, by_instance=MappingProxyType(by_instance), skipped=tuple(skipped))
    material = kept.trust_material()
    return DirectoryCheck(
        instance=own,
        instances=(own, *material.federated_instances),
        approved_cas=len(material.approved_cas),
        approved_tsas=len(material.approved_tsas),
        ocsp_freshness_seconds=material.ocsp_freshness_seconds,
        time_stamping_interval_seconds=material.time_stamping_interval_seconds,
        expires=expires,
        skipped=tuple(skipped),
    )
