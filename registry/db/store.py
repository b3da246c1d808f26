"""The registry's data API: one :class:`RegistryStore` whose every operation is one atomic transaction.

Example::

    >>> import asyncio
    >>> from registry.db import RegistryStore, create_engine, migrate
    >>> from xroad_mn.identifiers import MemberId
    >>> async def main() -> None:
    ...     engine = create_engine("sqlite+aiosqlite:///registry.db")
    ...     await migrate(engine)
    ...     store = RegistryStore(engine)
    ...     await store.init_instance("MN")
    ...     await store.add_member_class("GOV", "Government")
    ...     await store.add_member(MemberId("MN", "GOV", "5012345"), "Ministry of Digital Development")
    ...     print([m.name for m in await store.list_members()])
    ...     await engine.dispose()
    >>> asyncio.run(main())  # doctest: +SKIP
    ['Ministry of Digital Development']

Errors are :class:`~xroad_mn.errors.XRoadError`: ``conflict`` (HTTP 409) for duplicates, a registry that
is not initialised and refused state changes, ``not_found`` (404), ``invalid_request`` or an identifier
code (400) for bad input, ``io_error`` when the database fails. New identifier parts must pass X-Road's
strict identifier checks. Members, servers, groups, CAs and TSAs are returned as the
:mod:`xroad_mn.globalconf.params` dataclasses, sorted, so :meth:`RegistryStore.snapshot` is the content of
the next global configuration: a security server's ``clients`` are its *enabled* clients, as X-Road's
central server lists them (a client disabled by ``clientDisable`` stays registered, see
:meth:`RegistryStore.set_client_enabled` and :meth:`RegistryStore.list_server_clients`).

A management request's effect and its state transition are one transaction with
:meth:`RegistryStore.apply_request`, which hands the effect a :class:`RequestEffects` bound to it::

    >>> async def approve(store: RegistryStore, request_id: int) -> None:
    ...     async def register(fx: RequestEffects, request: ManagementRequestRecord) -> None:
    ...         await fx.add_security_server(request.security_server, "ss1.example.mn")
    ...         await fx.add_auth_cert(request.security_server, auth_cert)  # fails: neither write is kept
    ...     await store.apply_request(request_id, RequestAction.APPROVE, effect=register, user="admin")
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Final, TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from registry.db.models import (
    ID_PART_LENGTH,
    SETTINGS_ROW_ID,
    AnchorSourcesRow,
    ApprovedCaRow,
    ApprovedTsaRow,
    AuthCertRow,
    CaCertRow,
    GlobalGroupMemberRow,
    GlobalGroupRow,
    ManagementRequestEventRow,
    ManagementRequestRow,
    MemberClassRow,
    MemberRow,
    OcspResponderRow,
    RequestState,
    SecurityServerClientRow,
    SecurityServerRow,
    SettingsRow,
    SigningKeyRow,
    SubsystemRow,
)
from registry.db.records import (
    ConfigurationSigningKey,
    GlobalSettings,
    ManagementRequestRecord,
    RegistrySnapshot,
    RequestAction,
    RequestEvent,
    ServerClient,
    transition_target,
)
from registry.db.request_rows import RequestPayload, request_columns, request_from_row
from registry.globalconf_gen import KeyKind
from registry.validation import check_certificate_profile, check_server_address, check_text
from xroad_mn.database import completing_calls
from xroad_mn.errors import DetailValue, ErrorKind, FaultCode, XRoadError
from xroad_mn.globalconf.params import (
    ApprovedCAEntry,
    ApprovedTSAEntry,
    CaInfo,
    ConfigurationSource,
    GlobalGroup,
    ManagementService,
    Member,
    MemberClass,
    OcspInfo,
    PrivateParameters,
    SecurityServer,
    SharedParameters,
    Subsystem,
    auth_cert_hash,
)
from xroad_mn.identifiers import (
    ClientId,
    GlobalGroupId,
    MemberId,
    SecurityServerId,
    SubsystemId,
    format_colon_id,
    format_id,
    parse_id,
    validate_part,
)
from xroad_mn.management import ManagementRequest, ManagementRequestType

__all__ = ["MAX_PAYLOAD_BYTES", "MAX_SETTING_SECONDS", "RegistryStore", "RequestEffect", "RequestEffects"]

MAX_PAYLOAD_BYTES: Final = 1024 * 1024
"""Largest JSON payload (and raw request) of a management request."""
MAX_SETTING_SECONDS: Final = 2**31 - 1
"""Largest value of a ``*_seconds`` global setting (a 32-bit integer column)."""
MAX_TEXT_CHARS: Final = 1024
"""Longest name, address, URL or description."""
_HTTP_SCHEMES: Final = frozenset({"http", "https"})

_T = TypeVar("_T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _error(code: str, kind: ErrorKind, message: str, **details: DetailValue) -> XRoadError:
    return XRoadError(code, message, details=details, kind=kind)


def _conflict(message: str, **details: DetailValue) -> XRoadError:
    return _error(FaultCode.CONFLICT, ErrorKind.CONFLICT, message, **details)


def _not_found(message: str, **details: DetailValue) -> XRoadError:
    return _error(FaultCode.NOT_FOUND, ErrorKind.NOT_FOUND, message, **details)


def _invalid(message: str, **details: DetailValue) -> XRoadError:
    return _error(FaultCode.INVALID_REQUEST, ErrorKind.BAD_INPUT, message, **details)


# -- input checks (pure) ----------------------------------------------------------------------------------


def _strict_part(part: str, value: str, code: str = FaultCode.INVALID_CLIENT_IDENTIFIER) -> str:
    """A new identifier part must pass X-Road's strict identifier checks (400 when it does not)."""
    try:
        return validate_part(part, value, code=code, strict=True)
    except XRoadError as e:
        raise XRoadError(e.code, e.message, details=e.details, kind=ErrorKind.BAD_INPUT) from e


def _text(
    what: str, value: str, *, limit: int = MAX_TEXT_CHARS, empty_ok: bool = False, multiline: bool = False
) -> str:
    """A name or text: no control characters (line breaks only when ``multiline``) and no bidirectional
    formatting characters (:func:`registry.validation.check_text`)."""
    if not isinstance(value, str) or (not value.strip() and not empty_ok):
        raise _invalid(f"{what} must be a non-empty string", field=what)
    if len(value) > limit:
        raise _invalid(f"{what} is longer than {limit} characters", field=what)
    return check_text(what, value, multiline=multiline)


def _url(what: str, value: str) -> str:
    _text(what, value)
    parts = urlsplit(value)
    if parts.scheme not in _HTTP_SCHEMES or not parts.netloc:
        raise _invalid(f"{what} {value[:80]!r} is not an http(s) URL", field=what)
    return value


def _seconds(what: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_SETTING_SECONDS:
        raise _invalid(f"{what} must be a positive integer of at most {MAX_SETTING_SECONDS}", field=what)
    return value


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _cert(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def _require_ca(what: str, cert: x509.Certificate) -> None:
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    except ValueError as e:
        raise _invalid(f"{what} has malformed extensions: {e}") from e
    if not is_ca:
        raise _invalid(f"{what} {cert.subject.rfc4514_string()[:120]!r} is not a CA certificate")


def _check_ca_entry(entry: ApprovedCAEntry) -> None:
    _text("CA name", entry.name, limit=ID_PART_LENGTH)
    _text("certificate profile info class", entry.certificate_profile_info)
    check_certificate_profile(entry.certificate_profile_info)
    if entry.acme_server is not None or entry.default_csr_format is not None:
        raise _invalid("ACME settings and the default CSR format of a CA are not stored by this registry")
    for i, info in enumerate((entry.top_ca, *entry.intermediate_cas)):
        what = "top CA certificate" if i == 0 else f"intermediate CA certificate {i}"
        _require_ca(what, info.cert)
        for o in info.ocsp:
            _url(f"OCSP responder URL of the {what}", o.url)
            if o.cost_type is not None:
                raise _invalid("OCSP cost types are not stored by this registry")


def _checked_payload(payload: RequestPayload) -> RequestPayload:
    if len(json.dumps(payload, sort_keys=True)) > MAX_PAYLOAD_BYTES:
        raise _invalid(f"management request payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    return payload


def _shown(x: ClientId | SecurityServerId | GlobalGroupId) -> str:
    """An identifier in a message for people: the colon form the admin API and the CLI print."""
    if isinstance(x, GlobalGroupId):
        return f"{x.instance}:{x.group_code}"
    return format_colon_id(x)


def _provider_of(text: str | None) -> ClientId | None:
    """The stored management service provider (``format_id`` form); ``internal_error`` when malformed."""
    if text is None:
        return None
    parsed = parse_id(text, strict=False)
    if not isinstance(parsed, MemberId | SubsystemId):
        raise XRoadError(
            FaultCode.INTERNAL_ERROR, f"the stored management service provider {text[:80]!r} is no client"
        )
    return parsed


def _signing_key(row: SigningKeyRow) -> ConfigurationSigningKey:
    return ConfigurationSigningKey(
        key_id=row.key_id,
        kind=row.kind,
        certificate=_cert(row.cert_der),
        token_key_id=row.token_key_id,
        created_at=row.created_at,
        active=row.active,
    )


def _settings(row: SettingsRow) -> GlobalSettings:
    provider = _provider_of(row.management_service_provider)
    return GlobalSettings(
        instance=row.instance_identifier,
        ocsp_freshness_seconds=row.ocsp_freshness_seconds,
        timestamping_interval_seconds=row.timestamping_interval_seconds,
        configuration_expiry_seconds=row.configuration_expiry_seconds,
        management_service_provider=provider,
        management_service_address=row.management_service_address,
        management_service_cert=(
            _cert(row.management_service_cert) if row.management_service_cert is not None else None
        ),
    )


class _Ids:
    """Row ids ↔ identifiers of the members and subsystems of one instance (read in one transaction)."""

    def __init__(
        self,
        instance: str,
        classes: Sequence[MemberClassRow],
        members: Sequence[MemberRow],
        subsystems: Sequence[SubsystemRow],
    ) -> None:
        self.classes = {c.id: MemberClass(c.code, c.description) for c in classes}
        self.members = {
            m.id: MemberId(instance, self.classes[m.member_class_id].code, m.code) for m in members
        }
        self.subsystems = {s.id: self.members[s.member_id].subsystem(s.code) for s in subsystems}

    def client(self, member_id: int, subsystem_id: int | None) -> ClientId:
        return self.members[member_id] if subsystem_id is None else self.subsystems[subsystem_id]


@completing_calls
class RegistryStore:
    """Async operations on the registry database; every public method commits atomically or changes nothing.

    ``clock`` gives the current time (timezone-aware) for creation and history timestamps.
    """

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        self._clock = clock

    @asynccontextmanager
    async def _tx(self, *, consistent_read: bool = False) -> AsyncIterator[AsyncSession]:
        try:
            async with self._sessions() as session, session.begin():
                if consistent_read and self._engine.dialect.name == "postgresql":
                    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                yield session
        except IntegrityError as e:
            raise _conflict("the change conflicts with data already in the registry") from e
        except SQLAlchemyError as e:
            raise XRoadError(FaultCode.IO_ERROR, f"registry database error: {type(e).__name__}") from e

    # -- lookups inside a transaction ---------------------------------------------------------------------

    @staticmethod
    async def _settings_row(s: AsyncSession, *, lock: bool = False) -> SettingsRow:
        query = select(SettingsRow).where(SettingsRow.id == SETTINGS_ROW_ID)
        row = (await s.scalars(query.with_for_update() if lock else query)).one_or_none()
        if row is None:
            raise _conflict("the registry is not initialised: set its instance identifier first")
        return row

    async def _check_instance(self, s: AsyncSession, instance: str) -> str:
        own = (await self._settings_row(s)).instance_identifier
        if instance != own:
            raise _invalid(
                f"identifier of instance {instance!r} given to the registry of instance {own!r}",
                instance=instance,
            )
        return own

    @staticmethod
    async def _one(s: AsyncSession, query: Select[_T], missing: XRoadError) -> _T:
        row = (await s.scalars(query)).one_or_none()
        if row is None:
            raise missing
        return row

    async def _member_class_row(self, s: AsyncSession, code: str) -> MemberClassRow:
        return await self._one(
            s,
            select(MemberClassRow).where(MemberClassRow.code == code),
            _not_found(f"member class {code!r} does not exist", member_class=code),
        )

    async def _member_row(self, s: AsyncSession, member: MemberId) -> MemberRow:
        await self._check_instance(s, member.instance)
        return await self._one(
            s,
            select(MemberRow)
            .join(MemberClassRow, MemberRow.member_class_id == MemberClassRow.id)
            .where(MemberClassRow.code == member.member_class, MemberRow.code == member.member_code),
            _not_found(f"member {_shown(member)} does not exist", member=str(member)),
        )

    async def _subsystem_row(self, s: AsyncSession, sub: SubsystemId) -> SubsystemRow:
        member = await self._member_row(s, sub.member)
        return await self._one(
            s,
            select(SubsystemRow).where(
                SubsystemRow.member_id == member.id, SubsystemRow.code == sub.subsystem_code
            ),
            _not_found(f"subsystem {_shown(sub)} does not exist", subsystem=str(sub)),
        )

    async def _client_row_ids(self, s: AsyncSession, client: ClientId) -> tuple[int, int | None]:
        if isinstance(client, SubsystemId):
            sub = await self._subsystem_row(s, client)
            return sub.member_id, sub.id
        return (await self._member_row(s, client)).id, None

    async def _server_row(
        self, s: AsyncSession, server: SecurityServerId, *, lock: bool = False
    ) -> SecurityServerRow:
        owner = await self._member_row(s, server.owner)
        query = select(SecurityServerRow).where(
            SecurityServerRow.owner_id == owner.id, SecurityServerRow.server_code == server.server_code
        )
        return await self._one(
            s,
            query.with_for_update() if lock else query,
            _not_found(f"security server {_shown(server)} does not exist", server=str(server)),
        )

    async def _group_row(self, s: AsyncSession, group: GlobalGroupId) -> GlobalGroupRow:
        await self._check_instance(s, group.instance)
        return await self._one(
            s,
            select(GlobalGroupRow).where(GlobalGroupRow.code == group.group_code),
            _not_found(f"global group {_shown(group)} does not exist", group=str(group)),
        )

    async def _ids(self, s: AsyncSession) -> _Ids:
        instance = (await self._settings_row(s)).instance_identifier
        return _Ids(
            instance,
            (await s.scalars(select(MemberClassRow))).all(),
            (await s.scalars(select(MemberRow))).all(),
            (await s.scalars(select(SubsystemRow))).all(),
        )

    # -- instance and settings ----------------------------------------------------------------------------

    async def init_instance(self, instance: str) -> GlobalSettings:
        """Set the instance identifier (once); repeating it with the same value changes nothing."""
        _strict_part("xRoadInstance", instance)
        async with self._tx() as s:
            row = await s.get(SettingsRow, SETTINGS_ROW_ID)
            if row is not None:
                if row.instance_identifier != instance:
                    raise _conflict(
                        f"the registry already belongs to instance {row.instance_identifier!r}",
                        instance=row.instance_identifier,
                    )
                return _settings(row)
            row = SettingsRow(
                id=SETTINGS_ROW_ID,
                instance_identifier=instance,
                ocsp_freshness_seconds=3600,
                timestamping_interval_seconds=60,
                configuration_expiry_seconds=600,
            )
            s.add(row)
            await s.flush()
            return _settings(row)

    async def get_settings(self) -> GlobalSettings:
        async with self._tx() as s:
            return _settings(await self._settings_row(s))

    async def update_settings(
        self,
        *,
        ocsp_freshness_seconds: int | None = None,
        timestamping_interval_seconds: int | None = None,
        configuration_expiry_seconds: int | None = None,
        management_service_provider: SubsystemId | None = None,
        management_service_address: str | None = None,
        management_service_cert: x509.Certificate | None = None,
    ) -> GlobalSettings:
        """Change the given settings (``None`` leaves a setting as it is).

        The management service provider must be a registered subsystem of this instance.
        """
        async with self._tx() as s:
            row = await self._settings_row(s, lock=True)
            if ocsp_freshness_seconds is not None:
                row.ocsp_freshness_seconds = _seconds("ocspFreshnessSeconds", ocsp_freshness_seconds)
            if timestamping_interval_seconds is not None:
                row.timestamping_interval_seconds = _seconds(
                    "timeStampingIntervalSeconds", timestamping_interval_seconds
                )
            if configuration_expiry_seconds is not None:
                row.configuration_expiry_seconds = _seconds(
                    "configurationExpirySeconds", configuration_expiry_seconds
                )
            if management_service_provider is not None:
                if not isinstance(management_service_provider, SubsystemId):
                    raise _invalid("the management service provider must be a subsystem")
                await self._subsystem_row(s, management_service_provider)
                row.management_service_provider = format_id(management_service_provider)
            if management_service_address is not None:
                row.management_service_address = _url(
                    "management service address", management_service_address
                )
            if management_service_cert is not None:
                row.management_service_cert = _der(management_service_cert)
            await s.flush()
            return _settings(row)

    # -- member classes, members, subsystems --------------------------------------------------------------

    async def add_member_class(self, code: str, description: str) -> MemberClass:
        _strict_part("memberClass", code)
        _text("member class description", description)
        async with self._tx() as s:
            await self._settings_row(s)
            if (await s.scalars(select(MemberClassRow).where(MemberClassRow.code == code))).first():
                raise _conflict(f"member class {code!r} already exists", member_class=code)
            s.add(MemberClassRow(code=code, description=description))
            await s.flush()
            return MemberClass(code, description)

    async def update_member_class(self, code: str, description: str) -> MemberClass:
        _text("member class description", description)
        async with self._tx() as s:
            row = await self._member_class_row(s, code)
            row.description = description
            return MemberClass(code, description)

    async def list_member_classes(self) -> tuple[MemberClass, ...]:
        async with self._tx() as s:
            rows = (await s.scalars(select(MemberClassRow).order_by(MemberClassRow.code))).all()
            return tuple(MemberClass(r.code, r.description) for r in rows)

    async def add_member(self, member: MemberId, name: str) -> Member:
        _strict_part("memberCode", member.member_code)
        _text("member name", name)
        async with self._tx() as s:
            await self._check_instance(s, member.instance)
            mc = await self._member_class_row(s, member.member_class)
            existing = select(MemberRow).where(
                MemberRow.member_class_id == mc.id, MemberRow.code == member.member_code
            )
            if (await s.scalars(existing)).first() is not None:
                raise _conflict(f"member {_shown(member)} already exists", member=str(member))
            s.add(MemberRow(member_class_id=mc.id, code=member.member_code, name=name))
            await s.flush()
            return Member(MemberClass(mc.code, mc.description), member.member_code, name)

    async def rename_member(self, member: MemberId, name: str) -> Member:
        _text("member name", name)
        async with self._tx() as s:
            row = await self._member_row(s, member)
            row.name = name
            await s.flush()
            return await self._member(s, member)

    async def get_member(self, member: MemberId) -> Member:
        async with self._tx() as s:
            return await self._get_member(s, member)

    async def _get_member(self, s: AsyncSession, member: MemberId) -> Member:
        await self._member_row(s, member)
        return await self._member(s, member)

    async def list_members(self) -> tuple[Member, ...]:
        async with self._tx() as s:
            return await self._members(s)

    async def _member(self, s: AsyncSession, member: MemberId) -> Member:
        return next(m for m in await self._members(s) if m.id(member.instance) == member)

    async def _members(self, s: AsyncSession) -> tuple[Member, ...]:
        classes = {
            c.id: MemberClass(c.code, c.description) for c in (await s.scalars(select(MemberClassRow)))
        }
        subsystems: dict[int, list[Subsystem]] = defaultdict(list)
        for sub in await s.scalars(select(SubsystemRow).order_by(SubsystemRow.code)):
            subsystems[sub.member_id].append(Subsystem(sub.code, sub.name))
        members = [
            Member(classes[m.member_class_id], m.code, m.name, tuple(subsystems[m.id]))
            for m in await s.scalars(select(MemberRow))
        ]
        return tuple(sorted(members, key=lambda m: (m.member_class.code, m.member_code)))

    async def add_subsystem(self, subsystem: SubsystemId, name: str | None = None) -> Subsystem:
        async with self._tx() as s:
            return await self._add_subsystem(s, subsystem, name)

    async def _add_subsystem(self, s: AsyncSession, subsystem: SubsystemId, name: str | None) -> Subsystem:
        _strict_part("subsystemCode", subsystem.subsystem_code)
        if name is not None:
            _text("subsystem name", name)
        member = await self._member_row(s, subsystem.member)
        existing = select(SubsystemRow).where(
            SubsystemRow.member_id == member.id, SubsystemRow.code == subsystem.subsystem_code
        )
        if (await s.scalars(existing)).first() is not None:
            raise _conflict(f"subsystem {_shown(subsystem)} already exists", subsystem=str(subsystem))
        s.add(SubsystemRow(member_id=member.id, code=subsystem.subsystem_code, name=name))
        await s.flush()
        return Subsystem(subsystem.subsystem_code, name)

    async def rename_subsystem(self, subsystem: SubsystemId, name: str | None) -> Subsystem:
        """Set (or with ``None`` clear) a subsystem's name, as an approved ``clientRename`` does."""
        async with self._tx() as s:
            return await self._rename_subsystem(s, subsystem, name)

    async def _rename_subsystem(self, s: AsyncSession, subsystem: SubsystemId, name: str | None) -> Subsystem:
        if name is not None:
            _text("subsystem name", name)
        row = await self._subsystem_row(s, subsystem)
        row.name = name
        await s.flush()
        return Subsystem(subsystem.subsystem_code, name)

    # -- security servers ---------------------------------------------------------------------------------

    async def add_security_server(
        self, server: SecurityServerId, address: str | None = None
    ) -> SecurityServer:
        async with self._tx() as s:
            return await self._add_server(s, server, address)

    async def _add_server(
        self, s: AsyncSession, server: SecurityServerId, address: str | None
    ) -> SecurityServer:
        _strict_part("serverCode", server.server_code, FaultCode.INVALID_SECURITY_SERVER)
        if address is not None:
            check_server_address(address)
        owner = await self._member_row(s, server.owner)
        existing = select(SecurityServerRow).where(
            SecurityServerRow.owner_id == owner.id, SecurityServerRow.server_code == server.server_code
        )
        if (await s.scalars(existing)).first() is not None:
            raise _conflict(f"security server {_shown(server)} already exists", server=str(server))
        s.add(SecurityServerRow(owner_id=owner.id, server_code=server.server_code, address=address))
        await s.flush()
        return SecurityServer(server.owner, server.server_code, address)

    async def get_security_server(self, server: SecurityServerId) -> SecurityServer:
        """The server as global configuration lists it: ``clients`` are its enabled clients only."""
        async with self._tx() as s:
            return await self._get_server(s, server)

    async def _get_server(self, s: AsyncSession, server: SecurityServerId) -> SecurityServer:
        row = await self._server_row(s, server)
        (found,) = await self._servers(s, row.id)
        return found

    async def list_security_servers(self) -> tuple[SecurityServer, ...]:
        async with self._tx() as s:
            return await self._servers(s)

    async def _servers(self, s: AsyncSession, only: int | None = None) -> tuple[SecurityServer, ...]:
        ids = await self._ids(s)
        hashes: dict[int, list[bytes]] = defaultdict(list)
        for cert in await s.scalars(select(AuthCertRow).order_by(AuthCertRow.id)):
            hashes[cert.server_id].append(cert.cert_hash)
        clients: dict[int, list[ClientId]] = defaultdict(list)
        for c in await s.scalars(select(SecurityServerClientRow).where(SecurityServerClientRow.enabled)):
            clients[c.server_id].append(ids.client(c.member_id, c.subsystem_id))
        query = select(SecurityServerRow)
        if only is not None:
            query = query.where(SecurityServerRow.id == only)
        servers = [
            SecurityServer(
                owner=ids.members[r.owner_id],
                server_code=r.server_code,
                address=r.address,
                auth_cert_hashes=tuple(hashes[r.id]),
                clients=tuple(sorted(clients[r.id])),
                in_maintenance_mode=r.in_maintenance,
                maintenance_message=r.maintenance_message if r.in_maintenance else None,
            )
            for r in await s.scalars(query)
        ]
        return tuple(sorted(servers, key=lambda x: (x.owner, x.server_code)))

    async def set_server_address(self, server: SecurityServerId, address: str | None) -> SecurityServer:
        """Change a server's address (an approved ``addressChange``)."""
        async with self._tx() as s:
            return await self._set_server_address(s, server, address)

    async def _set_server_address(
        self, s: AsyncSession, server: SecurityServerId, address: str | None
    ) -> SecurityServer:
        if address is not None:
            check_server_address(address)
        row = await self._server_row(s, server, lock=True)
        row.address = address
        await s.flush()
        (found,) = await self._servers(s, row.id)
        return found

    async def set_maintenance_mode(
        self, server: SecurityServerId, enabled: bool, message: str | None = None
    ) -> SecurityServer:
        """Put a server into maintenance mode with an optional message, or take it out."""
        async with self._tx() as s:
            return await self._set_maintenance_mode(s, server, enabled, message)

    async def _set_maintenance_mode(
        self, s: AsyncSession, server: SecurityServerId, enabled: bool, message: str | None
    ) -> SecurityServer:
        if message is not None:
            _text("maintenance message", message, multiline=True)
        row = await self._server_row(s, server, lock=True)
        row.in_maintenance = enabled
        row.maintenance_message = message if enabled else None
        await s.flush()
        (found,) = await self._servers(s, row.id)
        return found

    async def change_server_owner(self, server: SecurityServerId, new_owner: MemberId) -> SecurityServer:
        """Give a server to another member (an approved ``ownerChange``); the new owner must be its client."""
        async with self._tx() as s:
            return await self._change_server_owner(s, server, new_owner)

    async def _change_server_owner(
        self, s: AsyncSession, server: SecurityServerId, new_owner: MemberId
    ) -> SecurityServer:
        row = await self._server_row(s, server, lock=True)
        owner = await self._member_row(s, new_owner)
        if await self._server_client(s, row.id, owner.id, None) is None:
            raise _conflict(f"{_shown(new_owner)} is not a client of {_shown(server)}", member=str(new_owner))
        clash = select(SecurityServerRow).where(
            SecurityServerRow.owner_id == owner.id, SecurityServerRow.server_code == server.server_code
        )
        if (await s.scalars(clash)).first() is not None:
            raise _conflict(f"{_shown(new_owner)} already owns a server {server.server_code!r}")
        row.owner_id = owner.id
        await s.flush()
        (found,) = await self._servers(s, row.id)
        return found

    async def add_auth_cert(self, server: SecurityServerId, cert: x509.Certificate) -> bytes:
        """Register an authentication certificate on ``server``; returns its SHA-256 hash."""
        async with self._tx() as s:
            return await self._add_auth_cert(s, server, cert)

    async def _add_auth_cert(
        self, s: AsyncSession, server: SecurityServerId, cert: x509.Certificate
    ) -> bytes:
        der = _der(cert)
        digest = auth_cert_hash(cert)
        row = await self._server_row(s, server, lock=True)
        if (await s.scalars(select(AuthCertRow).where(AuthCertRow.cert_hash == digest))).first():
            raise _conflict("the authentication certificate is already registered", hash=digest.hex())
        s.add(AuthCertRow(server_id=row.id, cert_der=der, cert_hash=digest))
        await s.flush()
        return digest

    async def remove_auth_cert(self, server: SecurityServerId, cert_hash: bytes) -> None:
        async with self._tx() as s:
            await self._remove_auth_cert(s, server, cert_hash)

    async def _remove_auth_cert(self, s: AsyncSession, server: SecurityServerId, cert_hash: bytes) -> None:
        row = await self._server_row(s, server, lock=True)
        result = await s.execute(
            delete(AuthCertRow).where(AuthCertRow.server_id == row.id, AuthCertRow.cert_hash == cert_hash)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise _not_found(f"{_shown(server)} has no authentication certificate {cert_hash.hex()}")

    async def list_auth_certs(self, server: SecurityServerId) -> tuple[x509.Certificate, ...]:
        async with self._tx() as s:
            row = await self._server_row(s, server)
            query = select(AuthCertRow).where(AuthCertRow.server_id == row.id).order_by(AuthCertRow.id)
            return tuple(_cert(c.cert_der) for c in await s.scalars(query))

    async def register_client(self, server: SecurityServerId, client: ClientId) -> SecurityServer:
        """Register ``client`` (enabled) on ``server``; 409 when it is registered already, even disabled."""
        async with self._tx() as s:
            return await self._register_client(s, server, client)

    async def _register_client(
        self, s: AsyncSession, server: SecurityServerId, client: ClientId
    ) -> SecurityServer:
        row = await self._server_row(s, server, lock=True)
        member_id, subsystem_id = await self._client_row_ids(s, client)
        existing = await self._server_client(s, row.id, member_id, subsystem_id)
        if existing is not None:
            state = "" if existing.enabled else " (disabled)"
            raise _conflict(
                f"{_shown(client)} is already a client of {_shown(server)}{state}", client=str(client)
            )
        s.add(
            SecurityServerClientRow(
                server_id=row.id, member_id=member_id, subsystem_id=subsystem_id, enabled=True
            )
        )
        await s.flush()
        (found,) = await self._servers(s, row.id)
        return found

    async def unregister_client(self, server: SecurityServerId, client: ClientId) -> SecurityServer:
        """Remove ``client`` (enabled or disabled) from ``server``; the owner member stays (409)."""
        async with self._tx() as s:
            return await self._unregister_client(s, server, client)

    async def _unregister_client(
        self, s: AsyncSession, server: SecurityServerId, client: ClientId
    ) -> SecurityServer:
        row, found_row = await self._server_client_row(s, server, client)
        if found_row.subsystem_id is None and found_row.member_id == row.owner_id:
            raise _conflict(f"the owner {_shown(client)} cannot be removed from its own server")
        await s.delete(found_row)
        await s.flush()
        (found,) = await self._servers(s, row.id)
        return found

    async def set_client_enabled(
        self, server: SecurityServerId, client: ClientId, enabled: bool
    ) -> SecurityServer:
        """Disable (an approved ``clientDisable``) or enable again (``clientEnable``) a registered client.

        Follows X-Road's central server: a disabled client keeps its registration (``register_client``
        refuses it, ``unregister_client`` removes it) and global configuration leaves it out of the server's
        clients (``SharedParametersLoader`` lists enabled server clients only), so security servers stop
        serving it until it is enabled. 404 when it is not a client of ``server``, 409 when it already is in
        that state or is the owner member (the owner cannot be disabled on its own server).
        """
        async with self._tx() as s:
            return await self._set_client_enabled(s, server, client, enabled)

    async def _set_client_enabled(
        self, s: AsyncSession, server: SecurityServerId, client: ClientId, enabled: bool
    ) -> SecurityServer:
        row, found_row = await self._server_client_row(s, server, client)
        if found_row.enabled == enabled:
            state = "enabled" if enabled else "disabled"
            raise _conflict(f"{_shown(client)} is already {state} on {_shown(server)}", client=str(client))
        if not enabled and found_row.subsystem_id is None and found_row.member_id == row.owner_id:
            raise _conflict(f"the owner {_shown(client)} cannot be disabled on its own server")
        found_row.enabled = enabled
        await s.flush()
        (found,) = await self._servers(s, row.id)
        return found

    async def list_server_clients(self, server: SecurityServerId) -> tuple[ServerClient, ...]:
        """Every client registered on ``server``, enabled and disabled, sorted by identifier."""
        async with self._tx() as s:
            return await self._list_server_clients(s, server)

    async def _list_server_clients(
        self, s: AsyncSession, server: SecurityServerId
    ) -> tuple[ServerClient, ...]:
        row = await self._server_row(s, server)
        ids = await self._ids(s)
        query = select(SecurityServerClientRow).where(SecurityServerClientRow.server_id == row.id)
        found = [
            ServerClient(ids.client(c.member_id, c.subsystem_id), c.enabled) for c in await s.scalars(query)
        ]
        return tuple(sorted(found, key=lambda c: c.client))

    async def _server_client_row(
        self, s: AsyncSession, server: SecurityServerId, client: ClientId
    ) -> tuple[SecurityServerRow, SecurityServerClientRow]:
        """The locked server row and ``client``'s registration on it (404 when it is not its client)."""
        row = await self._server_row(s, server, lock=True)
        member_id, subsystem_id = await self._client_row_ids(s, client)
        found_row = await self._server_client(s, row.id, member_id, subsystem_id)
        if found_row is None:
            raise _not_found(f"{_shown(client)} is not a client of {_shown(server)}", client=str(client))
        return row, found_row

    @staticmethod
    async def _server_client(
        s: AsyncSession, server_id: int, member_id: int, subsystem_id: int | None
    ) -> SecurityServerClientRow | None:
        query = select(SecurityServerClientRow).where(
            SecurityServerClientRow.server_id == server_id, SecurityServerClientRow.member_id == member_id
        )
        query = query.where(
            SecurityServerClientRow.subsystem_id.is_(None)
            if subsystem_id is None
            else SecurityServerClientRow.subsystem_id == subsystem_id
        )
        return (await s.scalars(query)).first()

    # -- global groups ------------------------------------------------------------------------------------

    async def add_global_group(self, group: GlobalGroupId, description: str) -> GlobalGroup:
        _strict_part("groupCode", group.group_code, FaultCode.INVALID_IDENTIFIER)
        _text("global group description", description)
        async with self._tx() as s:
            await self._check_instance(s, group.instance)
            if (
                await s.scalars(select(GlobalGroupRow).where(GlobalGroupRow.code == group.group_code))
            ).first():
                raise _conflict(f"global group {_shown(group)} already exists", group=str(group))
            s.add(GlobalGroupRow(code=group.group_code, description=description))
            await s.flush()
            return GlobalGroup(group.group_code, description)

    async def add_group_member(self, group: GlobalGroupId, client: ClientId) -> GlobalGroup:
        async with self._tx() as s:
            return await self._add_group_member(s, group, client)

    async def _add_group_member(self, s: AsyncSession, group: GlobalGroupId, client: ClientId) -> GlobalGroup:
        row = await self._group_row(s, group)
        member_id, subsystem_id = await self._client_row_ids(s, client)
        if await self._group_member(s, row.id, member_id, subsystem_id) is not None:
            raise _conflict(f"{_shown(client)} is already a member of {_shown(group)}", client=str(client))
        s.add(GlobalGroupMemberRow(group_id=row.id, member_id=member_id, subsystem_id=subsystem_id))
        await s.flush()
        (found,) = await self._groups(s, row.id)
        return found

    async def remove_group_member(self, group: GlobalGroupId, client: ClientId) -> GlobalGroup:
        async with self._tx() as s:
            row = await self._group_row(s, group)
            member_id, subsystem_id = await self._client_row_ids(s, client)
            found_row = await self._group_member(s, row.id, member_id, subsystem_id)
            if found_row is None:
                raise _not_found(f"{_shown(client)} is not a member of {_shown(group)}", client=str(client))
            await s.delete(found_row)
            await s.flush()
            (found,) = await self._groups(s, row.id)
            return found

    async def get_global_group(self, group: GlobalGroupId) -> GlobalGroup:
        async with self._tx() as s:
            return await self._get_global_group(s, group)

    async def _get_global_group(self, s: AsyncSession, group: GlobalGroupId) -> GlobalGroup:
        row = await self._group_row(s, group)
        (found,) = await self._groups(s, row.id)
        return found

    async def list_global_groups(self) -> tuple[GlobalGroup, ...]:
        async with self._tx() as s:
            return await self._groups(s)

    @staticmethod
    async def _group_member(
        s: AsyncSession, group_id: int, member_id: int, subsystem_id: int | None
    ) -> GlobalGroupMemberRow | None:
        query = select(GlobalGroupMemberRow).where(
            GlobalGroupMemberRow.group_id == group_id, GlobalGroupMemberRow.member_id == member_id
        )
        query = query.where(
            GlobalGroupMemberRow.subsystem_id.is_(None)
            if subsystem_id is None
            else GlobalGroupMemberRow.subsystem_id == subsystem_id
        )
        return (await s.scalars(query)).first()

    async def _groups(self, s: AsyncSession, only: int | None = None) -> tuple[GlobalGroup, ...]:
        ids = await self._ids(s)
        members: dict[int, list[ClientId]] = defaultdict(list)
        for m in await s.scalars(select(GlobalGroupMemberRow)):
            members[m.group_id].append(ids.client(m.member_id, m.subsystem_id))
        query = select(GlobalGroupRow).order_by(GlobalGroupRow.code)
        if only is not None:
            query = query.where(GlobalGroupRow.id == only)
        return tuple(
            GlobalGroup(g.code, g.description, tuple(sorted(members[g.id]))) for g in await s.scalars(query)
        )

    # -- approved CAs and TSAs ----------------------------------------------------------------------------

    async def add_ca(self, entry: ApprovedCAEntry) -> ApprovedCAEntry:
        """Add an approved CA with its intermediate CAs and each CA certificate's OCSP responders.

        ``acme_server``, ``default_csr_format`` and OCSP cost types are not kept and are refused (400).
        """
        _check_ca_entry(entry)
        async with self._tx() as s:
            await self._settings_row(s)
            if (await s.scalars(select(ApprovedCaRow).where(ApprovedCaRow.name == entry.name))).first():
                raise _conflict(f"approved CA {entry.name!r} already exists", name=entry.name)
            same = await s.scalars(
                select(ApprovedCaRow.name)
                .join(CaCertRow, CaCertRow.ca_id == ApprovedCaRow.id)
                .where(CaCertRow.is_top, CaCertRow.cert_der == _der(entry.top_ca.cert))
            )
            if (other := same.first()) is not None:
                raise _conflict(f"approved CA {other!r} already has this CA certificate", name=other)
            ca = ApprovedCaRow(
                name=entry.name,
                certificate_profile_info=entry.certificate_profile_info,
                authentication_only=bool(entry.authentication_only),
            )
            s.add(ca)
            await s.flush()
            for position, info in enumerate((entry.top_ca, *entry.intermediate_cas)):
                cert_row = CaCertRow(
                    ca_id=ca.id, is_top=position == 0, position=position, cert_der=_der(info.cert)
                )
                s.add(cert_row)
                await s.flush()
                for i, o in enumerate(info.ocsp):
                    s.add(
                        OcspResponderRow(
                            ca_cert_id=cert_row.id,
                            position=i,
                            url=o.url,
                            cert_der=_der(o.cert) if o.cert is not None else None,
                        )
                    )
            await s.flush()
            (found,) = await self._cas(s, ca.id)
            return found

    async def get_ca(self, name: str) -> ApprovedCAEntry:
        async with self._tx() as s:
            row = await self._one(
                s,
                select(ApprovedCaRow).where(ApprovedCaRow.name == name),
                _not_found(f"approved CA {name!r} does not exist", name=name),
            )
            (found,) = await self._cas(s, row.id)
            return found

    async def list_cas(self) -> tuple[ApprovedCAEntry, ...]:
        async with self._tx() as s:
            return await self._cas(s)

    async def delete_ca(self, name: str) -> None:
        async with self._tx() as s:
            result = await s.execute(delete(ApprovedCaRow).where(ApprovedCaRow.name == name))
            if getattr(result, "rowcount", 0) != 1:
                raise _not_found(f"approved CA {name!r} does not exist", name=name)

    async def _cas(self, s: AsyncSession, only: int | None = None) -> tuple[ApprovedCAEntry, ...]:
        ocsp: dict[int, list[OcspInfo]] = defaultdict(list)
        responders = select(OcspResponderRow).order_by(OcspResponderRow.ca_cert_id, OcspResponderRow.position)
        for o in await s.scalars(responders):
            ocsp[o.ca_cert_id].append(OcspInfo(o.url, _cert(o.cert_der) if o.cert_der is not None else None))
        certs: dict[int, list[CaInfo]] = defaultdict(list)
        for c in await s.scalars(select(CaCertRow).order_by(CaCertRow.ca_id, CaCertRow.position)):
            certs[c.ca_id].append(CaInfo(_cert(c.cert_der), tuple(ocsp[c.id])))
        query = select(ApprovedCaRow).order_by(ApprovedCaRow.name)
        if only is not None:
            query = query.where(ApprovedCaRow.id == only)
        return tuple(
            ApprovedCAEntry(
                name=ca.name,
                top_ca=certs[ca.id][0],
                certificate_profile_info=ca.certificate_profile_info,
                intermediate_cas=tuple(certs[ca.id][1:]),
                authentication_only=ca.authentication_only,
            )
            for ca in await s.scalars(query)
        )

    async def add_tsa(self, entry: ApprovedTSAEntry) -> ApprovedTSAEntry:
        """Add an approved time-stamping authority (a ``cost_type`` is not kept and is refused)."""
        _text("TSA name", entry.name, limit=ID_PART_LENGTH)
        _url("TSA URL", entry.url)
        if entry.cost_type is not None:
            raise _invalid("TSA cost types are not stored by this registry")
        async with self._tx() as s:
            await self._settings_row(s)
            if (await s.scalars(select(ApprovedTsaRow).where(ApprovedTsaRow.name == entry.name))).first():
                raise _conflict(f"approved TSA {entry.name!r} already exists", name=entry.name)
            s.add(ApprovedTsaRow(name=entry.name, url=entry.url, cert_der=_der(entry.cert)))
            await s.flush()
            return ApprovedTSAEntry(entry.name, entry.url, entry.cert)

    async def list_tsas(self) -> tuple[ApprovedTSAEntry, ...]:
        async with self._tx() as s:
            return await self._tsas(s)

    async def delete_tsa(self, name: str) -> None:
        async with self._tx() as s:
            result = await s.execute(delete(ApprovedTsaRow).where(ApprovedTsaRow.name == name))
            if getattr(result, "rowcount", 0) != 1:
                raise _not_found(f"approved TSA {name!r} does not exist", name=name)

    @staticmethod
    async def _tsas(s: AsyncSession) -> tuple[ApprovedTSAEntry, ...]:
        rows = await s.scalars(select(ApprovedTsaRow).order_by(ApprovedTsaRow.name))
        return tuple(ApprovedTSAEntry(t.name, t.url, _cert(t.cert_der)) for t in rows)

    # -- configuration signing keys -----------------------------------------------------------------------

    async def add_signing_key(
        self, kind: KeyKind, key_id: str, token_key_id: str, certificate: x509.Certificate
    ) -> ConfigurationSigningKey:
        """Add a signing key of ``kind`` (its key ``token_key_id`` in the registry's token, and its
        certificate): active when it is the first of its kind, else pending.

        A pending key is distributed in the configuration sources (rotation phase one) until
        :meth:`activate_signing_key` makes it the signing key (phase two).
        """
        _text("signing key id", key_id, limit=ID_PART_LENGTH)
        _text("token key id", token_key_id, limit=ID_PART_LENGTH)
        async with self._tx() as s:
            await self._settings_row(s)
            if (await s.scalars(select(SigningKeyRow).where(SigningKeyRow.key_id == key_id))).first():
                raise _conflict(f"signing key {key_id!r} already exists", key_id=key_id)
            active = (
                await s.scalars(select(SigningKeyRow).where(SigningKeyRow.kind == kind, SigningKeyRow.active))
            ).first()
            row = SigningKeyRow(
                kind=kind,
                key_id=key_id,
                token_key_id=token_key_id,
                cert_der=_der(certificate),
                created_at=self._clock(),
                active=active is None,
            )
            s.add(row)
            await s.flush()
            return _signing_key(row)

    async def activate_signing_key(self, key_id: str) -> ConfigurationSigningKey:
        """Make a pending key the signing key of its kind and delete the key it replaces."""
        async with self._tx() as s:
            row = await self._one(
                s,
                select(SigningKeyRow).where(SigningKeyRow.key_id == key_id).with_for_update(),
                _not_found(f"signing key {key_id!r} does not exist", key_id=key_id),
            )
            if not row.active:
                await s.execute(
                    delete(SigningKeyRow).where(SigningKeyRow.kind == row.kind, SigningKeyRow.active)
                )
                await s.execute(update(SigningKeyRow).where(SigningKeyRow.id == row.id).values(active=True))
                await s.refresh(row)
            return _signing_key(row)

    async def delete_signing_key(self, key_id: str) -> None:
        """Delete a pending key; the active key is replaced only by activating another (409)."""
        async with self._tx() as s:
            row = await self._one(
                s,
                select(SigningKeyRow).where(SigningKeyRow.key_id == key_id).with_for_update(),
                _not_found(f"signing key {key_id!r} does not exist", key_id=key_id),
            )
            if row.active:
                raise _conflict(f"signing key {key_id!r} is active: activate another key to replace it")
            await s.delete(row)

    async def list_signing_keys(self, kind: KeyKind | None = None) -> tuple[ConfigurationSigningKey, ...]:
        """Keys of ``kind`` (or all), the active key of each kind first, then pending keys oldest first."""
        async with self._tx() as s:
            return await self._signing_keys(s, kind)

    @staticmethod
    async def _signing_keys(
        s: AsyncSession, kind: KeyKind | None = None
    ) -> tuple[ConfigurationSigningKey, ...]:
        query = select(SigningKeyRow).order_by(
            SigningKeyRow.kind, SigningKeyRow.active.desc(), SigningKeyRow.created_at, SigningKeyRow.id
        )
        if kind is not None:
            query = query.where(SigningKeyRow.kind == kind)
        return tuple(_signing_key(r) for r in await s.scalars(query))

    # -- configuration anchors ----------------------------------------------------------------------------

    async def anchor_generated_at(self, kind: KeyKind, sources_sha256: str, now: datetime) -> datetime:
        """The ``generatedAt`` of the ``kind`` anchor whose content (all but ``generatedAt``) has the digest
        ``sources_sha256``: the time its sources last changed. The stored time while the digest is the
        stored one; else ``now``, stored with the new digest."""
        async with self._tx() as s:
            await self._settings_row(s, lock=True)  # one export at a time decides a change
            row = await s.get(AnchorSourcesRow, kind.value)
            if row is not None and row.sources_sha256 == sources_sha256:
                return row.generated_at
            if row is None:
                s.add(AnchorSourcesRow(kind=kind.value, sources_sha256=sources_sha256, generated_at=now))
            else:
                row.sources_sha256, row.generated_at = sources_sha256, now
            await s.flush()
            return now

    # -- management requests ------------------------------------------------------------------------------

    async def submit_request(
        self,
        request: ManagementRequest,
        *,
        raw: bytes | None = None,
        user: str | None = None,
        comment: str | None = None,
    ) -> ManagementRequestRecord:
        """Record ``request`` in state ``submitted`` (its server must be of the registry's instance)."""
        columns = request_columns(request)
        payload = _checked_payload(columns.payload)
        if raw is not None and len(raw) > MAX_PAYLOAD_BYTES:
            raise _invalid(f"raw management request is larger than {MAX_PAYLOAD_BYTES} bytes")
        if user is not None:
            _text("user", user, limit=ID_PART_LENGTH)
        now = self._clock()
        async with self._tx() as s:
            await self._check_instance(s, request.server.instance)
            row = ManagementRequestRow(
                type=columns.type,
                state=RequestState.SUBMITTED,
                security_server=columns.security_server,
                client=columns.client,
                payload={**payload},
                raw=raw,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            await s.flush()
            s.add(
                ManagementRequestEventRow(
                    request_id=row.id,
                    at=now,
                    from_state=None,
                    to_state=RequestState.SUBMITTED,
                    user=user,
                    comment=comment,
                )
            )
            await s.flush()
            (found,) = await self._requests(s, [row])
            return found

    async def get_request(self, request_id: int) -> ManagementRequestRecord:
        async with self._tx() as s:
            row = await self._request_row(s, request_id)
            (found,) = await self._requests(s, [row])
            return found

    async def list_requests(
        self,
        *,
        state: RequestState | None = None,
        type: ManagementRequestType | None = None,
        security_server: SecurityServerId | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[ManagementRequestRecord, ...]:
        """Requests (with their history), oldest first, filtered by state, type and security server; at
        most ``limit`` of them after skipping ``offset``. Their ``raw`` bytes are not loaded (``None``):
        :meth:`get_request` returns one request with them."""
        query = (
            select(ManagementRequestRow)
            .options(defer(ManagementRequestRow.raw))
            .order_by(ManagementRequestRow.id)
            .offset(max(0, offset))
        )
        if limit is not None:
            query = query.limit(max(0, limit))
        if state is not None:
            query = query.where(ManagementRequestRow.state == state)
        if type is not None:
            query = query.where(ManagementRequestRow.type == type)
        if security_server is not None:
            query = query.where(ManagementRequestRow.security_server == format_id(security_server))
        async with self._tx() as s:
            return await self._requests(s, (await s.scalars(query)).all(), with_raw=False)

    async def transition_request(
        self, request_id: int, action: RequestAction, *, user: str | None = None, comment: str | None = None
    ) -> ManagementRequestRecord:
        """Approve, reject or revoke a submitted request, recording who did it (409 when not submitted)."""
        if user is not None:
            _text("user", user, limit=ID_PART_LENGTH)
        async with self._tx() as s:
            row = await self._request_row(s, request_id, lock=True)
            return await self._transition(s, row, transition_target(row.state, action), user, comment)

    async def apply_request(
        self,
        request_id: int,
        action: RequestAction,
        *,
        effect: RequestEffect,
        user: str | None = None,
        comment: str | None = None,
    ) -> ManagementRequestRecord:
        """Run a request's ``effect`` and its transition by ``action`` in one transaction.

        The request row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's transactions
        are ``BEGIN IMMEDIATE``), so a concurrent call for the same request waits, then finds it moved on
        and fails with 409 without running its effect. ``effect`` receives a :class:`RequestEffects` bound
        to this transaction and the request as locked (409 before ``effect`` runs unless ``action`` applies
        to its state). ``effect`` must read and change the registry only through that object: calling
        this store from inside it would start a second transaction (on SQLite one that waits for this
        one). When ``effect`` raises, none of its changes are kept and the request keeps its state.
        """
        if user is not None:
            _text("user", user, limit=ID_PART_LENGTH)
        async with self._tx() as s:
            row = await self._request_row(s, request_id, lock=True)
            target = transition_target(row.state, action)
            (request,) = await self._requests(s, [row])
            await effect(RequestEffects(self, s), request)
            return await self._transition(s, row, target, user, comment)

    async def _transition(
        self,
        s: AsyncSession,
        row: ManagementRequestRow,
        target: RequestState,
        user: str | None,
        comment: str | None,
    ) -> ManagementRequestRecord:
        now = self._clock()
        s.add(
            ManagementRequestEventRow(
                request_id=row.id, at=now, from_state=row.state, to_state=target, user=user, comment=comment
            )
        )
        row.state = target
        row.updated_at = now
        await s.flush()
        (found,) = await self._requests(s, [row])
        return found

    async def _request_row(
        self, s: AsyncSession, request_id: int, *, lock: bool = False
    ) -> ManagementRequestRow:
        query = select(ManagementRequestRow).where(ManagementRequestRow.id == request_id)
        return await self._one(
            s,
            query.with_for_update() if lock else query,
            _not_found(f"management request {request_id} does not exist", request_id=request_id),
        )

    @staticmethod
    async def _requests(
        s: AsyncSession, rows: Sequence[ManagementRequestRow], *, with_raw: bool = True
    ) -> tuple[ManagementRequestRecord, ...]:
        history: dict[int, list[RequestEvent]] = defaultdict(list)
        if rows:
            events = (
                select(ManagementRequestEventRow)
                .where(ManagementRequestEventRow.request_id.in_([r.id for r in rows]))
                .order_by(ManagementRequestEventRow.id)
            )
            for e in await s.scalars(events):
                history[e.request_id].append(RequestEvent(e.at, e.from_state, e.to_state, e.user, e.comment))
        return tuple(
            ManagementRequestRecord(
                id=r.id,
                request=request_from_row(r),
                state=r.state,
                raw=r.raw if with_raw else None,
                created_at=r.created_at,
                updated_at=r.updated_at,
                history=tuple(history[r.id]),
            )
            for r in rows
        )

    # -- snapshot -----------------------------------------------------------------------------------------

    async def snapshot(self, source_addresses: Sequence[str]) -> RegistrySnapshot:
        """Everything the next global configuration holds, read consistently in one transaction.

        Each address in ``source_addresses`` becomes a configuration source whose verification
        certificates are those of the active and pending signing keys (active first), so security servers
        learn a new key before it signs. The management service provider and address must be set (409).
        """
        if not source_addresses:
            raise _invalid("global configuration needs at least one source address")
        for address in source_addresses:
            _text("source address", address)
        async with self._tx(consistent_read=True) as s:
            settings = _settings(await self._settings_row(s))
            keys = await self._signing_keys(s)
            members = await self._members(s)
            servers = await self._servers(s)
            groups = await self._groups(s)
            cas = await self._cas(s)
            tsas = await self._tsas(s)
            classes = tuple(
                MemberClass(c.code, c.description)
                for c in await s.scalars(select(MemberClassRow).order_by(MemberClassRow.code))
            )
        provider, ms_address = settings.management_service_provider, settings.management_service_address
        if provider is None or ms_address is None:
            raise _conflict("the management service provider and address are not configured")

        def certs(kind: KeyKind) -> tuple[x509.Certificate, ...]:
            return tuple(k.certificate for k in keys if k.kind is kind)

        sources = tuple(
            ConfigurationSource(a, certs(KeyKind.INTERNAL), certs(KeyKind.EXTERNAL)) for a in source_addresses
        )
        shared = SharedParameters(
            instance=settings.instance,
            ocsp_freshness_seconds=settings.ocsp_freshness_seconds,
            sources=sources,
            approved_cas=cas,
            approved_tsas=tsas,
            members=members,
            security_servers=servers,
            global_groups=groups,
            member_classes=classes,
        )
        private = PrivateParameters(
            instance=settings.instance,
            management_service=ManagementService(ms_address, provider, settings.management_service_cert),
            time_stamping_interval_seconds=settings.timestamping_interval_seconds,
        )
        return RegistrySnapshot(shared, private, settings, keys)


class RequestEffects:
    """The registry operations a management request's effect may use, bound to the transaction of
    :meth:`RegistryStore.apply_request`.

    Each method does what the store's method of the same name does (same checks, same errors, same SQL)
    but inside that one transaction, so an effect of several writes is applied whole or not at all.
    """

    def __init__(self, store: RegistryStore, session: AsyncSession) -> None:
        self._store = store
        self._s = session

    # reads (the same view as the store's, including this transaction's own changes)

    async def get_member(self, member: MemberId) -> Member:
        return await self._store._get_member(self._s, member)

    async def get_security_server(self, server: SecurityServerId) -> SecurityServer:
        return await self._store._get_server(self._s, server)

    async def list_security_servers(self) -> tuple[SecurityServer, ...]:
        return await self._store._servers(self._s)

    async def list_server_clients(self, server: SecurityServerId) -> tuple[ServerClient, ...]:
        return await self._store._list_server_clients(self._s, server)

    async def get_global_group(self, group: GlobalGroupId) -> GlobalGroup:
        return await self._store._get_global_group(self._s, group)

    # changes

    async def add_subsystem(self, subsystem: SubsystemId, name: str | None = None) -> Subsystem:
        return await self._store._add_subsystem(self._s, subsystem, name)

    async def rename_subsystem(self, subsystem: SubsystemId, name: str | None) -> Subsystem:
        return await self._store._rename_subsystem(self._s, subsystem, name)

    async def add_security_server(
        self, server: SecurityServerId, address: str | None = None
    ) -> SecurityServer:
        return await self._store._add_server(self._s, server, address)

    async def set_server_address(self, server: SecurityServerId, address: str | None) -> SecurityServer:
        return await self._store._set_server_address(self._s, server, address)

    async def set_maintenance_mode(
        self, server: SecurityServerId, enabled: bool, message: str | None = None
    ) -> SecurityServer:
        return await self._store._set_maintenance_mode(self._s, server, enabled, message)

    async def change_server_owner(self, server: SecurityServerId, new_owner: MemberId) -> SecurityServer:
        return await self._store._change_server_owner(self._s, server, new_owner)

    async def add_auth_cert(self, server: SecurityServerId, cert: x509.Certificate) -> bytes:
        return await self._store._add_auth_cert(self._s, server, cert)

    async def remove_auth_cert(self, server: SecurityServerId, cert_hash: bytes) -> None:
        await self._store._remove_auth_cert(self._s, server, cert_hash)

    async def register_client(self, server: SecurityServerId, client: ClientId) -> SecurityServer:
        return await self._store._register_client(self._s, server, client)

    async def unregister_client(self, server: SecurityServerId, client: ClientId) -> SecurityServer:
        return await self._store._unregister_client(self._s, server, client)

    async def set_client_enabled(
        self, server: SecurityServerId, client: ClientId, enabled: bool
    ) -> SecurityServer:
        return await self._store._set_client_enabled(self._s, server, client, enabled)

    async def add_group_member(self, group: GlobalGroupId, client: ClientId) -> GlobalGroup:
        return await self._store._add_group_member(self._s, group, client)


RequestEffect = Callable[[RequestEffects, ManagementRequestRecord], Awaitable[None]]
"""The effect of a management request: run by :meth:`RegistryStore.apply_request` inside its transaction."""
