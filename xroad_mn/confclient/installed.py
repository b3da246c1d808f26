"""Trust material from an installed configuration directory, as X-Road stores it.

``<dir>/instance-identifier`` names the own instance; ``<dir>/<INSTANCE>/shared-params.xml`` and
``private-params.xml`` hold each instance's parameters, federated instances beside it. This module only reads
the files; :meth:`~xroad_mn.globalconf.trust.TrustMaterial.from_shared_params` parses them.

Example::

    >>> from pathlib import Path
    >>> from xroad_mn.confclient.installed import load_trust_material, load_trust_store
    >>> trust = load_trust_material(Path("/etc/xroad/globalconf"))  # doctest: +SKIP
    >>> trust.instance, len(trust.approved_cas), trust.ocsp_freshness_seconds  # doctest: +SKIP
    ('EE', 10, 42)
    >>> sorted(load_trust_store(Path("/etc/xroad/globalconf")).by_instance)  # doctest: +SKIP
    ['EE', 'bar', 'foo']
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import (
    INSTANCE_IDENTIFIER_FILE,
    MAX_INSTANCES,
    MAX_PARAMS_BYTES,
    PRIVATE_PARAMS_FILE,
    SHARED_PARAMS_FILE,
    TrustMaterial,
    TrustStore,
)

__all__ = ["load_trust_material", "load_trust_store"]


def _malformed(message: str) -> XRoadError:
    return XRoadError(FaultCode.MALFORMED_GLOBALCONF, message)


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PARAMS_BYTES:
            raise _malformed(f"{path} is larger than {MAX_PARAMS_BYTES} bytes")
        return path.read_bytes()
    except OSError as e:
        raise _malformed(f"cannot read {path}: {e}") from e


def _load_instance(instance_dir: Path, *, own: bool) -> TrustMaterial:
    shared = _read(instance_dir / SHARED_PARAMS_FILE)
    private_path = instance_dir / PRIVATE_PARAMS_FILE
    private = _read(private_path) if own and private_path.is_file() else None
    return TrustMaterial.from_shared_params(shared, private_params=private)


def load_trust_store(conf_dir: Path) -> TrustStore:
    """Read every instance of a stored configuration directory.

    The own instance is named by ``instance-identifier``; a missing or empty file raises
    ``malformed_global_conf`` (X-Road: ``FAILURE_MISSING_INSTANCE_IDENTIFIER``), as does a malformed part of
    the own instance. Malformed federated parts are skipped and listed in :attr:`TrustStore.skipped`.
    """
    id_file = conf_dir / INSTANCE_IDENTIFIER_FILE
    if not id_file.is_file():
        raise _malformed(f"configuration directory {conf_dir} has no {INSTANCE_IDENTIFIER_FILE} file")
    own_instance = _read(id_file).decode("utf-8", "replace").strip()
    if not own_instance:
        raise _malformed(f"{id_file} is empty")
    try:
        instance_dirs = sorted(
            (p for p in conf_dir.iterdir() if (p / SHARED_PARAMS_FILE).is_file()),
            key=lambda p: (p.name != own_instance, p.name),
        )
    except OSError as e:
        raise _malformed(f"cannot list {conf_dir}: {e}") from e
    if len(instance_dirs) > MAX_INSTANCES:
        raise _malformed(f"{conf_dir} holds more than {MAX_INSTANCES} instances")
    by_instance: dict[str, TrustMaterial] = {}
    skipped: list[str] = []
    for instance_dir in instance_dirs:
        own = instance_dir.name == own_instance
        try:
            material = _load_instance(instance_dir, own=own)
        except XRoadError as e:
            if own:
                raise
            skipped.append(f"{instance_dir.name}: {e.message}")
            continue
        if own and material.instance != own_instance:
            raise _malformed(
                f"{instance_dir / SHARED_PARAMS_FILE} names instance {material.instance!r}, "
                f"expected {own_instance!r}"
            )
        if material.instance in by_instance:
            skipped.append(f"{instance_dir.name}: instance {material.instance!r} appears twice")
            continue
        by_instance[material.instance] = material
    return TrustStore(
        instance=own_instance, by_instance=MappingProxyType(by_instance), skipped=tuple(skipped)
    )


def load_trust_material(conf_dir: Path) -> TrustMaterial:
    """The own instance's trust material with every federated instance's CAs and TSAs merged in.

    Raises ``malformed_global_conf`` when the own instance has no readable shared parameters.
    """
    return load_trust_store(conf_dir).trust_material()
