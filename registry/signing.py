"""The registry's configuration signing keys live in a token (:mod:`xroad_mn.tokens`), never in clear.

The token is the one ``[token]`` names (a software token in ``HOME/token`` by default); its PIN comes from
``XROAD_MN_TOKEN_PIN`` or a prompt, never from settings. The database keeps each key's token key id and
its self-signed certificate, which is built here and signed through the token: ``cryptography``'s
``CertificateBuilder.sign`` wants a private key, so the ``TBSCertificate`` is built with ``asn1crypto``,
signed by the token's :class:`~xroad_mn.algorithms.Signer` and assembled, then checked before it is returned.

Example::

    >>> token = registry_token(settings)  # doctest: +SKIP
    >>> create_token(token, read_new_pin())  # `registry init`: a new software token, logged in
    >>> login = TokenLogin(token)  # `registry serve`: logs in on first use, with the PIN of read_pin
    >>> key_id, info, cert = new_signing_key(login(), KeyKind.INTERNAL, "MN", datetime.now(UTC))

Token calls block (key derivation from the PIN, file or HSM I/O, RSA): async code runs them with
``asyncio.to_thread``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

import structlog
from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from registry.globalconf_gen import KeyKind
from registry.settings import RegistrySettings
from xroad_mn.algorithms import SignatureScheme, scheme_for, sign
from xroad_mn.errors import FaultCode
from xroad_mn.keys import KeyOrSigner, key_type
from xroad_mn.tokens import (
    KeyAlgorithm,
    KeyInfo,
    KeyUsage,
    SoftwareToken,
    Token,
    TokenState,
    login_with_pin,
    open_token,
    read_new_pin,
    token_signer,
)
from xroad_mn.tokens.base import signer_error

__all__ = [
    "SIGNING_KEY_ALGORITHM",
    "SIGNING_KEY_VALIDITY",
    "TokenLogin",
    "create_token",
    "new_signing_key",
    "read_new_pin",
    "registry_token",
    "self_signed_certificate",
    "signing_key_label",
]

log = structlog.get_logger(__name__)

SIGNING_KEY_ALGORITHM: Final = KeyAlgorithm.RSA_2048
SIGNING_KEY_VALIDITY: Final = timedelta(days=20 * 365)
"""X-Road's configuration signing certificates are self-signed and valid for 20 years."""
_CLOCK_SKEW: Final = timedelta(minutes=5)
_ALGORITHMS: Final = {
    SignatureScheme.RSA_PKCS1_SHA256: "sha256_rsa",
    SignatureScheme.RSA_PKCS1_SHA384: "sha384_rsa",
    SignatureScheme.RSA_PKCS1_SHA512: "sha512_rsa",
    SignatureScheme.ECDSA_SHA256: "sha256_ecdsa",
    SignatureScheme.ECDSA_SHA384: "sha384_ecdsa",
    SignatureScheme.ECDSA_SHA512: "sha512_ecdsa",
}
_UTC_TIME_YEARS: Final = range(1950, 2050)
"""RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050."""


def registry_token(settings: RegistrySettings) -> Token:
    """The token ``settings`` names, logged out (a software token in ``HOME/token`` by default)."""
    return open_token(settings.token, default_directory=settings.token_directory())


def create_token(token: Token, pin: str) -> None:
    """Set up the token of a new registry and log in: a software token is initialised with ``pin``
    (``conflict`` when it already is); a PKCS#11 token is initialised by its own tools and only logged in."""
    if isinstance(token, SoftwareToken):
        token.initialize(pin)
    token.login(pin)


class TokenLogin:
    """The registry's token, logged in on first use: ``login()`` returns it ready to sign.

    The PIN is ``pin`` when given (an embedding program such as the demo), else :func:`read_pin`'s (the
    environment or a prompt). Safe to call from several threads; :meth:`logout` forgets the PIN and keys.
    """

    def __init__(self, token: Token, *, pin: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.token = token
        self._pin = pin
        self._env = env
        self._lock = threading.Lock()

    def __call__(self) -> Token:
        with self._lock:
            return login_with_pin(self.token, self._pin, env=self._env)

    def for_migration(self) -> Token:
        """:meth:`__call__` for the migration that moves keys kept in clear into the token: a registry made
        before tokens has no software token yet, so it is created here with the PIN (asked twice on a
        terminal), and only here, where keys need it."""
        with self._lock:
            if (
                isinstance(self.token, SoftwareToken)
                and self.token.info().state is TokenState.NOT_INITIALIZED
            ):
                pin = self._pin if self._pin is not None else read_new_pin(self._env)
                self.token.initialize(pin)
                self.token.login(pin)
                log.info("registry_token_created", token=repr(self.token))
        return self()

    @property
    def initialized(self) -> bool:
        """Whether the token exists (a software token's directory is initialised)."""
        return self.token.info().state is not TokenState.NOT_INITIALIZED

    def logout(self) -> None:
        with self._lock:
            self.token.logout()


def _time(value: datetime) -> asn1_x509.Time:
    choice = "utc_time" if value.year in _UTC_TIME_YEARS else "general_time"
    return asn1_x509.Time({choice: value})


class _RawExtension(asn1_core.Sequence):  # type: ignore[misc]
    """An extension from its DER value, whatever its type (``cryptography`` encodes the value)."""

    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("extn_id", asn1_core.ObjectIdentifier),
        ("critical", asn1_core.Boolean, {"default": False}),
        ("extn_value", asn1_core.OctetString),
    ]


def self_signed_certificate(
    signer: KeyOrSigner,
    subject: x509.Name,
    *,
    not_before: datetime,
    not_after: datetime,
    extensions: Sequence[x509.Extension[x509.ExtensionType]] = (),
    hash_name: str = "sha256",
    serial_number: int | None = None,
) -> x509.Certificate:
    """A self-signed X.509 v3 certificate for ``signer``'s key, signed through ``signer`` (a token's key).

    RSA keys sign with PKCS#1 v1.5, EC keys with ECDSA, over ``hash_name``.
    ``signer.cannot_sign`` when the assembled certificate's signature does not verify.
    """
    scheme = scheme_for(key_type(signer), hash_name)
    algorithm = {
        "algorithm": _ALGORITHMS[scheme],
        # RSA signature algorithm identifiers carry an explicit NULL (RFC 4055); ECDSA ones carry nothing.
        "parameters": asn1_core.Null() if scheme.key_type == "rsa" else None,
    }
    spki = signer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    name = asn1_x509.Name.load(subject.public_bytes())
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial_number if serial_number is not None else x509.random_serial_number(),
            "signature": algorithm,
            "issuer": name,
            "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
            "subject": name,
            "subject_public_key_info": asn1_keys.PublicKeyInfo.load(spki),
            "extensions": [
                asn1_x509.Extension.load(
                    _RawExtension(
                        {
                            "extn_id": ext.oid.dotted_string,
                            "critical": ext.critical,
                            "extn_value": ext.value.public_bytes(),
                        }
                    ).dump()
                )
                for ext in extensions
            ]
            or None,
        }
    )
    signature = sign(signer, scheme, tbs.dump())
    der = asn1_x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature}
    ).dump()
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature) as e:
        raise signer_error(
            FaultCode.CANNOT_SIGN, f"the token's signature over the certificate does not verify: {e}"
        ) from e
    return cert


def signing_key_label(kind: KeyKind, owner: str) -> str:
    """The label of a configuration signing key in the token (``owner``: the instance, or the key id)."""
    return f"{owner[:60]} {kind.value} configuration signing"


def new_signing_key(
    token: Token, kind: KeyKind, instance: str, now: datetime
) -> tuple[str, KeyInfo, x509.Certificate]:
    """A new configuration signing key made in ``token`` (logged in): the registry's key id, the token's
    key and its self-signed certificate (valid for :data:`SIGNING_KEY_VALIDITY`), signed by the token.

    Blocks (RSA key generation, the token's files): call it in a thread.
    """
    info = token.generate_key(signing_key_label(kind, instance), KeyUsage.SIGNING, SIGNING_KEY_ALGORITHM)
    key_id = info.key_id.upper()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{instance} {kind.value} configuration signing"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, key_id),
        ]
    )
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    try:
        cert = self_signed_certificate(
            token_signer(token, info.key_id),
            name,
            not_before=now - _CLOCK_SKEW,
            not_after=now + SIGNING_KEY_VALIDITY,
            extensions=[
                x509.Extension(
                    x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=False, path_length=None)
                ),
                x509.Extension(x509.KeyUsage.oid, True, usage),
            ],
        )
    except BaseException:
        token.delete_key(info.key_id)  # no key without its certificate
        raise
    return key_id, info, cert
