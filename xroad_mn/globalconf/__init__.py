"""Global configuration: the signed data a central server publishes and security servers trust.

Submodules:

* :mod:`xroad_mn.globalconf.trust` reads the trust material (approved CAs with their OCSP responders,
  approved time-stamping authorities, OCSP freshness) from a stored configuration directory.

Example::

    >>> from pathlib import Path
    >>> from xroad_mn.globalconf.trust import load_trust_material
    >>> trust = load_trust_material(Path("/etc/xroad/globalconf"))  # doctest: +SKIP
    >>> trust.instance, trust.ocsp_freshness_seconds  # doctest: +SKIP
    ('DEV', 3600)
"""
