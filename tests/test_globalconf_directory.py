"""Signed configuration directories: real X-Road directories, the configuration client's negatives, key
rotation, and directories we sign ourselves checked with the openssl CLI against the real anchor."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.crafted import HOSTILE_VARIANTS, dsa_public_key, hostile, with_public_key
from tests.globalconf_fixtures import (
    LEGACY_2013_PUBKEYS,
    SIGNED_CASES,
    SignedCase,
    anchor_for,
    signed_directory_files,
)
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import parse_anchor
from xroad_mn.globalconf.directory import (
    PartSpec,
    build_signed_directory,
    find_verification_certificate,
    parse_signed_directory,
    verify_part_content,
    verify_signed_directory,
)
from xroad_mn.globalconf.params import parse_shared_params

AT = datetime(2025, 1, 1, tzinfo=UTC)
INTERNAL_ANCHOR = "anchors/system-test-configuration_anchor_CS_internal.xml"
PUBLIC = "globalconf/signed/system-test-public"
CONFCLIENT = "globalconf/signed/confclient"


def _consumer(interop_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((interop_dir / "certs/common-test/consumer.pem").read_bytes())


def _internal_key(interop_dir: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key(
        (interop_dir / "certs/system-test-sign-keys/internal.key").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    cert = x509.load_pem_x509_certificate(
        (interop_dir / "certs/system-test-sign-keys/internal.crt").read_bytes()
    )
    return key, cert


# -- the real V6 directory and its anchor ----------------------------------------------------------------


def test_real_v6_internalconf_verifies_with_anchor(interop_dir: Path) -> None:
    anchor = parse_anchor((interop_dir / INTERNAL_ANCHOR).read_bytes())
    directory = parse_signed_directory((interop_dir / PUBLIC / "V6/internalconf").read_bytes())
    assert directory.version == 6
    assert directory.expire_date == datetime(2035, 11, 11, 3, 7, 40, tzinfo=UTC)
    assert directory.signature_algorithm == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
    assert [(p.content_identifier, p.instance) for p in directory.parts] == [
        ("SHARED-PARAMETERS", "DEV"),
        ("PRIVATE-PARAMETERS", "DEV"),
    ]
    assert directory.signed_data.startswith(b"--CNo5S3hBEIHbDGmANPgi\r\n")
    assert directory.signed_data.endswith(b"--CNo5S3hBEIHbDGmANPgi--\r\n")
    cert = verify_signed_directory(directory, anchor.verification_certs, at=AT)
    assert cert == anchor.verification_certs[0]
    for part in directory.parts:
        verify_part_content(part, (interop_dir / PUBLIC / part.content_location.lstrip("/")).read_bytes())


def test_real_v6_content_mismatch_is_invalid(interop_dir: Path) -> None:
    directory = parse_signed_directory((interop_dir / PUBLIC / "V6/internalconf").read_bytes())
    part = directory.parts_for("SHARED-PARAMETERS", "DEV")[0]
    data = (interop_dir / PUBLIC / part.content_location.lstrip("/")).read_bytes()
    with pytest.raises(XRoadError) as exc:
        verify_part_content(part, data + b" ")
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_INVALID)


def test_real_v6_expired_after_expire_date(interop_dir: Path) -> None:
    anchor = parse_anchor((interop_dir / INTERNAL_ANCHOR).read_bytes())
    directory = parse_signed_directory((interop_dir / PUBLIC / "V6/internalconf").read_bytes())
    with pytest.raises(XRoadError) as exc:
        verify_signed_directory(
            directory, anchor.verification_certs, at=datetime(2035, 11, 11, 3, 7, 41, tzinfo=UTC)
        )
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_OUTDATED)


def test_tampered_signed_bytes_fail(interop_dir: Path) -> None:
    anchor = parse_anchor((interop_dir / INTERNAL_ANCHOR).read_bytes())
    raw = (interop_dir / PUBLIC / "V6/internalconf").read_bytes()
    tampered = raw.replace(b"Expire-date: 2035-11-11", b"Expire-date: 2036-11-11")
    with pytest.raises(XRoadError) as exc:
        verify_signed_directory(parse_signed_directory(tampered), anchor.verification_certs, at=AT)
    assert exc.value.has_code(FaultCode.INVALID_SIGNATURE_VALUE)


def test_same_directory_with_lf_and_other_header_case_still_parses(interop_dir: Path) -> None:
    raw = (interop_dir / PUBLIC / "V6/internalconf").read_bytes()
    variant = raw.replace(b"\r\n", b"\n").replace(b"Content-identifier", b"CONTENT-IDENTIFIER")
    variant = variant.replace(b"instance='DEV'", b'instance="DEV"')
    directory = parse_signed_directory(variant)
    assert [p.instance for p in directory.parts] == ["DEV", "DEV"]


# -- every signed directory of the corpus, through the table the CLI tests share -----------------------------


def test_every_signed_directory_has_a_verdict(interop_dir: Path) -> None:
    assert {c.path for c in SIGNED_CASES} == signed_directory_files(interop_dir)
    assert len({c.id for c in SIGNED_CASES}) == len(SIGNED_CASES)


def _module_verdict(interop_dir: Path, case: SignedCase) -> None:
    anchor = parse_anchor(anchor_for(interop_dir, case))
    directory = parse_signed_directory((interop_dir / case.path).read_bytes())
    trusted = list(anchor.verification_certs)
    if case.shared_params is not None:
        shared = parse_shared_params((interop_dir / case.shared_params).read_bytes())
        trusted += shared.verification_certs(external=case.external)
    verify_signed_directory(directory, trusted, at=case.at)
    if case.files_root is not None:
        for part in directory.parts:
            content = (interop_dir / case.files_root / part.content_location.lstrip("/")).read_bytes()
            verify_part_content(part, content)


@pytest.mark.parametrize("case", SIGNED_CASES, ids=lambda c: c.id)
def test_signed_directory_verdicts(interop_dir: Path, case: SignedCase) -> None:
    if case.code is None:
        _module_verdict(interop_dir, case)
        return
    with pytest.raises(XRoadError) as exc:
        _module_verdict(interop_dir, case)
    assert exc.value.has_code(case.code)
    assert {k: exc.value.details.get(k) for k in case.details} == case.details


def test_rotated_directories_declare_their_version(interop_dir: Path) -> None:
    for version in ("V3", "V4", "V5"):
        for kind in ("internalconf", "externalconf"):
            directory = parse_signed_directory((interop_dir / PUBLIC / version / kind).read_bytes())
            assert directory.version == int(version[1:])


def test_v6_internalconf_not_verified_by_wrong_kind_of_source_cert(interop_dir: Path) -> None:
    base = interop_dir / PUBLIC / "V5"
    shared = parse_shared_params(next(base.glob("*/shared-params.xml")).read_bytes())
    directory = parse_signed_directory((base / "internalconf").read_bytes())
    with pytest.raises(XRoadError):
        verify_signed_directory(directory, shared.verification_certs(external=True), at=AT)


# -- configuration client fixtures -----------------------------------------------------------------------


def test_confclient_simple_lf_v2_valid_with_consumer(interop_dir: Path) -> None:
    directory = parse_signed_directory((interop_dir / CONFCLIENT / "test-conf-simple.txt").read_bytes())
    assert directory.version == 2
    assert [p.content_location for p in directory.parts] == [
        "/private-params.xml",
        "/shared-params.xml",
        "/foo.xml",
    ]
    at = datetime(2026, 5, 20, 17, 42, 54, tzinfo=UTC)
    verify_signed_directory(directory, [_consumer(interop_dir)], at=at)
    with pytest.raises(XRoadError) as exc:
        verify_signed_directory(directory, [_consumer(interop_dir)], at=at + timedelta(seconds=2))
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_OUTDATED)


def test_confclient_simple_with_producer_cert_is_missing_verification_cert(interop_dir: Path) -> None:
    directory = parse_signed_directory((interop_dir / CONFCLIENT / "test-conf-simple.txt").read_bytes())
    producer = x509.load_pem_x509_certificate((interop_dir / "certs/common-test/producer.pem").read_bytes())
    with pytest.raises(XRoadError) as exc:
        find_verification_certificate(directory, [producer])
    assert exc.value.has_code(FaultCode.GLOBAL_CONF_INVALID)
    assert exc.value.details["reason"] == "missing_verification_cert"


def test_confclient_detached_valid(interop_dir: Path) -> None:
    directory = parse_signed_directory((interop_dir / CONFCLIENT / "test-conf-detached.txt").read_bytes())
    verify_signed_directory(directory, [_consumer(interop_dir)], at=AT)
    assert [p.content_location for p in directory.parts] == ["/private-params.xml"]
    verify_part_content(
        directory.parts[0],
        (interop_dir / CONFCLIENT / "test-conf-detached/EE/private-params.xml").read_bytes(),
    )


@pytest.mark.parametrize("rel", [c.path for c in SIGNED_CASES if c.id.startswith("legacy-2013")])
def test_legacy_2013_signed_format_is_refused(interop_dir: Path, rel: str) -> None:
    # INDEX: the pre-release 2013 format (inner text/xml part, Content-Date, raw RSA .pubkey) "do not need to
    # support": it must be refused, never half-read. It has no Expire-date, so it cannot be valid.
    data = (interop_dir / rel).read_bytes()
    assert b"Content-Date: 2013-" in data
    with pytest.raises(XRoadError) as exc:
        parse_signed_directory(data)
    assert exc.value.has_code(FaultCode.MALFORMED_GLOBALCONF)
    assert exc.value.details["missing"] == "Expire-date"


@pytest.mark.parametrize("rel", LEGACY_2013_PUBKEYS)
def test_legacy_2013_pubkeys_are_not_directories(interop_dir: Path, rel: str) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_signed_directory((interop_dir / rel).read_bytes())
    assert exc.value.has_code(FaultCode.MALFORMED_GLOBALCONF)


def test_conf1_directory_is_refused_before_its_placeholder_parts(interop_dir: Path) -> None:
    # INDEX: conf1.txt INVALID, its conf1/ parts "malformed; unused": the directory is refused at parsing
    # (a truncated hash), before any part could be looked at.
    with pytest.raises(XRoadError) as exc:
        parse_signed_directory((interop_dir / CONFCLIENT / "conf1.txt").read_bytes())
    assert exc.value.has_code(FaultCode.MALFORMED_GLOBALCONF)
    assert "hash" in exc.value.message


def test_missing_date_reason(interop_dir: Path) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_signed_directory((interop_dir / CONFCLIENT / "test-conf-missing-date.txt").read_bytes())
    assert exc.value.details["missing"] == "Expire-date"


# -- directories we build -------------------------------------------------------------------------------


def _split_by_hand(data: bytes) -> tuple[bytes, bytes]:
    """Split the outer multipart by hand (not with our parser): the signed body and the signature."""
    outer = re.search(rb"boundary=([A-Za-z0-9]+)", data)
    assert outer is not None
    delim = b"--" + outer.group(1)
    # [top header, first part, signature part, "--" + epilogue]; each part starts with its delimiter's CRLF.
    pieces = data.split(b"\r\n" + delim)
    assert len(pieces) == 4
    signed = pieces[1].removeprefix(b"\r\n").split(b"\r\n\r\n", 1)[1]
    signature = base64.b64decode(pieces[2].split(b"\r\n\r\n", 1)[1].strip())
    return signed, signature


def _openssl_verify(openssl: str, tmp_path: Path, cert: x509.Certificate, signed: bytes, sig: bytes) -> str:
    (tmp_path / "pub.pem").write_bytes(
        cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "signed.bin").write_bytes(signed)
    (tmp_path / "sig.bin").write_bytes(sig)
    result = subprocess.run(
        [openssl, "dgst", "-sha512", "-verify", str(tmp_path / "pub.pem"),
         "-signature", str(tmp_path / "sig.bin"), str(tmp_path / "signed.bin")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def test_our_directory_verifies_against_real_anchor_and_openssl(
    interop_dir: Path, openssl: str, tmp_path: Path
) -> None:
    key, cert = _internal_key(interop_dir)
    shared = b"<shared/>\n"
    private = b"<private/>\n"
    expire = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    data = build_signed_directory(
        [
            ("SHARED-PARAMETERS", "DEV", "/V6/20260101000000000000000/shared-params.xml", shared),
            PartSpec("PRIVATE-PARAMETERS", "DEV", "/V6/20260101000000000000000/private-params.xml", private),
        ],
        expire,
        6,
        key,
        cert,
    )
    # Byte layout of the real directory: CRLF only, same header lines in the same order.
    assert b"\n" not in data.replace(b"\r\n", b"")
    real = (interop_dir / PUBLIC / "V6/internalconf").read_bytes()

    def shape(d: bytes) -> list[bytes]:
        masked = [re.sub(rb"(boundary=|^--|: ).*", rb"\1", line) for line in d.split(b"\r\n")]
        return [re.sub(rb"^[A-Za-z0-9+/]{40,}={0,2}$", b"<base64>", line) for line in masked]

    assert shape(data) == shape(real)
    # 1. Our own parser and verifier, with the real anchor.
    anchor = parse_anchor((interop_dir / INTERNAL_ANCHOR).read_bytes())
    directory = parse_signed_directory(data)
    assert directory.expire_date == expire
    verify_signed_directory(directory, anchor.verification_certs, at=AT)
    verify_part_content(directory.parts[0], shared)
    verify_part_content(directory.parts[1], private)
    # 2. An outside verifier on the byte range split by hand.
    signed, signature = _split_by_hand(data)
    assert signed == directory.signed_data
    assert (
        hashlib.sha512(cert.public_bytes(serialization.Encoding.DER)).digest()
        == directory.verification_cert_hash
    )
    assert "Verified OK" in _openssl_verify(
        openssl, tmp_path, anchor.verification_certs[0], signed, signature
    )
    assert "Verified OK" not in _openssl_verify(openssl, tmp_path, cert, signed + b"x", signature)


def _self_signed(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


def _ec_key_and_cert() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _self_signed(key, "ecSigningKey")


def test_ecdsa_directory_round_trip_and_openssl(openssl: str, tmp_path: Path) -> None:
    key, cert = _ec_key_and_cert()
    data = build_signed_directory(
        [("SHARED-PARAMETERS", "MN", "/V6/1/shared-params.xml", b"x")],
        datetime(2030, 1, 1, tzinfo=UTC),
        6,
        key,
        cert,
    )
    directory = parse_signed_directory(data)
    assert directory.signature_algorithm.endswith("#ecdsa-sha512")
    verify_signed_directory(directory, [cert], at=AT)
    signed, signature = _split_by_hand(data)
    assert "Verified OK" in _openssl_verify(openssl, tmp_path, cert, signed, signature)
    _, other_cert = _ec_key_and_cert()
    with pytest.raises(XRoadError):
        verify_signed_directory(directory, [other_cert], at=AT)


def test_build_refuses_header_injection(interop_dir: Path) -> None:
    key, cert = _internal_key(interop_dir)
    with pytest.raises(XRoadError):
        build_signed_directory(
            [("SHARED-PARAMETERS\r\nX: y", "DEV", "/a", b"")], datetime(2030, 1, 1, tzinfo=UTC), 6, key, cert
        )


# -- hostile verification certificates ------------------------------------------------------------------


def _directory_signed_with(cert: x509.Certificate) -> bytes:
    key, _ = _RSA_SIGNER
    return build_signed_directory(
        [("SHARED-PARAMETERS", "MN", "/V6/1/shared-params.xml", b"x")],
        datetime(2030, 1, 1, tzinfo=UTC),
        6,
        key,
        cert,
    )


def _rsa_signer() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _self_signed(key, "rsaSigningKey")


_RSA_SIGNER: Final = _rsa_signer()


@pytest.mark.parametrize("variant", HOSTILE_VARIANTS)
def test_hostile_verification_certificate(variant: str) -> None:
    """The anchor's verification certificate is trusted as configured (its own signature is never
    checked), so an unknown signature OID or odd RSA-PSS parameters on it change nothing; an X25519 key
    cannot have made the RSA signature."""
    cert = hostile(_RSA_SIGNER[1], variant)
    directory = parse_signed_directory(_directory_signed_with(cert))
    if variant != "x25519-key":
        assert verify_signed_directory(directory, [cert], at=AT) == cert
        return
    with pytest.raises(XRoadError) as info:
        verify_signed_directory(directory, [cert], at=AT)
    assert info.value.code == FaultCode.GLOBAL_CONF_INVALID


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_dsa_verification_certificate_where_rsa_signed_is_invalid() -> None:
    cert = with_public_key(_RSA_SIGNER[1], dsa_public_key())
    directory = parse_signed_directory(_directory_signed_with(cert))
    with pytest.raises(XRoadError) as info:
        verify_signed_directory(directory, [cert], at=AT)
    assert info.value.code == FaultCode.GLOBAL_CONF_INVALID


# -- fuzzing: nothing but XRoadError escapes the parser and verifier ---------------------------------------

_INTEROP = Path(__file__).resolve().parent / "data" / "xroad"
_REAL_DIRECTORY = _INTEROP / PUBLIC / "V6/internalconf"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(XRoadError):
        parse_signed_directory(data)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.integers(min_value=0),
    st.integers(min_value=0, max_value=80),
    st.sampled_from([b"", b"\r\n", b"\n", b"--", b";", b"'", b'"', b"=", b":", b" ", b"\x00", b"\xff", b"A"]),
    st.binary(max_size=8),
)
def test_fuzz_mutated_real_directory(pos: int, cut: int, token: bytes, noise: bytes) -> None:
    data = _REAL_DIRECTORY.read_bytes()
    i = pos % (len(data) + 1)
    mutated = data[:i] + token + noise + data[i + cut :]
    try:
        directory = parse_signed_directory(mutated)
    except XRoadError:
        return
    assert directory.raw[directory.signed_range[0] : directory.signed_range[1]] == directory.signed_data
    anchor = parse_anchor((_INTEROP / INTERNAL_ANCHOR).read_bytes())
    with contextlib.suppress(XRoadError):
        verify_signed_directory(directory, anchor.verification_certs, at=AT)
