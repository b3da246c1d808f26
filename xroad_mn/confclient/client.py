"""The configuration client: download, verify and store signed global configuration (PR-GCONF).

Every security server runs one. From the anchor's sources (and, once a configuration is installed, the
``source`` addresses of its shared-params) it downloads the signed directory, verifies it and every
configuration file it lists, and stores the result the way X-Road does (see
:mod:`xroad_mn.confclient.store`). Federation partners' ``externalconf`` is followed only for the
instances ``allowed_federations`` names.

Example (an aiohttp app owns the session and the refresh task in its ``cleanup_ctx``)::

    >>> import asyncio, aiohttp
    >>> from pathlib import Path
    >>> from xroad_mn.globalconf.anchor import parse_anchor
    >>> from xroad_mn.confclient.client import ConfigurationClient
    >>> from xroad_mn.transport.globalconf import AiohttpConfigurationTransport
    >>> async def main() -> None:
    ...     anchor = parse_anchor(Path("configuration-anchor.xml").read_bytes())
    ...     async with aiohttp.ClientSession() as session:
    ...         client = ConfigurationClient(
    ...             anchor, Path("/var/lib/xroad-mn/globalconf"), AiohttpConfigurationTransport(session),
    ...             allowed_federations="none",
    ...         )
    ...         result = await client.refresh()
    ...         print(result.own.instance, result.own.expire_date)
    ...         client.status()  # raises global_conf_outdated once the stored copy expired
    >>> asyncio.run(main())  # doctest: +SKIP
    DEV 2035-11-11 03:07:40+00:00

One refresh, numbered as the code follows it:

1. list the locations: the installed shared-params' ``source`` addresses (``https://`` then ``http://``)
   and the anchor's download URLs (``https`` first), the last successful one first;
2. for each location until one succeeds: GET ``<url>?version=N`` for N = 6 down to 2 (a 404 means the
   version is not served), verify the directory's signature with the anchor's certificates plus, after a
   key rotation, the source verification certificates of the installed shared-params, and its
   ``Expire-date``; GET every part from the directory's origin and check its hash; check that the parameter
   files parse and name the instance they are listed for;
3. only then store the parts (temporary file + rename each; nothing is written when any check failed);
4. for every federation anchor in the new private-params whose instance is allowed, do 1–3 with its
   ``externalconf`` and only ``SHARED-PARAMETERS``; remove directories of instances no longer followed.

A failed refresh changes nothing stored; :meth:`ConfigurationClient.status` keeps answering from the stored
copy until its ``Expire-date`` and then raises ``global_conf_outdated``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import structlog
from cryptography import x509
from yarl import URL

from xroad_mn.confclient.store import (
    ConfigurationStore,
    PartMetadata,
    StoredPart,
    check_instance_name,
    part_file_name,
)
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import ConfigurationAnchor
from xroad_mn.globalconf.directory import (
    DirectoryPart,
    SignedDirectory,
    parse_signed_directory,
    verify_part_content,
    verify_signed_directory,
)
from xroad_mn.globalconf.params import (
    PrivateParameters,
    SharedParameters,
    parse_private_params,
    parse_shared_params,
)
from xroad_mn.globalconf.trust import PRIVATE_PARAMS_FILE, SHARED_PARAMS_FILE

__all__ = [
    "CURRENT_VERSION",
    "DEFAULT_UPDATE_INTERVAL_SECONDS",
    "MIN_VERSION",
    "AllowedFederations",
    "ConfigurationClient",
    "ConfigurationStatus",
    "ConfigurationTransport",
    "DownloadedConfiguration",
    "FederationOutcome",
    "InstanceResult",
    "LocationFailure",
    "RefreshResult",
    "configuration_locations",
    "content_url",
    "download_configuration",
    "versioned_url",
]

CURRENT_VERSION: Final = 6
"""Newest configuration version requested (X-Road 7.8's ``CURRENT_GLOBAL_CONFIGURATION_VERSION``)."""
MIN_VERSION: Final = 2
"""Oldest configuration version accepted."""
DEFAULT_UPDATE_INTERVAL_SECONDS: Final = 60.0
"""X-Road's ``configuration-client.update-interval``."""
INTERNAL_CONF: Final = "internalconf"
EXTERNAL_CONF: Final = "externalconf"
SHARED_PARAMETERS: Final = "SHARED-PARAMETERS"
PRIVATE_PARAMETERS: Final = "PRIVATE-PARAMETERS"
_TRANSPORT_CODES: Final = frozenset({FaultCode.NETWORK_ERROR, FaultCode.HTTP_ERROR, FaultCode.TIMEOUT})

_log = structlog.get_logger("xroad_mn.confclient.client")


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------------------
# Transport


class ConfigurationTransport(Protocol):
    """Fetches one URL: returns (body, Content-Type). HTTP errors are ``http_error`` with
    ``details["status"]``; unreachable hosts ``network_error``."""

    async def get(self, url: str) -> tuple[bytes, str]: ...


# --------------------------------------------------------------------------------------------------------
# Pure planning


@dataclass(frozen=True)
class AllowedFederations:
    """Which federation partners' configuration to follow (X-Road's ``allowed-federations``).

    ``AllowedFederations.parse("none")`` (the default), ``"all"`` or ``"EE,FI"``; instance names compare
    case-insensitively, and ``none`` anywhere wins.
    """

    all: bool = False
    instances: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, value: str | Iterable[str]) -> AllowedFederations:
        items = value.split(",") if isinstance(value, str) else list(value)
        names = {i.strip().lower() for i in items if i.strip()}
        if "none" in names:
            return cls()
        if "all" in names:
            return cls(all=True)
        return cls(instances=frozenset(names))

    def allows(self, instance: str, *, own_instance: str) -> bool:
        if instance.lower() == own_instance.lower():
            return False
        return self.all or instance.lower() in self.instances

    def __str__(self) -> str:
        if self.all:
            return "all"
        return ",".join(sorted(self.instances)) or "none"


def configuration_locations(
    anchor_urls: Sequence[str],
    shared: SharedParameters | None,
    kind: str,
    *,
    preferred: str | None = None,
) -> tuple[str, ...]:
    """The directory URLs to try, in order (step 1).

    The installed shared-params' ``source`` addresses become ``https://ADDRESS/KIND`` and then
    ``http://ADDRESS/KIND``; the anchor's URLs follow, ``https`` ones first. ``preferred`` (the last
    location that worked) goes first when it is still listed.
    """
    from_shared: list[str] = []
    if shared is not None:
        addresses = [s.address.strip() for s in shared.sources if s.address.strip()]
        from_shared = [f"https://{a}/{kind}" for a in addresses] + [f"http://{a}/{kind}" for a in addresses]
    anchor = sorted(anchor_urls, key=lambda u: 0 if u.lower().startswith("https:") else 1)
    out: list[str] = []
    for url in (*from_shared, *anchor):
        if url not in out:
            out.append(url)
    if preferred is not None and preferred in out:
        out.remove(preferred)
        out.insert(0, preferred)
    return tuple(out)


def versioned_url(url: str, version: int) -> str:
    """``url`` with ``version=N`` added to its query."""
    try:
        return str(URL(url).update_query(version=str(version)))
    except (ValueError, TypeError) as e:
        raise XRoadError(
            FaultCode.MALFORMED_ANCHOR, f"configuration source URL {url[:80]!r} is unusable"
        ) from e


def content_url(directory_url: str, content_location: str) -> str:
    """The URL of a part: its location resolved against the directory URL, on the same origin only."""
    try:
        base = URL(directory_url)
        target = base.join(URL(content_location))
    except (ValueError, TypeError) as e:
        raise XRoadError(
            FaultCode.MALFORMED_GLOBALCONF, f"content location {content_location[:80]!r} is not a URL"
        ) from e
    if not target.is_absolute() or target.origin() != base.origin():
        raise XRoadError(
            FaultCode.GLOBAL_CONF_INVALID,
            f"content location {content_location[:80]!r} points outside the configuration source",
            details={"content_location": content_location},
        )
    return str(target)


def trusted_certificates(
    anchor_certs: Sequence[x509.Certificate], installed: SharedParameters | None, *, external: bool
) -> tuple[x509.Certificate, ...]:
    """The anchor's certificates plus the installed shared-params' source certificates of that kind."""
    out = list(anchor_certs)
    if installed is not None:
        out += [c for c in installed.verification_certs(external=external) if c not in out]
    return tuple(out)


# --------------------------------------------------------------------------------------------------------
# Download and verification of one location


@dataclass(frozen=True)
class DownloadedConfiguration:
    """A directory and its parts, every check passed; nothing is stored yet."""

    instance: str
    url: str
    """The versioned directory URL it came from."""
    source_url: str
    """The location as listed (without ``?version``)."""
    directory: SignedDirectory
    verified_by: x509.Certificate
    parts: tuple[tuple[DirectoryPart, bytes], ...]
    skipped: tuple[str, ...] = ()
    """Content locations not downloaded (another instance, or a content identifier not asked for)."""

    def stored_parts(self) -> list[StoredPart]:
        """The parts as :class:`StoredPart` for :meth:`ConfigurationStore.write_parts`."""
        out: list[StoredPart] = []
        for part, content in self.parts:
            file_name_header = part.headers.get("content-file-name")
            name = part_file_name(part.content_identifier, part.content_location, file_name_header)
            meta = PartMetadata(
                content_identifier=part.content_identifier,
                instance_identifier=part.instance,
                expiration_date=self.directory.expire_date,
                content_location=part.content_location,
                content_file_name=file_name_header,
                configuration_version=self.directory.version,
            )
            out.append(StoredPart(name, content, meta))
        return out


def _parse_directory(body: bytes, content_type: str) -> SignedDirectory:
    # The central server's file starts with its own Content-Type header and is served as is; a server
    # that moves it into the HTTP header serves the bare multipart body.
    if body[:13].lower() == b"content-type:":
        return parse_signed_directory(body)
    return parse_signed_directory(body, content_type or None)


async def _get_directory(transport: ConfigurationTransport, url: str) -> tuple[str, bytes, str]:
    last: XRoadError | None = None
    for version in range(CURRENT_VERSION, MIN_VERSION - 1, -1):
        target = versioned_url(url, version)
        try:
            body, content_type = await transport.get(target)
        except XRoadError as e:
            if e.code == FaultCode.HTTP_ERROR and e.details.get("status") == 404:
                last = e
                continue
            raise
        return target, body, content_type
    assert last is not None
    raise XRoadError(
        FaultCode.HTTP_ERROR,
        f"{url} serves no configuration version from {CURRENT_VERSION} down to {MIN_VERSION}",
        details={"status": 404, "url": url},
    ) from last


def _check_part(part: DirectoryPart, content: bytes) -> None:
    """Step 2c-2d for one part: its hash, and parameter files must parse and be about the instance they are
    listed for."""
    verify_part_content(part, content)
    _check_params(part, content)


def _check_params(part: DirectoryPart, content: bytes) -> None:
    params: SharedParameters | PrivateParameters
    if part.content_identifier == SHARED_PARAMETERS:
        params = parse_shared_params(content)
    elif part.content_identifier == PRIVATE_PARAMETERS:
        params = parse_private_params(content)
    else:
        return
    if params.instance != part.instance:
        raise XRoadError(
            FaultCode.GLOBAL_CONF_INVALID,
            f"{part.content_location} names instance {params.instance!r}, "
            f"but is listed for {part.instance!r}",
            details={"content_location": part.content_location},
        )


async def download_configuration(
    transport: ConfigurationTransport,
    url: str,
    *,
    instance: str,
    trusted: Sequence[x509.Certificate],
    at: datetime,
    content_identifiers: Collection[str] | None = None,
) -> DownloadedConfiguration:
    """Download and verify the configuration of ``instance`` from one location (step 2), or raise.

    Only parts of ``instance`` (and, when given, of ``content_identifiers``) are downloaded. Raises
    ``global_conf_invalid``, ``invalid_signature_value``, ``global_conf_outdated``,
    ``malformed_global_conf`` or a transport error.
    """
    # Parsing, hashing and signature checks run in a worker thread: a directory and its parameter files may
    # be megabytes, and the event loop keeps serving meanwhile.
    # 2a. The directory, newest version first.
    directory_url, body, content_type = await _get_directory(transport, url)
    directory = await asyncio.to_thread(_parse_directory, body, content_type)
    # 2b. Signature by a trusted certificate, and Expire-date.
    cert = await asyncio.to_thread(verify_signed_directory, directory, trusted, at=at)
    # 2c. Every wanted part, from the same origin, against its hash.
    parts: list[tuple[DirectoryPart, bytes]] = []
    skipped: list[str] = []
    for part in directory.parts:
        if part.instance != instance or (
            content_identifiers is not None and part.content_identifier not in content_identifiers
        ):
            skipped.append(part.content_location)
            continue
        content, _ = await transport.get(content_url(directory_url, part.content_location))
        await asyncio.to_thread(_check_part, part, content)
        parts.append((part, content))
    if not any(p.content_identifier == SHARED_PARAMETERS for p, _ in parts):
        raise XRoadError(
            FaultCode.GLOBAL_CONF_INVALID,
            f"the directory at {directory_url} lists no SHARED-PARAMETERS for {instance}",
            details={"url": directory_url},
        )
    return DownloadedConfiguration(
        instance=instance,
        url=directory_url,
        source_url=url,
        directory=directory,
        verified_by=cert,
        parts=tuple(parts),
        skipped=tuple(skipped),
    )


# --------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class LocationFailure:
    """A location that was tried and failed."""

    url: str
    code: str
    message: str


@dataclass(frozen=True)
class InstanceResult:
    """What one successful download stored."""

    instance: str
    source_url: str
    directory_url: str
    version: int
    expire_date: datetime
    files: tuple[Path, ...]
    failures: tuple[LocationFailure, ...] = ()
    """Locations tried before the one that worked."""

    def to_dict(self) -> dict[str, object]:
        return {
            "instance": self.instance,
            "source_url": self.source_url,
            "directory_url": self.directory_url,
            "version": self.version,
            "expire_date": self.expire_date.isoformat(),
            "files": [str(f) for f in self.files],
            "failures": [{"url": f.url, "code": f.code, "message": f.message} for f in self.failures],
        }


@dataclass(frozen=True)
class FederationOutcome:
    """A federation partner's configuration: stored (``result``) or not (``code``/``message``)."""

    instance: str
    result: InstanceResult | None = None
    code: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "instance": self.instance,
            "ok": self.result is not None,
            "result": self.result.to_dict() if self.result is not None else None,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True)
class RefreshResult:
    """One successful refresh: the own instance, the federation partners followed, directories removed."""

    own: InstanceResult
    federations: tuple[FederationOutcome, ...] = ()
    removed_instances: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "own": self.own.to_dict(),
            "federations": [f.to_dict() for f in self.federations],
            "removed_instances": list(self.removed_instances),
        }


@dataclass(frozen=True)
class ConfigurationStatus:
    """The stored configuration is usable: its instance and until when."""

    instance: str
    expire_date: datetime
    version: int | None
    last_refresh: datetime | None = None
    """When a refresh last succeeded in this process."""
    last_error: XRoadError | None = field(default=None, compare=False)
    """Why the latest refresh failed, if it did (the stored copy is still served)."""


# --------------------------------------------------------------------------------------------------------
# The client


def _failure_error(instance: str, failures: Sequence[tuple[str, XRoadError]]) -> XRoadError:
    """One error for a download that failed everywhere: a verification failure wins over transport ones."""
    if not failures:
        return XRoadError(FaultCode.GLOBAL_CONF_INVALID, f"no configuration source is known for {instance}")
    chosen = next((e for _, e in failures if e.code not in _TRANSPORT_CODES), failures[-1][1])
    return XRoadError(
        chosen.code,
        f"cannot download the global configuration of {instance} from any source: {chosen.message}",
        details={
            "instance": instance,
            "attempts": "; ".join(f"{u}: {e.code}" for u, e in failures),
        },
    )


class ConfigurationClient:
    """Downloads, verifies and stores the global configuration of one anchor's instance and its partners.

    ``allowed_federations``: ``"none"``, ``"all"``, ``"A,B"`` or an :class:`AllowedFederations`.
    ``clock`` gives the verification time (timezone-aware).
    """

    def __init__(
        self,
        anchor: ConfigurationAnchor,
        store_dir: Path,
        transport: ConfigurationTransport,
        *,
        allowed_federations: AllowedFederations | str | Iterable[str] = "none",
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.anchor = anchor
        self.instance = check_instance_name(anchor.instance)
        self.store = ConfigurationStore(store_dir)
        self._transport = transport
        self.allowed_federations = (
            allowed_federations
            if isinstance(allowed_federations, AllowedFederations)
            else AllowedFederations.parse(allowed_federations)
        )
        self._clock = clock
        self._lock = asyncio.Lock()
        self._preferred: dict[str, str] = {}
        self._last_refresh: datetime | None = None
        self._last_error: XRoadError | None = None
        self._expire_date, self._version = self._stored_expiry()

    # -- state

    def _stored_expiry(self) -> tuple[datetime | None, int | None]:
        """Expiry and version of the own instance's stored parameter files (the earliest expiry)."""
        if self.store.instance_identifier() != self.instance:
            return None, None
        metas = [
            self.store.read_metadata(self.instance, n) for n in (SHARED_PARAMS_FILE, PRIVATE_PARAMS_FILE)
        ]
        shared = metas[0]
        if shared is None:
            return None, None
        expiries = [m.expiration_date for m in metas if m is not None]
        if any(e is None for e in expiries):  # an unknown expiry is no expiry to trust
            return None, None
        return min(e for e in expiries if e is not None), shared.configuration_version

    def status(self) -> ConfigurationStatus:
        """The stored configuration's state; ``global_conf_outdated`` when it is missing or expired."""
        now = self._clock()
        if self._expire_date is None:
            raise XRoadError(
                FaultCode.GLOBAL_CONF_OUTDATED,
                f"no global configuration of {self.instance} has been downloaded",
                details={"instance": self.instance, "reason": "missing"},
            )
        if now > self._expire_date:
            details: dict[str, str | int | float | bool | None] = {
                "instance": self.instance,
                "expire_date": self._expire_date.isoformat(),
                "at": now.isoformat(),
            }
            if self._last_error is not None:
                details["last_error_code"] = self._last_error.code
                details["last_error"] = self._last_error.message
            raise XRoadError(
                FaultCode.GLOBAL_CONF_OUTDATED,
                f"global configuration of {self.instance} expired at {self._expire_date.isoformat()}",
                details=details,
            )
        return ConfigurationStatus(
            self.instance, self._expire_date, self._version, self._last_refresh, self._last_error
        )

    def _installed_shared(self, instance: str) -> SharedParameters | None:
        """The stored (previously verified) shared-params of ``instance``; an unreadable one is ignored."""
        try:
            data = self.store.read_file(instance, SHARED_PARAMS_FILE)
            return None if data is None else parse_shared_params(data)
        except XRoadError as e:
            _log.warning("installed_shared_params_unusable", instance=instance, code=e.code, error=e.message)
            return None

    # -- downloading

    async def _download_instance(
        self,
        instance: str,
        anchor: ConfigurationAnchor,
        kind: str,
        content_identifiers: Collection[str] | None,
    ) -> tuple[DownloadedConfiguration, tuple[LocationFailure, ...]]:
        installed = await asyncio.to_thread(self._installed_shared, instance)
        trusted = trusted_certificates(anchor.verification_certs, installed, external=kind == EXTERNAL_CONF)
        locations = configuration_locations(
            [s.download_url for s in anchor.sources], installed, kind, preferred=self._preferred.get(instance)
        )
        failures: list[tuple[str, XRoadError]] = []
        for url in locations:
            try:
                downloaded = await download_configuration(
                    self._transport,
                    url,
                    instance=instance,
                    trusted=trusted,
                    at=self._clock(),
                    content_identifiers=content_identifiers,
                )
            except XRoadError as e:
                _log.info(
                    "globalconf_location_failed", instance=instance, url=url, code=e.code, error=e.message
                )
                failures.append((url, e))
                continue
            self._preferred[instance] = url
            return downloaded, tuple(LocationFailure(u, e.code, e.message) for u, e in failures)
        self._preferred.pop(instance, None)
        raise _failure_error(instance, failures)

    async def _store(self, downloaded: DownloadedConfiguration) -> tuple[Path, ...]:
        parts = downloaded.stored_parts()
        written = await asyncio.to_thread(
            self.store.write_parts, downloaded.instance, parts, delete_others=True
        )
        return tuple(written)

    @staticmethod
    def _result(
        downloaded: DownloadedConfiguration, files: tuple[Path, ...], failures: tuple[LocationFailure, ...]
    ) -> InstanceResult:
        return InstanceResult(
            instance=downloaded.instance,
            source_url=downloaded.source_url,
            directory_url=downloaded.url,
            version=downloaded.directory.version,
            expire_date=downloaded.directory.expire_date,
            files=files,
            failures=failures,
        )

    async def refresh(self) -> RefreshResult:
        """Download, verify and store the configuration once; raise (storing nothing) when the own
        instance's configuration cannot be had from any location. Federation failures do not fail it."""
        async with self._lock:
            try:
                result = await self._refresh()
            except XRoadError as e:
                self._last_error = e
                raise
            self._last_error = None
            self._last_refresh = self._clock()
            return result

    async def _refresh(self) -> RefreshResult:
        # Steps 1-2 for the own instance.
        downloaded, failures = await self._download_instance(self.instance, self.anchor, INTERNAL_CONF, None)
        # Step 3.
        await asyncio.to_thread(self.store.write_instance_identifier, self.instance)
        files = await self._store(downloaded)
        self._expire_date = downloaded.directory.expire_date
        self._version = downloaded.directory.version
        own = self._result(downloaded, files, failures)
        _log.info(
            "globalconf_downloaded",
            instance=self.instance,
            url=downloaded.url,
            expire_date=own.expire_date.isoformat(),
        )

        # Step 4: federation partners named in the new private-params, if allowed.
        private_bytes = next(
            (c for p, c in downloaded.parts if p.content_identifier == PRIVATE_PARAMETERS), None
        )
        private = await asyncio.to_thread(parse_private_params, private_bytes) if private_bytes else None
        partners = private.configuration_anchors if private is not None else ()
        outcomes: list[FederationOutcome] = []
        keep = {self.instance}
        for partner in partners:
            if not self.allowed_federations.allows(partner.instance, own_instance=self.instance):
                continue
            try:
                keep.add(check_instance_name(partner.instance))
                fed, fed_failures = await self._download_instance(
                    partner.instance, partner, EXTERNAL_CONF, (SHARED_PARAMETERS,)
                )
                fed_files = await self._store(fed)
            except XRoadError as e:
                _log.warning(
                    "federation_download_failed", instance=partner.instance, code=e.code, error=e.message
                )
                outcomes.append(FederationOutcome(partner.instance, code=e.code, message=e.message))
                continue
            outcomes.append(FederationOutcome(partner.instance, self._result(fed, fed_files, fed_failures)))
        removed = await asyncio.to_thread(self.store.delete_instances_except, keep)
        return RefreshResult(own, tuple(outcomes), removed)

    async def run_periodically(self, interval: float = DEFAULT_UPDATE_INTERVAL_SECONDS) -> None:
        """Refresh now and then every ``interval`` seconds until cancelled; failures are logged and the
        stored copy keeps being served. Run it as a task owned by an app's ``cleanup_ctx``."""
        while True:
            try:
                await self.refresh()
            except XRoadError as e:
                _log.warning(
                    "globalconf_refresh_failed", instance=self.instance, code=e.code, error=e.message
                )
            await asyncio.sleep(interval)
