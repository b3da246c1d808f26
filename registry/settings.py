"""Settings of the registry: ``registry.toml`` in the home directory plus ``XROAD_MN_REGISTRY__*``.

Example::

    >>> from pathlib import Path
    >>> settings = RegistrySettings(home=Path("/var/lib/xroad-mn/registry"), public_port=8080)
    >>> settings.database()
    'sqlite+aiosqlite:////var/lib/xroad-mn/registry/registry.db'
    >>> settings.source_addresses()
    ('127.0.0.1:8080',)

Everything has a default except ``home`` (the ``--dir`` of the CLI), so an empty ``registry.toml`` works.
Keys unknown to the model are refused (see :mod:`xroad_mn.settings`). Nothing here is trust material: the
members, CAs and signing keys' certificates are in the database, the signing keys in the token that the
``[token]`` section names (a software token in ``HOME/token`` by default; never its PIN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import Field, field_validator, model_validator

from registry.db import sqlite_url
from registry.distribution import REGENERATE_INTERVAL_SECONDS
from registry.globalconf_gen import DEFAULT_EXPIRE_SECONDS, SERVED_VERSIONS
from xroad_mn.errors import XRoadError
from xroad_mn.globalconf.params import CURRENT_VERSION, MIN_VERSION
from xroad_mn.identifiers import ClientId, MemberId, SubsystemId, parse_id
from xroad_mn.management import ManagementRequestType
from xroad_mn.tokens import TokenSettings
from xroad_mn.transport.server import ServerTimeoutSettings

__all__ = [
    "API_KEYS_FILE",
    "AUDIT_LOG_FILE",
    "DATABASE_FILE",
    "DEFAULT_ADMIN_PORT",
    "DEFAULT_MANAGEMENT_RATE_PER_MINUTE",
    "DEFAULT_MANAGEMENT_RATE_PER_SECOND",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PUBLIC_PORT",
    "DEFAULT_RATE_PER_MINUTE",
    "DEFAULT_RATE_PER_SECOND",
    "SETTINGS_FILE",
    "TOKEN_DIR",
    "RegistrySettings",
]

SETTINGS_FILE: Final = "registry.toml"
DATABASE_FILE: Final = "registry.db"
AUDIT_LOG_FILE: Final = "audit.log"
API_KEYS_FILE: Final = "api-keys.json"
TOKEN_DIR: Final = "token"  # noqa: S105 (a directory name, not a secret)
"""The default software token's directory in the home."""

DEFAULT_ADMIN_PORT: Final = 4000
"""X-Road's central server admin UI/API port."""
DEFAULT_PUBLIC_PORT: Final = 8080
"""Global configuration distribution and the management service (X-Road uses 80 and 4001)."""
DEFAULT_RATE_PER_SECOND: Final = 20
"""X-Road's ``ratelimit.requests.per.second`` for the admin API."""
DEFAULT_RATE_PER_MINUTE: Final = 600
"""X-Road's ``ratelimit.requests.per.minute`` for the admin API."""
DEFAULT_MANAGEMENT_RATE_PER_SECOND: Final = 10
"""Management requests a remote address may send a second (a security server sends a handful)."""
DEFAULT_MANAGEMENT_RATE_PER_MINUTE: Final = 120
DEFAULT_MAX_BODY_BYTES: Final = 50 * 1024
"""X-Road's ``request.sizelimit.regular`` (50 KB) for admin API request bodies."""

Port = Annotated[int, Field(ge=0, le=65535)]


def _parse_client(text: str) -> ClientId:
    """A member or subsystem in X-Road's string form; ``ValueError`` (a settings error) otherwise."""
    try:
        parsed = parse_id(text)
    except XRoadError as e:
        raise ValueError(e.message) from e
    if isinstance(parsed, MemberId | SubsystemId):
        return parsed
    raise ValueError(f"{text!r} is no member or subsystem (MEMBER:... or SUBSYSTEM:...)")


class RegistrySettings(ServerTimeoutSettings):
    """Settings of one registry (file ``HOME/registry.toml``, environment ``XROAD_MN_REGISTRY__*``), with the
    read timeouts of both sockets (:class:`~xroad_mn.transport.server.ServerTimeoutSettings`)."""

    home: Path
    """The registry's home: settings, database (by default), audit log and API keys."""
    database_url: str | None = None
    """SQLAlchemy async URL; default the SQLite file ``HOME/registry.db``."""
    database_schema: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    """PostgreSQL only: the schema (``search_path``) holding the registry's tables."""
    admin_host: str = "127.0.0.1"
    admin_port: Port = DEFAULT_ADMIN_PORT
    public_host: str = "127.0.0.1"
    public_port: Port = DEFAULT_PUBLIC_PORT
    """Where ``/internalconf``, ``/externalconf``, the content files and ``/managementservice/`` answer.
    The public socket must differ from the admin socket, which alone serves the admin API and the internal
    ``/managementservice/manage/`` (keep ``admin_host`` on loopback)."""
    public_addresses: tuple[str, ...] = ()
    """The addresses written into anchors and ``source`` (``cs.example.mn`` or ``http://cs:8080``);
    default ``public_host:public_port``."""
    management_service_url: str | None = None
    """``authCertRegServiceAddress``; default ``http(s)://<first public address>/managementservice/``."""
    public_tls_cert: Path | None = None
    """PEM certificate (chain) of the public socket: set with ``public_tls_key`` and the public socket
    speaks TLS 1.2+ only, anchors name ``https://`` sources, and the certificate is published as the
    management service's ``authCertRegServiceCert`` so security servers can pin it for ``authCertReg``."""
    public_tls_key: Path | None = None
    """PEM private key of ``public_tls_cert``."""
    regenerate_interval_seconds: float = Field(default=REGENERATE_INTERVAL_SECONDS, gt=0)
    configuration_expiry_seconds: int | None = Field(default=None, gt=0)
    """Overrides the database's global setting when set; X-Road's default is 600 s."""
    configuration_versions: tuple[int, ...] = SERVED_VERSIONS
    """Versions generated and served: 2 to 6 (X-Road's configuration client asks for 6 down to 2, and
    ``/internalconf`` without ``?version`` is version 2)."""
    auto_approve: frozenset[ManagementRequestType] = frozenset()
    """Management request types approved as soon as they are submitted (X-Road's auto-approval)."""
    rate_limit_per_second: int = Field(default=DEFAULT_RATE_PER_SECOND, gt=0)
    rate_limit_per_minute: int = Field(default=DEFAULT_RATE_PER_MINUTE, gt=0)
    management_rate_limit_per_second: int = Field(default=DEFAULT_MANAGEMENT_RATE_PER_SECOND, gt=0)
    """Management service requests per remote address a second (``/managementservice*``, no API key)."""
    management_rate_limit_per_minute: int = Field(default=DEFAULT_MANAGEMENT_RATE_PER_MINUTE, gt=0)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0, le=16 * 1024 * 1024)
    api_keys_file: Path | None = None
    """Default ``HOME/api-keys.json``."""
    audit_log: Path | None = None
    """Default ``HOME/audit.log``."""
    token: TokenSettings = Field(default_factory=TokenSettings)
    """``[token]``: where the configuration signing keys are (default a software token in ``HOME/token``);
    its PIN comes from ``XROAD_MN_TOKEN_PIN`` or a prompt."""
    monitoring_client: str | None = None
    """The central monitoring client, in X-Road's string form (``SUBSYSTEM:MN/GOV/7000001/monitor`` or
    ``MEMBER:MN/GOV/7000001``): published in global configuration's ``MONITORING`` part, it may read the
    operational and health data of every security server. Unset: no ``MONITORING`` part."""

    @field_validator("configuration_versions")
    @classmethod
    def _known_versions(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("at least one version must be served")
        for v in value:
            if not MIN_VERSION <= v <= CURRENT_VERSION:
                raise ValueError(f"version {v} is not between {MIN_VERSION} and {CURRENT_VERSION}")
        return tuple(sorted(set(value)))

    @field_validator("monitoring_client")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_client(value)
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> RegistrySettings:
        if (self.public_tls_cert is None) != (self.public_tls_key is None):
            raise ValueError("public_tls_cert and public_tls_key are set together or not at all")
        return self

    @model_validator(mode="after")
    def _expiry_outlives_regeneration(self) -> RegistrySettings:
        expiry, interval = self.configuration_expiry_seconds, self.regenerate_interval_seconds
        if expiry is not None and expiry < 2 * interval:
            raise ValueError(
                f"configuration_expiry_seconds ({expiry}) must be at least twice regenerate_interval_seconds "
                f"({interval:g}): a configuration must not expire before the next one is published"
            )
        return self

    @model_validator(mode="after")
    def _separate_sockets(self) -> RegistrySettings:
        admin, public = (self.admin_host, self.admin_port), (self.public_host, self.public_port)
        if self.admin_port != 0 and admin == public:
            raise ValueError(
                "the admin socket (admin_host:admin_port) and the public socket (public_host:public_port) "
                "must differ: the admin API and the internal management service are never served publicly"
            )
        return self

    @property
    def public_tls(self) -> bool:
        """Whether the public socket speaks TLS."""
        return self.public_tls_cert is not None

    def public_scheme(self) -> str:
        """``https`` when the public socket speaks TLS, else ``http``."""
        return "https" if self.public_tls else "http"

    def monitoring_client_id(self) -> ClientId | None:
        """:attr:`monitoring_client` parsed (validated when the settings were read)."""
        return _parse_client(self.monitoring_client) if self.monitoring_client is not None else None

    def database(self) -> str:
        """The database URL to use."""
        return self.database_url or sqlite_url(self.home / DATABASE_FILE)

    def api_keys_path(self) -> Path:
        return self.api_keys_file or self.home / API_KEYS_FILE

    def audit_log_path(self) -> Path:
        return self.audit_log or self.home / AUDIT_LOG_FILE

    def token_directory(self) -> Path:
        """The software token's directory: ``[token] directory``, else ``HOME/token``."""
        return self.token.directory or self.home / TOKEN_DIR

    def _public_addresses(self) -> tuple[str, ...]:
        if self.public_addresses:
            return self.public_addresses
        host = f"[{self.public_host}]" if ":" in self.public_host else self.public_host
        return (f"{host}:{self.public_port}",)

    def source_addresses(self) -> tuple[str, ...]:
        """The addresses shared-params ``source`` names: ``host[:port]`` only, as X-Road expects there
        (its clients build ``https://ADDRESS/internalconf``), so a scheme and path in ``public_addresses``
        are dropped."""
        return tuple(_host_port(a) for a in self._public_addresses())

    def anchor_addresses(self) -> tuple[str, ...]:
        """The sources as anchors name them: ``public_addresses`` as written (scheme kept), with
        ``https://`` added to the addresses without a scheme when the public socket speaks TLS (``http``
        is the anchor's default)."""
        if not self.public_tls:
            return self._public_addresses()
        return tuple(a if "://" in a else f"https://{a}" for a in self._public_addresses())

    def management_service_address(self) -> str:
        """The management service's address as global configuration announces it."""
        if self.management_service_url:
            return self.management_service_url
        first = self._public_addresses()[0].rstrip("/")
        base = first if "://" in first else f"{self.public_scheme()}://{first}"
        return f"{base}/managementservice/"

    def expiry_seconds(self, stored: int) -> int:
        """The configuration expiry: this file's value when set, else the database's global setting."""
        return self.configuration_expiry_seconds or stored or DEFAULT_EXPIRE_SECONDS

    def versions(self) -> tuple[int, ...]:
        """Versions to generate."""
        return self.configuration_versions

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`registry.db.create_engine` (the PostgreSQL schema, if any)."""
        if self.database_schema is None:
            return {}
        return {"connect_args": {"server_settings": {"search_path": self.database_schema}}}


def _host_port(address: str) -> str:
    """``host[:port]`` of an address written as ``host[:port]`` or ``scheme://host[:port][/path]``."""
    if "://" not in address:
        return address.rstrip("/")
    return address.split("://", 1)[1].split("/", 1)[0]
