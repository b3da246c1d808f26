"""Settings of a node (security server): ``node.toml`` in its home directory plus ``XROAD_MN_NODE__*``.

Example::

    >>> from pathlib import Path
    >>> settings = NodeSettings(home=Path("/var/lib/xroad-mn/node"), address="127.0.0.2")
    >>> settings.database()
    'sqlite+aiosqlite:////var/lib/xroad-mn/node/node.db'
    >>> settings.server_proxy_port, settings.token.type
    (5500, <TokenType.SOFTWARE: 'software'>)
    >>> settings.allows_federation("EE")
    False

Everything has a default except ``home`` (the ``--dir`` of the CLI), so an empty ``node.toml`` works;
``configs/node.toml`` documents every key. Keys unknown to the model are refused (see
:mod:`xroad_mn.settings`), so a token PIN written here is an error, never a secret at rest. Nothing here is
trust material: that comes from the configuration anchor and the verified global configuration.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import Field, ValidationInfo, field_validator, model_validator

from security_server.ids import strict_checked
from xroad_mn.database import sqlite_url
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import ClientId, MemberId, SubsystemId, parse_client_header
from xroad_mn.tokens import TokenSettings, TokenType
from xroad_mn.transport.server import ServerTimeoutSettings

__all__ = [
    "ARCHIVE_DIR",
    "ARCHIVE_GPG_HOME_DIR",
    "DATABASE_FILE",
    "DEFAULT_ACCEPTABLE_TIMESTAMP_FAILURE_PERIOD_SECONDS",
    "DEFAULT_ADDRESS",
    "DEFAULT_ADMIN_PORT",
    "DEFAULT_ALLOWED_FEDERATIONS",
    "DEFAULT_ARCHIVE_INTERVAL_SECONDS",
    "DEFAULT_ARCHIVE_MAX_FILESIZE",
    "DEFAULT_ARCHIVE_TRANSACTION_BATCH",
    "DEFAULT_CLEAN_INTERVAL_SECONDS",
    "DEFAULT_CLEAN_TRANSACTION_BATCH",
    "DEFAULT_CLIENT_HTTPS_PORT",
    "DEFAULT_CLIENT_HTTP_PORT",
    "DEFAULT_CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_FASTEST_CONNECTION_CACHE_SECONDS",
    "DEFAULT_GLOBALCONF_UPDATE_INTERVAL_SECONDS",
    "DEFAULT_KEEP_RECORDS_FOR_DAYS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_OCSP_FETCH_INTERVAL_SECONDS",
    "DEFAULT_OCSP_RESPONDER_PORT",
    "DEFAULT_RATE_PER_MINUTE",
    "DEFAULT_RATE_PER_SECOND",
    "DEFAULT_SERVER_CONF_CACHE_SECONDS",
    "DEFAULT_SERVER_PROXY_PORT",
    "DEFAULT_TIMESTAMP_RECORDS_LIMIT",
    "DEFAULT_TIMESTAMP_RETRY_DELAY_SECONDS",
    "GLOBALCONF_DIR",
    "SETTINGS_FILE",
    "TOKEN_DIR",
    "ArchiveGrouping",
    "NodeSettings",
    "TokenSettings",
    "TokenType",
]

SETTINGS_FILE: Final = "node.toml"
DATABASE_FILE: Final = "node.db"
TOKEN_DIR: Final = "token"  # noqa: S105 - a directory name, not a secret
"""The software token's key store (or, for PKCS #11, nothing but the node's notes about it)."""
GLOBALCONF_DIR: Final = "globalconf"
"""The downloaded, verified global configuration."""
ARCHIVE_DIR: Final = "archive"
"""Where message-log archives (``mlog-*.zip``) are written unless ``archive_path`` says otherwise."""
ARCHIVE_GPG_HOME_DIR: Final = "gpghome"
"""The GnuPG home of archive encryption unless ``archive_gpg_home`` says otherwise."""

DEFAULT_ADDRESS: Final = "127.0.0.1"
"""Each node of a federation on one machine binds its own loopback address (127.0.0.2, 127.0.0.3, ...)."""
DEFAULT_ADMIN_PORT: Final = 4000
"""X-Road's security server admin UI/API port."""
DEFAULT_CLIENT_HTTP_PORT: Final = 8080
"""X-Road's client proxy port for information systems over HTTP."""
DEFAULT_CLIENT_HTTPS_PORT: Final = 8443
"""X-Road's client proxy port for information systems over HTTPS."""
DEFAULT_SERVER_PROXY_PORT: Final = 5500
"""X-Road's server proxy port: other security servers connect here (message transport)."""
DEFAULT_OCSP_RESPONDER_PORT: Final = 5577
"""X-Road's port where a security server hands out the OCSP responses of its own certificates."""
DEFAULT_OCSP_FETCH_INTERVAL_SECONDS: Final = 1200
"""X-Road's ``ocspFetchInterval``: how often the OCSP responses of the node's certificates are renewed."""
DEFAULT_GLOBALCONF_UPDATE_INTERVAL_SECONDS: Final = 60
"""X-Road's configuration client downloads global configuration every 60 s."""
DEFAULT_ALLOWED_FEDERATIONS: Final = "none"
"""X-Road's ``allowed-federations``: no federation until the operator names partner instances."""
DEFAULT_RATE_PER_SECOND: Final = 20
"""X-Road's ``ratelimit.requests.per.second`` for the admin API."""
DEFAULT_RATE_PER_MINUTE: Final = 600
"""X-Road's ``ratelimit.requests.per.minute`` for the admin API."""
DEFAULT_MAX_BODY_BYTES: Final = 50 * 1024
"""X-Road's ``request.sizelimit.regular`` (50 KB) for admin API request bodies."""
DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
"""Largest message (SOAP with attachments, or REST body) the proxies take from an IS or a peer."""
DEFAULT_CONNECT_TIMEOUT_SECONDS: Final = 30.0
"""X-Road's ``proxy.client-timeout``: how long connecting to a provider's security server may take."""
DEFAULT_FASTEST_CONNECTION_CACHE_SECONDS: Final = 3600.0
"""X-Road's ``client-fastest-connecting-ssl-uri-cache-period``."""
DEFAULT_SERVER_CONF_CACHE_SECONDS: Final = 60.0
"""X-Road's ``server-conf-cache-period``."""
MAX_INTERVAL_SECONDS: Final = 7 * 24 * 3600
DEFAULT_ACCEPTABLE_TIMESTAMP_FAILURE_PERIOD_SECONDS: Final = 14400
"""X-Road's ``acceptable-timestamp-failure-period``: after this long without a time-stamp the message log
refuses new records (``timestamper_failed``)."""
DEFAULT_TIMESTAMP_RECORDS_LIMIT: Final = 10000
"""X-Road's ``timestamp-records-limit``: most records one time-stamping round takes."""
DEFAULT_TIMESTAMP_RETRY_DELAY_SECONDS: Final = 60
"""X-Road's ``timestamp-retry-delay``: the next time-stamping attempt after a failed one."""
MAX_BODY_LOGGING_OVERRIDES: Final = 10000
"""Most subsystems one body-logging override list may name."""
DEFAULT_ARCHIVE_INTERVAL_SECONDS: Final = 6 * 3600
"""X-Road's ``archive-interval`` (every 6 h)."""
DEFAULT_CLEAN_INTERVAL_SECONDS: Final = 12 * 3600
"""X-Road's ``clean-interval`` (every 12 h)."""
DEFAULT_KEEP_RECORDS_FOR_DAYS: Final = 30
"""X-Road's ``keep-records-for``: archived records stay in the database this many days."""
DEFAULT_ARCHIVE_MAX_FILESIZE: Final = 33554432
"""X-Road's ``archive-max-filesize`` (32 MiB): an archive is rotated when the next container would pass it."""
DEFAULT_ARCHIVE_TRANSACTION_BATCH: Final = 10000
"""X-Road's ``archive-transaction-batch``: records read from the database at a time."""
DEFAULT_CLEAN_TRANSACTION_BATCH: Final = 10000
"""X-Road's ``clean-transaction-batch``: records deleted in one transaction."""
MAX_ENCRYPTION_KEY_MAPPINGS: Final = 10000
"""Most members ``archive_encryption_keys`` may name."""
MAX_KEYS_PER_MEMBER: Final = 16
"""Most GnuPG keys one member's archives may be encrypted to."""
_GPG_KEY_ID: Final = re.compile(r"^[A-Za-z0-9@<][A-Za-z0-9@._+\-<> ]{0,254}$")
"""A GnuPG key specification: a fingerprint, key id, or user id (e-mail or name); never an option."""


class ArchiveGrouping(StrEnum):
    """X-Road's ``archive-grouping``: one archive chain for the node, per member, or per subsystem (of the
    exchange's client; a member client counts as its own group)."""

    NONE = "none"
    MEMBER = "member"
    SUBSYSTEM = "subsystem"


Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP port; 0 lets the operating system choose (tests)."""

_HOST: Final = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,253}$")
_INSTANCE: Final = re.compile(r"^[A-Za-z0-9'()+,\-.=?]{1,255}$")
_FEDERATION_WORDS: Final = frozenset({"all", "none"})


def _client_header(text: str, info: ValidationInfo) -> ClientId:
    """A member or subsystem these settings name (``INSTANCE/CLASS/MEMBER[/SUBSYSTEM]``), read in the mode
    of ``strict_identifier_checks`` (validated before the fields that name clients)."""
    strict = info.data.get("strict_identifier_checks", True)
    return strict_checked(lambda s: parse_client_header(text, strict=s), strict=strict)


class NodeSettings(ServerTimeoutSettings):
    """Settings of one node (file ``HOME/node.toml``, environment ``XROAD_MN_NODE__*``)."""

    home: Path
    """The node's home: settings, token, global configuration and (by default) its database."""
    database_url: str | None = None
    """SQLAlchemy async URL; default the SQLite file ``HOME/node.db``."""
    database_schema: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    """PostgreSQL only: the schema (``search_path``) holding the node's tables."""
    address: str = DEFAULT_ADDRESS
    """The node's own IP address or host name: every listener binds it (the admin API: see
    :meth:`admin_bind_host`)."""
    admin_host: str | None = None
    """Where the admin API listens. Default: ``address`` when that is a loopback address (so nodes on
    127.0.0.2 and 127.0.0.3 each have their own admin port 4000), else 127.0.0.1: the admin API is never
    exposed beyond the machine unless this names another address."""
    admin_port: Port = DEFAULT_ADMIN_PORT
    client_http_port: Port = DEFAULT_CLIENT_HTTP_PORT
    client_https_port: Port = DEFAULT_CLIENT_HTTPS_PORT
    server_proxy_port: Port = DEFAULT_SERVER_PROXY_PORT
    ocsp_responder_port: Port = DEFAULT_OCSP_RESPONDER_PORT
    ocsp_fetch_interval_seconds: int = Field(
        default=DEFAULT_OCSP_FETCH_INTERVAL_SECONDS, gt=0, le=MAX_INTERVAL_SECONDS
    )
    globalconf_update_interval_seconds: int = Field(
        default=DEFAULT_GLOBALCONF_UPDATE_INTERVAL_SECONDS, gt=0, le=MAX_INTERVAL_SECONDS
    )
    globalconf_ca_file: Path | None = None
    """PEM file of the CA certificates (or the self-signed certificate) that verify the TLS certificate of
    ``https`` configuration sources; default the system's CAs. Only the channel: the configuration itself is
    verified with the anchor's keys whatever this says."""
    allowed_federations: str = DEFAULT_ALLOWED_FEDERATIONS
    """``none``, ``all`` or a comma-separated list of instance identifiers whose members may exchange
    messages with this node's clients (X-Road's ``allowed-federations``; ``none`` anywhere wins)."""
    strict_identifier_checks: bool = True
    """X-Road's ``strict-identifier-checks`` (7.3+): identifiers the node is given — by its information
    systems (the client proxy's REST target and identifier headers) and by its administrators (clients,
    service codes and versions, access-right subjects, local groups, the subsystems and members named in
    these settings) — may hold only ``A-Z a-z 0-9 ' ( ) + , - . = ?``. Off, only the delimiters ``:``
    ``;`` ``/`` ``%``, the backslash and control characters are refused: for services named like XYP's
    ``WS100101_getCitizenIDCardInfo`` (X-Road turns it off on upgrades from before 7.3). Identifiers read
    from peers and global configuration are never checked strictly. Declared before the settings that name
    subsystems and members: their validators read it."""
    token: TokenSettings = TokenSettings()
    rate_limit_per_second: int = Field(default=DEFAULT_RATE_PER_SECOND, gt=0)
    rate_limit_per_minute: int = Field(default=DEFAULT_RATE_PER_MINUTE, gt=0)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0, le=16 * 1024 * 1024)
    """Largest admin API request body (uploads of OpenAPI documents included)."""
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, gt=0, le=1024 * 1024 * 1024)
    """Largest message the client and server proxies accept (SOAP with its attachments, or a REST body)."""
    connect_timeout_seconds: float = Field(default=DEFAULT_CONNECT_TIMEOUT_SECONDS, gt=0, le=3600)
    """Connecting to a provider's security server (X-Road's ``client-timeout``, 30 s)."""
    exchange_timeout_seconds: float = Field(default=0, ge=0, le=86400)
    """Waiting for a provider's response; 0 waits as long as the provider's service timeout lets it
    (X-Road's ``client-httpclient-timeout``, 0)."""
    fastest_connection_cache_seconds: float = Field(default=DEFAULT_FASTEST_CONNECTION_CACHE_SECONDS, ge=0)
    """How long the fastest-connecting address of a provider is remembered (X-Road's 3600 s)."""
    server_conf_cache_seconds: float = Field(default=DEFAULT_SERVER_CONF_CACHE_SECONDS, ge=0, le=3600)
    """How long the proxies remember hosted clients, services and access decisions (X-Road's
    ``server-conf-cache-period``, 60 s): a change reaches the exchange within this time; 0 reads
    every time."""
    workers: int = Field(default=0, ge=0, le=64)
    """Worker processes serving the proxies (0: one per CPU core)."""
    message_body_logging: bool = True
    """X-Road's ``message-body-logging``: log message bodies (SOAP body, REST path, query and body). Off, a
    record keeps only the X-Road headers and no longer verifies."""
    enabled_body_logging_local_producer_subsystems: list[str] = Field(
        default_factory=list, max_length=MAX_BODY_LOGGING_OVERRIDES
    )
    """Provider subsystems hosted here (``INSTANCE/CLASS/MEMBER/SUBSYSTEM``) whose bodies are logged
    although ``message_body_logging`` is off."""
    enabled_body_logging_remote_producer_subsystems: list[str] = Field(
        default_factory=list, max_length=MAX_BODY_LOGGING_OVERRIDES
    )
    """Remote provider subsystems whose bodies are logged although ``message_body_logging`` is off."""
    disabled_body_logging_local_producer_subsystems: list[str] = Field(
        default_factory=list, max_length=MAX_BODY_LOGGING_OVERRIDES
    )
    """Provider subsystems hosted here whose bodies are not logged although ``message_body_logging`` is on."""
    disabled_body_logging_remote_producer_subsystems: list[str] = Field(
        default_factory=list, max_length=MAX_BODY_LOGGING_OVERRIDES
    )
    """Remote provider subsystems whose bodies are not logged although ``message_body_logging`` is on."""
    acceptable_timestamp_failure_period_seconds: int = Field(
        default=DEFAULT_ACCEPTABLE_TIMESTAMP_FAILURE_PERIOD_SECONDS, ge=0, le=MAX_INTERVAL_SECONDS
    )
    """How long time-stamping may fail before the message log refuses new records; 0 never refuses."""
    timestamp_records_limit: int = Field(default=DEFAULT_TIMESTAMP_RECORDS_LIMIT, gt=0, le=100_000)
    timestamp_retry_delay_seconds: int = Field(
        default=DEFAULT_TIMESTAMP_RETRY_DELAY_SECONDS, gt=0, le=MAX_INTERVAL_SECONDS
    )
    archive_interval_seconds: int = Field(
        default=DEFAULT_ARCHIVE_INTERVAL_SECONDS, gt=0, le=MAX_INTERVAL_SECONDS
    )
    """How often time-stamped records are archived (X-Road's ``archive-interval``)."""
    archive_path: Path | None = None
    """Where archives are written (X-Road's ``archive-path``); default ``HOME/archive``."""
    archive_grouping: ArchiveGrouping = ArchiveGrouping.NONE
    archive_max_filesize: int = Field(default=DEFAULT_ARCHIVE_MAX_FILESIZE, gt=0, le=1024 * 1024 * 1024)
    archive_transaction_batch: int = Field(default=DEFAULT_ARCHIVE_TRANSACTION_BATCH, gt=0, le=100_000)
    archive_transfer_command: str | None = None
    """Run after archives are written, with the archive directory as its last argument (split as a shell
    would split it, but run without a shell)."""
    archive_encryption_enabled: bool = False
    archive_gpg_home: Path | None = None
    """The GnuPG home holding the node's signing key pair and the members' public keys; default
    ``HOME/gpghome``."""
    archive_default_encryption_key: str | None = None
    """The key archives are encrypted to when their member has none (or grouping is ``none``); default the
    GnuPG home's own key."""
    archive_encryption_keys: dict[str, list[str]] = Field(
        default_factory=dict, max_length=MAX_ENCRYPTION_KEY_MAPPINGS
    )
    """Member (``INSTANCE/CLASS/MEMBER``) → the GnuPG keys its archives are encrypted to."""
    keep_records_for_days: int = Field(default=DEFAULT_KEEP_RECORDS_FOR_DAYS, ge=0, le=36500)
    """Archived records older than this are deleted from the database (X-Road's ``keep-records-for``)."""
    clean_interval_seconds: int = Field(default=DEFAULT_CLEAN_INTERVAL_SECONDS, gt=0, le=MAX_INTERVAL_SECONDS)
    clean_transaction_batch: int = Field(default=DEFAULT_CLEAN_TRANSACTION_BATCH, gt=0, le=100_000)
    opmon_keep_records_for_days: int = Field(default=7, ge=1, le=36500)
    """Operational monitoring records older than this are deleted (X-Road's ``keep-records-for-days``)."""
    opmon_max_records_in_payload: int = Field(default=10000, gt=0, le=1_000_000)
    """Most records one ``getSecurityServerOperationalData`` answer carries (plus the rest of its last
    second)."""
    opmon_records_available_offset_seconds: int = Field(default=60, ge=0, le=3600)
    """Records of the last this-many seconds are not served yet (other workers may still be writing them)."""
    opmon_health_statistics_period_seconds: int = Field(default=600, gt=0, le=86400)
    opmon_buffer_size: int = Field(default=20000, gt=0, le=1_000_000)
    """Records kept in memory while waiting for the writer; beyond it the oldest are dropped (and counted)."""
    opmon_sending_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    """How often the buffer is written to the database (one transaction per flush)."""

    def worker_count(self) -> int:
        """How many processes serve the proxies: ``workers``, or one per CPU core."""
        return self.workers or os.cpu_count() or 1

    @field_validator("address", "admin_host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.match(value):
            raise ValueError(f"{value[:80]!r} is not an IP address or host name")
        return value

    @field_validator("allowed_federations")
    @classmethod
    def _federations(cls, value: str) -> str:
        items = [i.strip() for i in value.split(",")]
        for item in items:
            if item.lower() not in _FEDERATION_WORDS and not _INSTANCE.match(item):
                raise ValueError(f"{item[:80]!r} is neither all, none nor an instance identifier")
        return value

    @field_validator(
        "enabled_body_logging_local_producer_subsystems",
        "enabled_body_logging_remote_producer_subsystems",
        "disabled_body_logging_local_producer_subsystems",
        "disabled_body_logging_remote_producer_subsystems",
    )
    @classmethod
    def _subsystems(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for item in value:
            try:
                client = _client_header(item, info)
            except XRoadError as e:
                raise ValueError(f"{item[:80]!r} is not INSTANCE/CLASS/MEMBER/SUBSYSTEM: {e.message}") from e
            if not isinstance(client, SubsystemId):
                raise ValueError(  # noqa: TRY004 - pydantic reports a ValueError as a validation error
                    f"{item[:80]!r} names a member; body logging is set per subsystem"
                )
        return value

    @field_validator("archive_transfer_command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            argv = shlex.split(value)
        except ValueError as e:
            raise ValueError(f"archive_transfer_command cannot be split into arguments: {e}") from e
        if not argv:
            raise ValueError("archive_transfer_command is empty")
        return value

    @field_validator("archive_default_encryption_key")
    @classmethod
    def _default_key(cls, value: str | None) -> str | None:
        if value is not None and not _GPG_KEY_ID.match(value):
            raise ValueError(f"{value[:80]!r} is not a GnuPG key id, fingerprint or user id")
        return value

    @field_validator("archive_encryption_keys")
    @classmethod
    def _member_keys(cls, value: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        for member, keys in value.items():
            try:
                client = _client_header(member, info)
            except XRoadError as e:
                raise ValueError(f"{member[:80]!r} is not INSTANCE/CLASS/MEMBER: {e.message}") from e
            if not isinstance(client, MemberId):
                raise ValueError(  # noqa: TRY004 - pydantic reports a ValueError as a validation error
                    f"{member[:80]!r} names a subsystem; archive keys are set per member"
                )
            if not 0 < len(keys) <= MAX_KEYS_PER_MEMBER:
                raise ValueError(f"{member[:80]!r} needs 1 to {MAX_KEYS_PER_MEMBER} keys")
            for key in keys:
                if not _GPG_KEY_ID.match(key):
                    raise ValueError(f"{key[:80]!r} is not a GnuPG key id, fingerprint or user id")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> NodeSettings:
        ports = self.ports()
        taken: dict[int, str] = {}
        for name, port in ports.items():
            if port != 0 and port in taken:
                raise ValueError(
                    f"{name} and {taken[port]} are both {port}: every listener needs its own port"
                )
            taken[port] = name
        return self

    def ports(self) -> dict[str, int]:
        """Every listener's port by setting name."""
        return {
            "admin_port": self.admin_port,
            "client_http_port": self.client_http_port,
            "client_https_port": self.client_https_port,
            "server_proxy_port": self.server_proxy_port,
            "ocsp_responder_port": self.ocsp_responder_port,
        }

    def admin_bind_host(self) -> str:
        """The admin API's listening address: ``admin_host``, else ``address`` when it is a loopback IP
        address, else 127.0.0.1 (X-Road's admin UI listens on every interface; ours stays on the machine)."""
        if self.admin_host is not None:
            return self.admin_host
        try:
            loopback = ipaddress.ip_address(self.address.strip("[]")).is_loopback
        except ValueError:
            loopback = self.address == "localhost"
        return self.address if loopback else DEFAULT_ADDRESS

    def allows_federation(self, instance: str) -> bool:
        """Whether members of ``instance`` (another X-Road instance) may talk to this node's clients.

        The node's own instance is not a federation and is not asked about here.
        """
        items = {i.strip() for i in self.allowed_federations.split(",")}
        lowered = {i.lower() for i in items}
        if "none" in lowered:
            return False
        return "all" in lowered or instance in items

    def archive_dir(self) -> Path:
        """Where message-log archives are written: ``archive_path`` or ``HOME/archive``."""
        return self.archive_path or self.home / ARCHIVE_DIR

    def gpg_home(self) -> Path:
        """The GnuPG home of archive encryption: ``archive_gpg_home`` or ``HOME/gpghome``."""
        return self.archive_gpg_home or self.home / ARCHIVE_GPG_HOME_DIR

    def database(self) -> str:
        """The database URL to use."""
        return self.database_url or sqlite_url(self.home / DATABASE_FILE)

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`xroad_mn.database.create_engine` (the PostgreSQL schema, if any)."""
        if self.database_schema is None:
            return {}
        return {"connect_args": {"server_settings": {"search_path": self.database_schema}}}
