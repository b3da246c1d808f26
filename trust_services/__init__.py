"""Development trust services for xroad-mn: a real certification authority, OCSP responder and TSA.

X-Road relies on outside trust services: a CA issues the members' signing and the security servers'
authentication certificates, an OCSP responder vouches for them, and an RFC 3161 time-stamping authority
stamps the message log. This package provides our own, for development, tests and demonstrations:

* :mod:`trust_services.pki` builds certificates as code (no I/O) — ``build_dev_pki(now)`` for tests;
* :mod:`trust_services.ca` turns a PKCS#10 request into a certificate under X-Road's profiles;
* :mod:`trust_services.ocsp_responder` and :mod:`trust_services.tsa` are pure bytes-in, bytes-out builders;
* :mod:`trust_services.store` keeps a CA directory on disk (``xroad-mn trust init``);
* :mod:`trust_services.app` serves it all over HTTP with aiohttp (``xroad-mn trust serve``).

Example::

    >>> from datetime import UTC, datetime
    >>> from trust_services.pki import build_dev_pki
    >>> pki = build_dev_pki(datetime(2025, 1, 1, tzinfo=UTC))  # doctest: +SKIP
    >>> pki.member_sign.certificate.subject.rfc4514_string()  # doctest: +SKIP
    'CN=5012345,O=GOV,C=MN'
"""
