"""xroad-mn protocol core: X-Road 7 compatible identifiers, errors, evidence and global configuration.

The core is reusable: the security server, the central registry and the trust services build on it, and it
imports none of them. Its layers, checked by import-linter (``pyproject.toml``), from the top:

* ``cli`` — the ``xroad-mn`` root command and the core's sub-commands;
* ``admin`` and ``transport`` — everything that speaks HTTP (aiohttp);
* ``confclient`` and ``tokens`` — the configuration client and key tokens (files, HSMs);
* ``settings``, ``logs``, ``fileio``, ``database``, ``tasks`` — what every application runs on;
* the protocol and evidence modules, which do no I/O: ``management``, ``asic``, ``archive``, ``signature``,
  ``timestamp``, ``validation``, ``ocsp``, ``globalconf``, ``certs``, ``xades``, ``hashchain``, ``wire``,
  ``identifiers``, ``mime``, ``keys``, ``xmlsafe``, ``algorithms``, ``errors``.

Example::

    >>> from xroad_mn.identifiers import parse_id
    >>> parse_id("SUBSYSTEM:MN/GOV/9010001/civil-registry")
    SubsystemId(instance='MN', member_class='GOV', member_code='9010001', subsystem_code='civil-registry')
"""

__version__ = "0.1.0"
