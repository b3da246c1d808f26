"""Global configuration: the signed data a central server publishes and security servers trust.

Pure format code (bytes in, objects out; no network, no files):

* :mod:`xroad_mn.globalconf.anchor` reads and writes configuration anchors;
* :mod:`xroad_mn.globalconf.directory` parses, verifies and builds signed configuration directories;
* :mod:`xroad_mn.globalconf.params` parses and builds shared and private parameters (V2-V6);
* :mod:`xroad_mn.globalconf.trust` turns parameters into trust material (approved CAs with their OCSP
  responders, approved time-stamping authorities, OCSP freshness).

Downloading, storing and reading an installed directory sit above, in :mod:`xroad_mn.confclient`.

Example::

    >>> from pathlib import Path
    >>> from xroad_mn.globalconf.trust import TrustMaterial
    >>> trust = TrustMaterial.from_shared_params(Path("shared-params.xml").read_bytes())  # doctest: +SKIP
    >>> trust.instance, trust.ocsp_freshness_seconds  # doctest: +SKIP
    ('DEV', 3600)
"""
