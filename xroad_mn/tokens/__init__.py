"""Keys live in a token, never in clear: one abstraction for the security server and the registry.

A :class:`Token` generates keys, lists them (id, label, usage, algorithm, public key), signs with them and
deletes them; callers never see a private key. :class:`SoftwareToken` keeps PIN-encrypted PKCS#8 files
(X-Road's softtoken), :class:`Pkcs11Token` keeps keys inside an HSM. The PIN comes from
``XROAD_MN_TOKEN_PIN`` or a prompt (:func:`read_pin`, :func:`login_with_pin`), never from settings.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from cryptography import x509
    >>> from cryptography.x509.oid import NameOID
    >>> token = SoftwareToken(Path(tempfile.mkdtemp()) / "token")
    >>> token.initialize("1234")
    >>> token.login(read_pin({"XROAD_MN_TOKEN_PIN": "1234"}))
    >>> key = token.generate_key("ss1 sign", KeyUsage.SIGNING)
    >>> signer = token_signer(token, key.key_id)  # an algorithms.Signer: SigningKey(signer, cert, ...)
    >>> csr = build_csr(signer, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ss1")]))
    >>> csr.is_signature_valid
    True

Token methods block (files, the HSM, key derivation, RSA): async code calls them through
``asyncio.to_thread`` and signs once per drained batch (:func:`xroad_mn.signature.sign_batch`).
"""

from __future__ import annotations

from xroad_mn.tokens.base import (
    KeyAlgorithm,
    KeyInfo,
    KeyUsage,
    Token,
    TokenInfo,
    TokenSigner,
    TokenState,
    TokenType,
    token_signer,
)
from xroad_mn.tokens.config import TokenSettings, login_with_pin, open_token
from xroad_mn.tokens.csr import build_csr
from xroad_mn.tokens.hsm import Pkcs11Token
from xroad_mn.tokens.pin import PIN_ENV, read_new_pin, read_pin
from xroad_mn.tokens.software import SoftwareToken

__all__ = [
    "PIN_ENV",
    "KeyAlgorithm",
    "KeyInfo",
    "KeyUsage",
    "Pkcs11Token",
    "SoftwareToken",
    "Token",
    "TokenInfo",
    "TokenSettings",
    "TokenSigner",
    "TokenState",
    "TokenType",
    "build_csr",
    "login_with_pin",
    "open_token",
    "read_new_pin",
    "read_pin",
    "token_signer",
]
