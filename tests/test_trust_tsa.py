"""The TSA builder (RFC 3161), bytes in and bytes out, against the frozen-clock dev PKI."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import algos, cms, core, tsp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from trust_services.pki import DevPki, build_dev_pki
from trust_services.tsa import DEV_TSA_POLICY, build_timestamp_reply, parse_timestamp_query
from xroad_mn.errors import XRoadError
from xroad_mn.wire.faults import http_status_of

NOW = datetime(2025, 6, 1, 12, 0, 0, 654321, tzinfo=UTC)
DATA = b"<SOAP-ENV:Envelope/>"


@pytest.fixture(scope="module")
def pki() -> DevPki:
    return build_dev_pki(NOW)


def query(
    alg: str = "sha512",
    *,
    nonce: int | None = None,
    cert_req: bool = False,
    policy: str | None = None,
    digest: bytes | None = None,
) -> bytes:
    fields: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": alg},
            "hashed_message": digest if digest is not None else hashlib.new(alg, DATA).digest(),
        },
        "cert_req": cert_req,
    }
    if nonce is not None:
        fields["nonce"] = nonce
    if policy is not None:
        fields["req_policy"] = policy
    return bytes(tsp.TimeStampReq(fields).dump())


def granted(reply_der: bytes) -> tuple[cms.SignedData, tsp.TSTInfo]:
    reply = tsp.TimeStampResp.load(reply_der)
    assert reply["status"]["status"].native == "granted"
    signed_data = reply["time_stamp_token"]["content"]
    return signed_data, signed_data["encap_content_info"]["content"].parsed


def refused(reply_der: bytes) -> tuple[set[str], str]:
    reply = core.Sequence.load(reply_der)
    assert len(reply) == 1
    status = tsp.PKIStatusInfo.load(reply[0].dump())
    assert status["status"].native == "rejection"
    return set(status["fail_info"].native), str(status["status_string"].native[0])


@pytest.mark.parametrize("alg", ["sha256", "sha384", "sha512"])
def test_granted_token_contents_and_signature(pki: DevPki, alg: str) -> None:
    request = query(alg, nonce=2**70 + 5, cert_req=True)
    signed_data, tst = granted(build_timestamp_reply(request, tsa=pki.tsa, serial=77, now=NOW))
    # TSTInfo
    assert tst["version"].native == "v1"
    assert tst["policy"].native == DEV_TSA_POLICY
    assert tst["message_imprint"].dump() == tsp.TimeStampReq.load(request)["message_imprint"].dump()
    assert tst["serial_number"].native == 77
    assert tst["gen_time"].native == NOW.replace(microsecond=0)
    assert tst["nonce"].native == 2**70 + 5
    assert tst["tsa"].name == "directory_name"
    assert tst["tsa"].chosen.native["common_name"] == "MN dev TSA"
    # Signer and signed attributes
    assert signed_data["version"].native == "v3"
    assert [c.dump() for c in signed_data["certificates"]] == [
        pki.tsa.certificate.public_bytes(serialization.Encoding.DER)
    ]
    signer = signed_data["signer_infos"][0]
    assert signer["sid"].chosen["serial_number"].native == pki.tsa.serial
    attrs = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    assert attrs["content_type"].native == "tst_info"
    assert attrs["message_digest"].native == hashlib.sha256(tst.dump()).digest()
    assert attrs["signing_time"].native == NOW.replace(microsecond=0)
    ess = attrs["signing_certificate_v2"]["certs"][0]
    assert (
        ess["cert_hash"].native
        == hashlib.sha256(pki.tsa.certificate.public_bytes(serialization.Encoding.DER)).digest()
    )
    key = pki.tsa.certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(
        signer["signature"].native, signer["signed_attrs"].untag().dump(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_certificate_only_when_requested_and_no_nonce_when_absent(pki: DevPki) -> None:
    signed_data, tst = granted(build_timestamp_reply(query(), tsa=pki.tsa, serial=1, now=NOW))
    assert signed_data["certificates"].native is None
    assert tst["nonce"].native is None


@pytest.mark.parametrize(
    ("request_der", "fail_info", "text"),
    [
        (query("sha1"), "bad_alg", "sha1"),
        (query("md5"), "bad_alg", "md5"),
        (query("sha256", digest=b"\x00" * 20), "bad_data_format", "length"),
        (query(policy="1.2.3.4"), "unaccepted_policy", "1.2.3.4"),
    ],
)
def test_well_formed_queries_the_tsa_cannot_honour_get_a_rejection(
    pki: DevPki, request_der: bytes, fail_info: str, text: str
) -> None:
    infos, message = refused(build_timestamp_reply(request_der, tsa=pki.tsa, serial=1, now=NOW))
    assert infos == {fail_info}
    assert text in message


def test_requested_policy_equal_to_ours_is_granted(pki: DevPki) -> None:
    granted(build_timestamp_reply(query(policy=DEV_TSA_POLICY), tsa=pki.tsa, serial=1, now=NOW))


def test_openssl_verifies_reply_and_reads_rejection(pki: DevPki, openssl: str, tmp_path: Path) -> None:
    at = str(int(NOW.timestamp()))
    (tmp_path / "data").write_bytes(DATA)
    (tmp_path / "tsa.pem").write_bytes(pki.tsa.certificate_pem())
    (tmp_path / "root.pem").write_bytes(pki.root.certificate_pem())
    subprocess.run(
        [openssl, "ts", "-query", "-data", "data", "-sha384", "-cert", "-out", "q.tsq"],
        cwd=tmp_path,
        check=True,
    )
    reply = build_timestamp_reply((tmp_path / "q.tsq").read_bytes(), tsa=pki.tsa, serial=9, now=NOW)
    (tmp_path / "r.tsr").write_bytes(reply)
    for trust in (["-CAfile", "tsa.pem", "-partial_chain"], ["-CAfile", "root.pem"]):
        result = subprocess.run(
            [openssl, "ts", "-verify", "-in", "r.tsr", "-queryfile", "q.tsq", "-attime", at, *trust],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "Verification: OK" in result.stdout

    (tmp_path / "bad.tsr").write_bytes(build_timestamp_reply(query("sha1"), tsa=pki.tsa, serial=9, now=NOW))
    result = subprocess.run(
        [openssl, "ts", "-reply", "-in", "bad.tsr", "-text"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Status: Rejected" in result.stdout
    assert "Failure info: unrecognized or unsupported algorithm identifier" in result.stdout


@pytest.mark.parametrize("data", [b"", b"\x30\x00", b"\x30\x03\x02\x01\x01", b"not DER", query() + b"\x00"])
def test_malformed_queries_raise_invalid_timestamp_request(data: bytes) -> None:
    with pytest.raises(XRoadError) as exc:
        parse_timestamp_query(data)
    assert exc.value.has_code("invalid_timestamp_request")
    assert http_status_of(exc.value) == 400


def test_unknown_digest_oid_is_a_rejection_not_a_crash(pki: DevPki) -> None:
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": "1.2.3.4.5"}),
                "hashed_message": b"\x01" * 32,
            },
        }
    ).dump()
    infos, _ = refused(build_timestamp_reply(request, tsa=pki.tsa, serial=1, now=NOW))
    assert infos == {"bad_alg"}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_parser_never_raises_anything_but_xroad_error(data: bytes) -> None:
    error: XRoadError | None = None
    try:
        parse_timestamp_query(data)
    except XRoadError as e:
        error = e
    assert error is None or http_status_of(error) == 400


def test_always_mode_includes_the_certificate_without_cert_req(pki: DevPki) -> None:
    signed_data, _ = granted(
        build_timestamp_reply(query(), tsa=pki.tsa, serial=1, now=NOW, include_certificate="always")
    )
    assert [c.dump() for c in signed_data["certificates"]] == [
        pki.tsa.certificate.public_bytes(serialization.Encoding.DER)
    ]
    signed_data, _ = granted(
        build_timestamp_reply(query(), tsa=pki.tsa, serial=1, now=NOW, include_certificate="on_request")
    )
    assert signed_data["certificates"].native is None
