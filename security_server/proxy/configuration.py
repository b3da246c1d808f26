"""What the proxies read from the node's installed global configuration, loaded once per download.

:class:`ConfigurationView` is an immutable snapshot: the trust material (approved CAs and TSAs), the own
instance's shared parameters, one :class:`~xroad_mn.validation.CertificateValidator` (whose signer cache
lives as long as the snapshot) and the time the configuration expires. The proxies take the current view
from a :class:`ConfigurationHolder`, which the global configuration task refreshes after every download::

    >>> holder = ConfigurationHolder(globalconf_dir(home))  # doctest: +SKIP
    >>> view = holder.current(now)  # doctest: +SKIP
    >>> view.servers_of(provider)  # doctest: +SKIP
    (SecurityServer(owner=..., server_code='ss2', address='127.0.0.3', ...),)

An expired or missing configuration is ``global_conf_outdated``: X-Road refuses to exchange messages on
configuration it cannot trust to be current.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

import structlog

from xroad_mn.confclient.installed import load_trust_store
from xroad_mn.confclient.store import ConfigurationStore
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.globalconf.monitoring import MONITORING_CONTENT_IDENTIFIER, parse_monitoring_params
from xroad_mn.globalconf.params import SecurityServer, SharedParameters, parse_shared_params
from xroad_mn.globalconf.trust import SHARED_PARAMS_FILE, TrustMaterial
from xroad_mn.identifiers import ClientId, GlobalGroupId, MemberId, SecurityServerId, SubsystemId
from xroad_mn.validation import CertificateValidator

__all__ = ["ConfigurationHolder", "ConfigurationView", "load_configuration_view"]

log = structlog.get_logger(__name__)

RELOAD_CHECK_SECONDS: Final = 1.0
"""How often a holder looks at the files' modification time (another process may have downloaded)."""


def _outdated(message: str) -> XRoadError:
    return XRoadError(FaultCode.GLOBAL_CONF_OUTDATED, message, kind=ErrorKind.INTERNAL)


@dataclass(frozen=True)
class ConfigurationView:
    """One installed global configuration, as the exchange uses it."""

    trust: TrustMaterial
    shared: SharedParameters
    expires_at: datetime | None
    validator: CertificateValidator = field(repr=False)
    _servers_by_client: dict[ClientId, tuple[SecurityServer, ...]] = field(repr=False)
    _groups_by_client: dict[ClientId, tuple[GlobalGroupId, ...]] = field(repr=False)
    _names: dict[ClientId, tuple[str, str | None]] = field(repr=False)
    monitoring_client: ClientId | None = None
    """The central monitoring client named by the ``MONITORING`` part, if any."""

    @property
    def instance(self) -> str:
        return self.shared.instance

    def check_valid(self, now: datetime) -> None:
        """``global_conf_outdated`` when the configuration expired."""
        if self.expires_at is not None and now >= self.expires_at:
            raise _outdated(
                f"global configuration expired at {self.expires_at.isoformat()}: the node cannot download "
                "a current one"
            )

    def servers_of(self, client: ClientId) -> tuple[SecurityServer, ...]:
        """Every security server that lists ``client`` (member or subsystem) as its client."""
        return self._servers_by_client.get(client, ())

    def is_registered(self, client: ClientId) -> bool:
        """Whether global configuration lists ``client`` as a client of some security server."""
        return client in self._servers_by_client

    def is_served_by(self, client: ClientId, server: SecurityServerId) -> bool:
        return any(s.owner.server(s.server_code) == server for s in self.servers_of(client))

    def global_groups_of(self, client: ClientId) -> tuple[GlobalGroupId, ...]:
        """The global groups ``client`` belongs to (a subsystem also through its member)."""
        groups = list(self._groups_by_client.get(client, ()))
        if isinstance(client, SubsystemId):
            groups.extend(self._groups_by_client.get(client.member, ()))
        return tuple(dict.fromkeys(groups))

    def clients(self) -> list[tuple[ClientId, str, str | None]]:
        """Every member and subsystem of the own instance with its member name and subsystem name."""
        return [(client, name, sub) for client, (name, sub) in self._names.items()]


def _index(
    shared: SharedParameters,
) -> tuple[
    dict[ClientId, tuple[SecurityServer, ...]],
    dict[ClientId, tuple[GlobalGroupId, ...]],
    dict[ClientId, tuple[str, str | None]],
]:
    servers: dict[ClientId, list[SecurityServer]] = {}
    for server in shared.security_servers:
        servers.setdefault(server.owner, []).append(server)
        for client in server.clients:
            if client != server.owner:
                servers.setdefault(client, []).append(server)
    groups: dict[ClientId, list[GlobalGroupId]] = {}
    for group in shared.global_groups:
        group_id = GlobalGroupId(shared.instance, group.code)
        for group_member in group.members:
            groups.setdefault(group_member, []).append(group_id)
    names: dict[ClientId, tuple[str, str | None]] = {}
    for member in shared.members:
        member_id = MemberId(shared.instance, member.member_class.code, member.member_code)
        names[member_id] = (member.name, None)
        for sub in member.subsystems:
            names[member_id.subsystem(sub.code)] = (member.name, sub.name)
    return (
        {k: tuple(v) for k, v in servers.items()},
        {k: tuple(v) for k, v in groups.items()},
        names,
    )


def load_configuration_view(conf_dir: Path) -> ConfigurationView:
    """Read the installed configuration in ``conf_dir`` (blocking: call it in a thread)."""
    store = ConfigurationStore(conf_dir)
    instance = store.instance_identifier()
    if instance is None:
        raise _outdated("no global configuration is installed: the node has not downloaded one")
    data = store.read_file(instance, SHARED_PARAMS_FILE)
    if data is None:
        raise _outdated(f"the installed global configuration has no {SHARED_PARAMS_FILE} for {instance}")
    shared = parse_shared_params(data)
    trust = load_trust_store(conf_dir).trust_material()
    metadata = store.read_metadata(instance, SHARED_PARAMS_FILE)
    expires = metadata.expiration_date if metadata is not None else None
    servers, groups, names = _index(shared)
    return ConfigurationView(
        trust, shared, expires, CertificateValidator(trust), servers, groups, names, _monitoring_client(store)
    )


def _monitoring_client(store: ConfigurationStore) -> ClientId | None:
    """The central monitoring client of the installed ``MONITORING`` part (of any instance's directory the
    node keeps, as X-Road's ``MonitoringConf`` reads it); an unusable part names none."""
    for instance in store.stored_instances():
        for meta_path in sorted(store.instance_dir(instance).glob("*.metadata")):
            file_name = meta_path.name.removesuffix(".metadata")
            try:
                meta = store.read_metadata(instance, file_name)
                if meta is None or meta.content_identifier != MONITORING_CONTENT_IDENTIFIER:
                    continue
                data = store.read_file(instance, file_name)
                if data is not None:
                    return parse_monitoring_params(data).monitoring_client
            except XRoadError as e:
                log.warning("monitoring_params_unusable", code=e.code, error=e.message)
    return None


class ConfigurationHolder:
    """The current :class:`ConfigurationView` of a node; :meth:`reload` after every download.

    Reloads by itself when the installed files changed (another worker process downloaded them), checking
    at most every :data:`RELOAD_CHECK_SECONDS`.
    """

    def __init__(self, conf_dir: Path) -> None:
        self._dir = conf_dir
        self._view: ConfigurationView | None = None
        self._error: XRoadError | None = None
        self._stamp: float | None = None
        self._checked_at = 0.0
        self.generation = 0
        """Increases on every reload that changed the view (caches keyed on it drop stale entries)."""

    def _file_stamp(self) -> float | None:
        try:
            return (self._dir / "instance-identifier").stat().st_mtime + sum(
                p.stat().st_mtime for p in self._dir.glob(f"*/{SHARED_PARAMS_FILE}")
            )
        except OSError:
            return None

    def reload(self, *, only_if_changed: bool = False) -> ConfigurationView | None:
        """Load the installed configuration now (blocking); keeps the previous view when it fails.
        ``only_if_changed``: return ``None`` without reading when the files are as last loaded."""
        stamp = self._file_stamp()
        if only_if_changed and self._view is not None and stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            view = load_configuration_view(self._dir)
        except XRoadError as e:
            log.warning("globalconf_view_failed", code=e.code, error=e.message)
            self._error = e
            return self._view
        self._view = view
        self._error = None
        self.generation += 1
        return view

    @property
    def view(self) -> ConfigurationView | None:
        """The view last loaded, expired or not (``None`` before any loaded)."""
        return self._view

    def current(self, now: datetime) -> ConfigurationView:
        """The view to use at ``now``; ``global_conf_outdated`` when there is none or it expired."""
        mono = now.timestamp()
        if self._view is None or mono - self._checked_at >= RELOAD_CHECK_SECONDS:
            self._checked_at = mono
            if self._view is None or self._file_stamp() != self._stamp:
                self.reload()
        view = self._view
        if view is None:
            raise self._error or _outdated("no global configuration is installed")
        view.check_valid(now)
        return view
