"""The PKCS#11 token: keys generated and used inside an HSM, through ``python-pkcs11``.

A private key is made on the token with ``CKA_SENSITIVE`` and without ``CKA_EXTRACTABLE``, so the HSM never
gives it out; its public half is a public object (``CKA_PRIVATE`` false), listed without logging in. Both
halves share a random 20-byte ``CKA_ID`` (the key id, in hex). X-Road keeps a key's usage outside the HSM
(``keyconf.xml``); here it is the label's prefix, ``sign:`` or ``auth:``, so the token alone says it.

Data is hashed here and the digest signed inside: ``CKM_RSA_PKCS`` over a DigestInfo, ``CKM_RSA_PKCS_PSS``
and ``CKM_ECDSA`` over the digest, as X-Road's signer does; every HSM offers these raw mechanisms.

    >>> token = Pkcs11Token(Path("/usr/lib/softhsm/libsofthsm2.so"), "xroad")  # doctest: +SKIP
    >>> token.login(read_pin())  # doctest: +SKIP
    >>> key = token.generate_key("sign key", KeyUsage.SIGNING)  # doctest: +SKIP

The module is loaded once per process (PKCS#11 ``C_Initialize``); a token initialised after that is seen
only by a new process. PKCS#11 login belongs to the whole process, not to a session: use one
:class:`Pkcs11Token` per token per process. Its one session serves every thread, one call at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import threading
from pathlib import Path
from typing import Final

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import MGF, Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11_errors
from pkcs11.types import SignMixin
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from xroad_mn.algorithms import SignatureScheme
from xroad_mn.errors import FaultCode
from xroad_mn.keys import PublicKey
from xroad_mn.tokens.base import (
    KeyAlgorithm,
    KeyInfo,
    KeyUsage,
    TokenInfo,
    TokenState,
    TokenType,
    algorithm_of,
    check_label,
    check_scheme,
    signer_error,
)

__all__ = ["Pkcs11Token"]

_KEY_ID: Final = re.compile(r"^(?:[0-9a-f]{2}){1,64}$")
_USAGE_PREFIX: Final = {f"{usage.value}:": usage for usage in KeyUsage}

# DER DigestInfo prefixes for PKCS#1 v1.5 (RFC 8017, 9.2 note 1).
_DIGEST_INFO: Final = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_PSS_PARAMS: Final = {
    "sha256": (Mechanism.SHA256, MGF.SHA256),
    "sha384": (Mechanism.SHA384, MGF.SHA384),
    "sha512": (Mechanism.SHA512, MGF.SHA512),
}
_CAPABILITIES: Final = MechanismFlag.SIGN | MechanismFlag.VERIFY
_PUBLIC_TEMPLATE: Final = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
}
_PRIVATE_TEMPLATE: Final = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
}


def _public_key(obj: pkcs11.PublicKey) -> PublicKey | None:
    """The public key of a PKCS#11 public-key object, or ``None`` for a kind we do not use."""
    try:
        if obj.key_type == KeyType.RSA:
            n = int.from_bytes(obj[Attribute.MODULUS], "big")
            e = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if obj.key_type == KeyType.EC:
            public = serialization.load_der_public_key(encode_ec_public_key(obj))
            return public if isinstance(public, ec.EllipticCurvePublicKey) else None
    except (p11_errors.PKCS11Error, ValueError):
        return None
    return None


def _split_label(cka_label: str) -> tuple[str, KeyUsage | None]:
    for prefix, usage in _USAGE_PREFIX.items():
        if cka_label.startswith(prefix):
            return cka_label[len(prefix) :], usage
    return cka_label, None


class Pkcs11Token:
    """The token labelled ``token_label`` in the PKCS#11 ``module`` (a shared library path)."""

    def __init__(self, module: Path, token_label: str) -> None:
        self.module = module
        self.token_label = token_label
        self._lock = threading.RLock()
        self._session: pkcs11.Session | None = None
        self._handles: dict[str, tuple[KeyInfo, SignMixin]] = {}
        """Keys found since login: signing looks each one up once."""

    def __repr__(self) -> str:
        return f"Pkcs11Token({str(self.module)!r}, {self.token_label!r})"

    def _token(self) -> pkcs11.Token:
        try:
            lib = pkcs11.lib(str(self.module))
        except (OSError, RuntimeError) as e:
            raise signer_error(
                FaultCode.TOKEN_NOT_AVAILABLE, f"cannot load the PKCS#11 module {self.module}: {e}"
            ) from e
        try:
            return lib.get_token(token_label=self.token_label)
        except (p11_errors.NoSuchToken, p11_errors.MultipleTokensReturned) as e:
            raise signer_error(
                FaultCode.TOKEN_NOT_AVAILABLE,
                f"PKCS#11 module {self.module} has no single token labelled {self.token_label!r}",
            ) from e
        except p11_errors.PKCS11Error as e:
            raise signer_error(FaultCode.TOKEN_NOT_AVAILABLE, f"PKCS#11 token unavailable: {e!r}") from e

    def _require_session(self) -> pkcs11.Session:
        if self._session is None:
            raise signer_error(
                FaultCode.TOKEN_NOT_ACTIVE, f"PKCS#11 token {self.token_label} is not logged in"
            )
        return self._session

    def _list(self, session: pkcs11.Session) -> list[KeyInfo]:
        out: list[KeyInfo] = []
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY}):
            assert isinstance(obj, pkcs11.PublicKey)
            key_id = bytes(obj.id or b"").hex()
            public = _public_key(obj)
            algorithm = algorithm_of(public) if public is not None else None
            if not _KEY_ID.match(key_id) or public is None or algorithm is None:
                continue  # not a key this token can use: no id, or a kind we do not sign with
            label, usage = _split_label(obj.label or "")
            out.append(KeyInfo(key_id, label, usage, algorithm, public))
        return out

    # -- Token ------------------------------------------------------------------------------------------

    def info(self) -> TokenInfo:
        with self._lock:
            state = TokenState.LOGGED_IN if self._session is not None else TokenState.LOGGED_OUT
            return TokenInfo(TokenType.PKCS11, self.token_label, state, len(self.list_keys()))

    def login(self, pin: str) -> None:
        with self._lock:
            token = self._token()
            if self._session is not None:
                self.logout()
            try:
                self._session = token.open(user_pin=pin, rw=True)
            except (p11_errors.PinIncorrect, p11_errors.PinInvalid, p11_errors.PinLenRange) as e:
                raise signer_error(
                    FaultCode.PIN_INCORRECT, f"the PIN of token {self.token_label} is incorrect"
                ) from e
            except p11_errors.UserAlreadyLoggedIn as e:
                raise signer_error(
                    FaultCode.LOGIN_FAILED,
                    f"token {self.token_label} is logged in by another object of this process: use one",
                ) from e
            except p11_errors.PKCS11Error as e:
                raise signer_error(
                    FaultCode.LOGIN_FAILED, f"login to token {self.token_label} failed: {e!r}"
                ) from e

    def logout(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            self._handles.clear()
            if session is not None:
                # A session the module has already dropped is closed all the same.
                with contextlib.suppress(p11_errors.PKCS11Error):
                    session.close()

    def list_keys(self) -> list[KeyInfo]:
        with self._lock:
            if self._session is not None:
                return self._list(self._session)
            try:
                with self._token().open() as session:
                    return self._list(session)
            except p11_errors.PKCS11Error as e:
                raise signer_error(FaultCode.TOKEN_NOT_AVAILABLE, f"cannot list keys: {e!r}") from e

    def key(self, key_id: str) -> KeyInfo:
        for info in self.list_keys():
            if info.key_id == key_id:
                return info
        raise signer_error(FaultCode.KEY_NOT_FOUND, f"key {key_id[:80]!r} not found", key_id=key_id[:80])

    def generate_key(
        self, label: str, usage: KeyUsage, algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048
    ) -> KeyInfo:
        usage, algorithm = KeyUsage(usage), KeyAlgorithm(algorithm)
        cka_label = f"{usage.value}:{check_label(label)}"
        cka_id = secrets.token_bytes(20)
        with self._lock:
            session = self._require_session()
            try:
                if algorithm is KeyAlgorithm.EC_P256:
                    params = session.create_domain_parameters(
                        KeyType.EC,
                        {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                        local=True,
                    )
                    public, private = params.generate_keypair(
                        id=cka_id,
                        label=cka_label,
                        store=True,
                        capabilities=_CAPABILITIES,
                        public_template=_PUBLIC_TEMPLATE,
                        private_template=_PRIVATE_TEMPLATE,
                    )
                else:
                    public, private = session.generate_keypair(
                        KeyType.RSA,
                        algorithm.rsa_bits,
                        id=cka_id,
                        label=cka_label,
                        store=True,
                        capabilities=_CAPABILITIES,
                        public_template=_PUBLIC_TEMPLATE,
                        private_template=_PRIVATE_TEMPLATE,
                    )
                sealed = private[Attribute.SENSITIVE] and not private[Attribute.EXTRACTABLE]
            except p11_errors.PKCS11Error as e:
                raise signer_error(
                    FaultCode.FAILED_TO_GENERATE_PRIVATE_KEY, f"the token did not generate a key: {e!r}"
                ) from e
            public_key = _public_key(public)
            if not sealed or public_key is None:
                self._destroy(session, cka_id)
                raise signer_error(
                    FaultCode.FAILED_TO_GENERATE_PRIVATE_KEY,
                    "the token made a key that is extractable or unreadable; it was destroyed",
                )
            return KeyInfo(cka_id.hex(), label, usage, algorithm, public_key)

    @staticmethod
    def _destroy(session: pkcs11.Session, cka_id: bytes) -> int:
        count = 0
        for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            for obj in list(session.get_objects({Attribute.CLASS: cls, Attribute.ID: cka_id})):
                obj.destroy()
                count += 1
        return count

    def delete_key(self, key_id: str) -> None:
        if not _KEY_ID.match(key_id):
            raise signer_error(FaultCode.KEY_NOT_FOUND, f"key {key_id[:80]!r} not found", key_id=key_id[:80])
        with self._lock:
            session = self._require_session()
            self._handles.pop(key_id, None)
            try:
                destroyed = self._destroy(session, bytes.fromhex(key_id))
            except p11_errors.PKCS11Error as e:
                raise signer_error(
                    FaultCode.FAILED_TO_DELETE_KEY, f"cannot delete key {key_id}: {e!r}"
                ) from e
            if destroyed == 0:
                raise signer_error(FaultCode.KEY_NOT_FOUND, f"key {key_id} not found", key_id=key_id)

    def _find(self, session: pkcs11.Session, key_id: str) -> tuple[KeyInfo, SignMixin]:
        info = self.key(key_id)
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=bytes.fromhex(key_id))
        if not isinstance(private, SignMixin):
            raise signer_error(FaultCode.CANNOT_SIGN, f"key {key_id} cannot sign", key_id=key_id)
        self._handles[key_id] = (info, private)
        return info, private

    def sign(self, key_id: str, scheme: SignatureScheme, data: bytes) -> bytes:
        digest = hashlib.new(scheme.hash_name, data).digest()
        with self._lock:
            session = self._require_session()
            try:
                info, private = self._handles.get(key_id) or self._find(session, key_id)
                check_scheme(info, scheme)
                if scheme.key_type == "ec":
                    raw = private.sign(digest, mechanism=Mechanism.ECDSA)
                elif scheme.is_pss:
                    hash_mech, mgf = _PSS_PARAMS[scheme.hash_name]
                    return private.sign(
                        digest,
                        mechanism=Mechanism.RSA_PKCS_PSS,
                        mechanism_param=(hash_mech, mgf, len(digest)),
                    )
                else:
                    return private.sign(_DIGEST_INFO[scheme.hash_name] + digest, mechanism=Mechanism.RSA_PKCS)
            except (p11_errors.NoSuchKey, p11_errors.MultipleObjectsReturned) as e:
                raise signer_error(
                    FaultCode.KEY_NOT_FOUND, f"no single private key {key_id} on the token", key_id=key_id
                ) from e
            except p11_errors.UserNotLoggedIn as e:
                raise signer_error(FaultCode.TOKEN_NOT_ACTIVE, f"token {self.token_label} logged out") from e
            except p11_errors.PKCS11Error as e:
                raise signer_error(
                    FaultCode.CANNOT_SIGN, f"the token did not sign: {e!r}", key_id=key_id
                ) from e
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
