"""Registry operations shared by the admin API and the CLI: initialisation, signing keys, generation, anchors.

The API handlers and the CLI commands are thin: they parse their input and call these functions with a
:class:`~registry.db.RegistryStore` and :class:`~registry.settings.RegistrySettings`.

Example::

    >>> async def main(store: RegistryStore, settings: RegistrySettings, token: Token) -> None:
    ...     await init_registry(store, settings, token, instance="MN", owner=MemberId("MN", "GOV", "1000001"),
    ...                         owner_name="Registry operator", now=datetime.now(UTC))
    ...     conf = await build_configuration(store, settings, token, now=datetime.now(UTC))
    ...     conf.write_to(Path("public"))
    ...     anchor = await configuration_anchor(store, settings, KeyKind.INTERNAL, now=datetime.now(UTC))
    ...     print(anchor.hash)
    >>> asyncio.run(main(store, settings, token))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import structlog
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine

from registry import globalconf_gen
from registry.db import (
    ConfigurationSigningKey,
    GlobalSettings,
    KeyKind,
    RegistryStore,
    migrate,
)
from registry.globalconf_gen import ExportedAnchor, GeneratedConfiguration
from registry.home import secure_database_file, secure_home
from registry.settings import RegistrySettings
from registry.signing import new_signing_key
from xroad_mn.database import open_migrated
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.globalconf.params import Member, MemberClass
from xroad_mn.identifiers import MemberId, SecurityServerId
from xroad_mn.tokens import Token

__all__ = [
    "DEFAULT_MEMBER_CLASSES",
    "MANAGEMENT_SUBSYSTEM",
    "MAX_CERTIFICATE_BYTES",
    "InitResult",
    "activate_signing_key",
    "add_member",
    "add_signing_key",
    "build_configuration",
    "common_name",
    "configuration_anchor",
    "delete_signing_key",
    "init_registry",
    "open_store",
    "parse_certificate",
    "public_tls_certificate",
    "sync_management_address",
]

log = structlog.get_logger(__name__)

DEFAULT_MEMBER_CLASSES: Final = (
    MemberClass("GOV", "Government organisations"),
    MemberClass("COM", "Commercial organisations"),
    MemberClass("NGO", "Non-governmental organisations"),
    MemberClass("PRIVATE", "Private persons"),
)
MANAGEMENT_SUBSYSTEM: Final = "MANAGEMENT"
"""The subsystem of the registry's owner that provides the management services (X-Road's default name)."""
MAX_CERTIFICATE_BYTES: Final = 32 * 1024
ANCHOR_PROBE_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""The ``generatedAt`` of the anchor whose digest tells whether the anchor's sources changed."""


def parse_certificate(data: bytes | str, what: str = "certificate") -> x509.Certificate:
    """A certificate given as PEM, DER, or base64 DER (as JSON carries it); 400 ``invalid_request`` else."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if len(raw) > MAX_CERTIFICATE_BYTES:
        raise XRoadError(FaultCode.INVALID_REQUEST, f"{what} is too large", kind=ErrorKind.BAD_INPUT)
    try:
        if b"-----BEGIN" in raw:
            return x509.load_pem_x509_certificate(raw)
        if raw[:1] == b"\x30":
            # DER as it is: its last bytes may well be whitespace bytes, which must not be stripped.
            return x509.load_der_x509_certificate(raw)
        return x509.load_der_x509_certificate(base64.b64decode(b"".join(raw.split()), validate=True))
    except (ValueError, binascii.Error) as e:
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            f"{what} is not a PEM or base64 DER X.509 certificate",
            kind=ErrorKind.BAD_INPUT,
        ) from e


def common_name(cert: x509.Certificate) -> str:
    """A certificate's subject CN (the default name of an approved CA or TSA), else its whole subject."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) and value else cert.subject.rfc4514_string()


async def add_signing_key(
    store: RegistryStore, token: Token, kind: KeyKind, now: datetime
) -> ConfigurationSigningKey:
    """Generate a signing key of ``kind`` in ``token`` (logged in) with its self-signed certificate, signed
    through the token, and add it: active when it is the first, else pending (rotation phase one: it is
    published in anchors and ``source`` before it signs). The database keeps the token's key id."""
    settings = await store.get_settings()
    key_id, info, cert = await asyncio.to_thread(new_signing_key, token, kind, settings.instance, now)
    try:
        return await store.add_signing_key(kind, key_id, info.key_id, cert)
    except BaseException:
        await asyncio.to_thread(token.delete_key, info.key_id)  # no key the registry does not know of
        raise


async def activate_signing_key(store: RegistryStore, token: Token, key_id: str) -> ConfigurationSigningKey:
    """Rotation phase two: the pending key ``key_id`` becomes the signing key of its kind; the key it
    replaces is deleted from the database, then from ``token``."""
    before = await store.list_signing_keys()
    activated = await store.activate_signing_key(key_id)
    kept = {k.key_id for k in await store.list_signing_keys()}
    await _delete_token_keys(token, [k.token_key_id for k in before if k.key_id not in kept])
    return activated


async def delete_signing_key(store: RegistryStore, token: Token, key_id: str) -> None:
    """Delete a pending signing key from the database, then from ``token`` (409 for the active key)."""
    token_key_ids = [k.token_key_id for k in await store.list_signing_keys() if k.key_id == key_id]
    await store.delete_signing_key(key_id)
    await _delete_token_keys(token, token_key_ids)


async def _delete_token_keys(token: Token, token_key_ids: Sequence[str]) -> None:
    """Delete keys the database no longer names; a key the token cannot delete is logged and left (the
    database change stands: an unused key in the token signs nothing)."""
    for token_key_id in token_key_ids:
        try:
            await asyncio.to_thread(token.delete_key, token_key_id)
        except XRoadError as e:
            log.warning("token_key_not_deleted", token_key_id=token_key_id, code=e.code, message=e.message)


@dataclass(frozen=True)
class InitResult:
    settings: GlobalSettings
    signing_keys: tuple[ConfigurationSigningKey, ...]


async def init_registry(
    store: RegistryStore,
    settings: RegistrySettings,
    token: Token,
    *,
    instance: str,
    owner: MemberId,
    owner_name: str,
    now: datetime,
    member_classes: Sequence[MemberClass] = DEFAULT_MEMBER_CLASSES,
) -> InitResult:
    """Initialise an empty registry database: the instance, the member classes, the owner member with its
    management-service subsystem (announced in private-params, with the public TLS certificate when there is
    one), and the first internal and external signing keys (both active), made in ``token`` (logged in)."""
    if owner.instance != instance:
        raise XRoadError(
            FaultCode.INVALID_REQUEST, f"the owner {owner} is not a member of instance {instance}"
        )
    await store.init_instance(instance)
    for mc in member_classes:
        await store.add_member_class(mc.code, mc.description)
    if owner.member_class not in {mc.code for mc in member_classes}:
        raise XRoadError(FaultCode.INVALID_REQUEST, f"member class {owner.member_class!r} is not created")
    await store.add_member(owner, owner_name)
    provider = owner.subsystem(MANAGEMENT_SUBSYSTEM)
    await store.add_subsystem(provider, "Management services")
    global_settings = await store.update_settings(
        management_service_provider=provider,
        management_service_address=settings.management_service_address(),
        management_service_cert=public_tls_certificate(settings),
        configuration_expiry_seconds=settings.configuration_expiry_seconds,
    )
    keys = (
        await add_signing_key(store, token, KeyKind.INTERNAL, now),
        await add_signing_key(store, token, KeyKind.EXTERNAL, now),
    )
    return InitResult(global_settings, keys)


async def add_member(store: RegistryStore, member: MemberId, name: str) -> Member:
    """Add a member as the admin API and the CLI do: an unknown member class is bad input (400) whose
    message names the valid classes (the store answers 404 for a missing class, as for any missing row)."""
    classes = [mc.code for mc in await store.list_member_classes()]
    if member.member_class not in classes:
        valid = ", ".join(classes)
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            f"member class {member.member_class[:80]!r} does not exist; "
            f"the valid member classes are: {valid}",
            details={"member_class": member.member_class[:80], "valid_member_classes": valid},
            kind=ErrorKind.BAD_INPUT,
        )
    return await store.add_member(member, name)


def public_tls_certificate(settings: RegistrySettings) -> x509.Certificate | None:
    """The public socket's TLS certificate (the first of ``public_tls_cert``), or None without TLS."""
    if settings.public_tls_cert is None:
        return None
    try:
        data = settings.public_tls_cert.read_bytes()
    except OSError as e:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS,
            f"cannot read public_tls_cert {settings.public_tls_cert}: {e.strerror}",
        ) from e
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as e:
        raise XRoadError(
            FaultCode.INVALID_SETTINGS, f"public_tls_cert {settings.public_tls_cert} is no PEM certificate"
        ) from e


async def sync_management_address(store: RegistryStore, settings: RegistrySettings) -> None:
    """Announce the management service where this registry serves it (its public address can change
    between runs, e.g. a test's free port) and, with TLS on the public socket, its certificate as
    ``authCertRegServiceCert``; an uninitialised registry is left alone."""
    try:
        current = await store.get_settings()
    except XRoadError:
        return
    if current.management_service_provider is None:
        return
    wanted = settings.management_service_address()
    cert = public_tls_certificate(settings)
    if current.management_service_address != wanted:
        await store.update_settings(management_service_address=wanted)
    if cert is not None and current.management_service_cert != cert:
        await store.update_settings(management_service_cert=cert)


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory SQLite)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # create_engine reports it
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


@asynccontextmanager
async def open_store(
    settings: RegistrySettings,
    *,
    clock: Callable[[], datetime] | None = None,
    token: Callable[[], Token] | None = None,
) -> AsyncIterator[RegistryStore]:
    """The registry's database, migrated to the current schema (and, on PostgreSQL with
    ``database_schema``, that schema created when missing), closed after the block.

    ``token`` gives the registry's token logged in (a :class:`~registry.signing.TokenLogin`): the migration
    that moves signing keys kept in clear into the token calls it, and fails without it."""
    url = settings.database()
    secure_home(settings.home)  # 0700: it holds the API keys and, by default, the database
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None:  # 0600 before SQLite creates it, so its -wal and -shm files are 0600 too
        secure_database_file(sqlite_file)

    async def upgrade(engine: AsyncEngine) -> None:
        await migrate(engine, token=token)

    async with open_migrated(
        url, upgrade, schema=settings.database_schema, **settings.engine_options()
    ) as engine:
        if sqlite_file is not None:  # the side files WAL mode created, whatever mode SQLite gave them
            secure_database_file(sqlite_file)
        yield RegistryStore(engine) if clock is None else RegistryStore(engine, clock=clock)


async def build_configuration(
    store: RegistryStore, settings: RegistrySettings, token: Token, *, now: datetime
) -> GeneratedConfiguration:
    """The next global configuration: a consistent snapshot of the store, signed by the active keys
    through ``token`` (logged in), in a worker thread."""
    addresses = settings.source_addresses()
    snap = await store.snapshot(addresses)
    versions = settings.versions()
    auth_certs: dict[SecurityServerId, Sequence[x509.Certificate]] | None = None
    if 2 in versions:  # version 2 writes SHA-1 hashes: it needs the certificates
        auth_certs = {}
        for ss in snap.shared.security_servers:
            sid = ss.owner.server(ss.server_code)
            auth_certs[sid] = await store.list_auth_certs(sid)
    expire_seconds = settings.expiry_seconds(snap.settings.configuration_expiry_seconds)

    def sign() -> GeneratedConfiguration:  # in the thread: the token's files, XML and signatures block
        return globalconf_gen.generate(
            snap.shared,
            snap.private,
            snap.generator_keys(token),
            now=now,
            expire_seconds=expire_seconds,
            versions=versions,
            source_addresses=addresses,
            auth_certs=auth_certs,
            monitoring_client=settings.monitoring_client_id(),
        )

    return await asyncio.to_thread(sign)


async def configuration_anchor(
    store: RegistryStore, settings: RegistrySettings, kind: KeyKind, *, now: datetime
) -> ExportedAnchor:
    """The internal or external configuration anchor (every key of ``kind``, active and pending) naming
    the sources :meth:`RegistrySettings.anchor_addresses` gives.

    Its ``generatedAt`` is the time its sources (instance, addresses, verification certificates) last
    changed, as X-Road keeps it, so the anchor's bytes and hash stay the same from one export to the next
    until a source changes: a hash read out over the phone matches the file.
    """
    global_settings = await store.get_settings()
    keys = await store.list_signing_keys(kind)
    if not keys:
        raise XRoadError(
            FaultCode.CONFLICT, f"the registry has no {kind.value} signing key", kind=ErrorKind.CONFLICT
        )

    def export(generated_at: datetime) -> ExportedAnchor:
        return globalconf_gen.export_anchor_of_certificates(
            global_settings.instance,
            settings.anchor_addresses(),
            [k.certificate for k in keys],
            kind,
            generated_at,
        )

    sources = hashlib.sha256(export(ANCHOR_PROBE_TIME).xml).hexdigest()
    utc = now.astimezone(UTC)
    generated_at = await store.anchor_generated_at(
        kind,
        sources,
        utc.replace(microsecond=utc.microsecond // 1000 * 1000),  # generatedAt has ms
    )
    return export(generated_at)
