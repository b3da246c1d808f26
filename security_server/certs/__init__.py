"""The node's own certificates: keys and CSRs for the CA's profile, a client of our CA, checked import.

* :mod:`security_server.certs.subjects` — the CSR subject for a ``certificateProfileInfo``;
* :mod:`security_server.certs.csr` — :func:`generate_key`, :func:`create_csr`;
* :mod:`security_server.certs.ca_client` — :func:`request_certificate` (``POST /ca/certificates``);
* :mod:`security_server.certs.import_` — :func:`import_certificate`, checked as X-Road's signer checks.

Example::

    >>> key = await generate_key(token, store, KeyUsage.AUTHENTICATION)  # doctest: +SKIP
    >>> new = await create_csr(token, store, trust, key.key_id)  # doctest: +SKIP
    >>> cert = await request_certificate(session, "http://127.0.0.1:8899", new.csr, KeyUsage.AUTHENTICATION)
    ... # doctest: +SKIP
    >>> (await import_certificate(token, store, trust, cert)).record.status  # doctest: +SKIP
    <CertificateStatus.SAVED: 'saved'>
"""

from security_server.certs.ca_client import request_certificate
from security_server.certs.csr import NewCsr, choose_ca, create_csr, generate_key, hosted_members
from security_server.certs.import_ import ImportedCertificate, certificate_usage, import_certificate
from security_server.certs.subjects import auth_subject, sign_subject

__all__ = [
    "ImportedCertificate",
    "NewCsr",
    "auth_subject",
    "certificate_usage",
    "choose_ca",
    "create_csr",
    "generate_key",
    "hosted_members",
    "import_certificate",
    "request_certificate",
    "sign_subject",
]
