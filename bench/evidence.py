"""Evidence costs per message: single signatures versus batch signatures of 1, 10, 100 and 1000 messages,
and ASiC-E containers of one signer verified one after another.

Run by ``make bench``::

    $ .venv/bin/python bench/evidence.py

Signs SOAP messages with a development PKI (:func:`trust_services.pki.build_dev_pki`) and verifies them
fully (digests, hash chain, signature value, signer, chain and OCSP), printing the wall-clock cost per
message. A batch signature pays for one private-key operation however many messages it covers, so the
per-message signing cost of a batch of 1000 must be a small fraction of a single signature's.

The container lines verify :data:`CONTAINER_COUNT` containers of one signer under one batch time-stamp
(as the message log archives them). Lines marked ``shared validator`` verify with one
:class:`~xroad_mn.validation.CertificateValidator` for all messages, which validates the signer's chain and
OCSP once; the others validate them for every message.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from trust_services.ocsp_responder import build_ocsp_response, status_lookup
from trust_services.pki import DevPki, build_dev_pki
from trust_services.tsa import build_timestamp_reply
from xroad_mn.asic import (
    AsicContainer,
    BatchTimestamp,
    build_timestamp_hash_chains,
    verify_container,
    write_container,
)
from xroad_mn.certs import XROAD_MN_PROFILE
from xroad_mn.globalconf.trust import ApprovedCA, ApprovedTSA, OcspResponder, TrustMaterial
from xroad_mn.hashchain import MessagePart
from xroad_mn.ocsp import build_ocsp_request
from xroad_mn.signature import SignatureData, SigningKey, sign, sign_batch, verify_signature
from xroad_mn.timestamp import build_timestamp_request, verify_timestamp_response
from xroad_mn.validation import CertificateValidator

BATCH_SIZES = (1, 10, 100, 1000)
SINGLE_COUNT = 200
"""Single signatures timed (per-message cost does not depend on the count)."""
CONTAINER_COUNT = 200
"""Containers of one signer verified in a row."""
MAX_BATCH_TO_SINGLE_RATIO = 0.2
"""A batch of 1000 must cost at most this fraction of 1000 single signatures, per message."""


def _message(i: int) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/'
        b'soap/envelope/" xmlns:xrd="http://x-road.eu/xsd/xroad.xsd"><SOAP-ENV:Header><xrd:id>'
        + str(i).encode()
        + b"</xrd:id></SOAP-ENV:Header><SOAP-ENV:Body><getRandom/></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )


def _dev_trust(pki: DevPki) -> TrustMaterial:
    ca = ApprovedCA(
        name="bench CA",
        top_ca=pki.root.certificate,
        intermediates=(pki.intermediate.certificate,),
        ocsp_responders=(),
        certificate_profile_info=XROAD_MN_PROFILE,
        authentication_only=False,
        instance=pki.instance,
        intermediate_ocsp_responders=(
            (OcspResponder("http://127.0.0.1:1", pki.ocsp_responder.certificate),),
        ),
    )
    tsa = ApprovedTSA("bench TSA", "http://127.0.0.1:1", pki.tsa.certificate, pki.instance)
    return TrustMaterial(pki.instance, (ca,), (tsa,), 3600, 60)


def _signing_key(pki: DevPki, now: datetime) -> SigningKey:
    issued = [c.certificate.serial_number for c in pki.issued_by_intermediate]
    leaf = build_ocsp_response(
        build_ocsp_request(pki.member_sign.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, issued),
        now=now,
    )
    intermediate = build_ocsp_response(
        build_ocsp_request(pki.intermediate.certificate, pki.root.certificate),
        issuer=pki.root,
        responder=pki.root,
        status_of=status_lookup({}, [pki.intermediate.certificate.serial_number]),
        now=now,
    )
    cert = pki.member_sign
    return SigningKey(cert.private_key, cert.certificate, (leaf, intermediate), cert.chain)


def _containers(pki: DevPki, key: SigningKey, now: datetime, count: int) -> list[bytes]:
    """``count`` containers of one signer, each message signed alone, under one batch time-stamp."""
    messages = [_message(i) for i in range(count)]
    signatures = [sign([MessagePart("/message.xml", m)], key) for m in messages]
    chains = build_timestamp_hash_chains([s.signature_xml for s in signatures])
    query = build_timestamp_request(chains.result_xml)
    token = verify_timestamp_response(build_timestamp_reply(query, tsa=pki.tsa, serial=1, now=now), query)
    return [
        write_container(AsicContainer(m, s, (), BatchTimestamp(token, chains.result_xml, chain)))
        for m, s, chain in zip(messages, signatures, chains.chains, strict=True)
    ]


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    pki = build_dev_pki(now)
    trust = _dev_trust(pki)
    key = _signing_key(pki, now)

    def verify(
        parts: list[MessagePart], data: SignatureData, validator: CertificateValidator | None = None
    ) -> None:
        verify_signature(
            data.signature_xml,
            parts,
            trust=validator or trust,
            expected_member=pki.member,
            at=now,
            hash_chain_result=data.hash_chain_result,
            hash_chain=data.hash_chain,
        )

    print(f"{'mode':<34}{'messages':>10}{'sign ms/msg':>14}{'verify ms/msg':>16}")

    def sign_each(messages: list[list[MessagePart]]) -> list[SignatureData]:
        return [sign(parts, key) for parts in messages]

    def verify_all(
        messages: list[list[MessagePart]],
        data: list[SignatureData],
        validator: CertificateValidator | None = None,
    ) -> None:
        for parts, one in zip(messages, data, strict=True):
            verify(parts, one, validator)

    singles = [[MessagePart("/message.xml", _message(i))] for i in range(SINGLE_COUNT)]
    start = time.perf_counter()
    signed = sign_each(singles)
    sign_s = time.perf_counter() - start
    verify_s = _timed(lambda: verify_all(singles, signed))
    single_sign_ms = 1000 * sign_s / SINGLE_COUNT
    print(f"{'single':<34}{SINGLE_COUNT:>10}{single_sign_ms:>14.3f}{1000 * verify_s / SINGLE_COUNT:>16.3f}")
    shared = CertificateValidator(trust)
    verify_s = _timed(lambda: verify_all(singles, signed, shared))
    print(
        f"{'single, shared validator':<34}{SINGLE_COUNT:>10}{'':>14}{1000 * verify_s / SINGLE_COUNT:>16.3f}"
    )

    per_message: dict[int, float] = {}
    for size in BATCH_SIZES:
        messages = [[MessagePart("/message.xml", _message(i))] for i in range(size)]
        start = time.perf_counter()
        batch = sign_batch(messages, key)
        sign_s = time.perf_counter() - start
        start = time.perf_counter()
        verify_all(messages, batch)
        verify_s = time.perf_counter() - start
        per_message[size] = 1000 * sign_s / size
        print(f"{'batch':<34}{size:>10}{per_message[size]:>14.3f}{1000 * verify_s / size:>16.3f}")

    containers = _containers(pki, key, now, CONTAINER_COUNT)

    def verify_containers(validator: CertificateValidator | None) -> None:
        for data in containers:
            verify_container(data, trust=validator or trust, expected_member=pki.member)

    verify_s = _timed(lambda: verify_containers(None))
    print(f"{'container':<34}{CONTAINER_COUNT:>10}{'':>14}{1000 * verify_s / CONTAINER_COUNT:>16.3f}")
    verify_s = _timed(lambda: verify_containers(CertificateValidator(trust)))
    print(
        f"{'container, shared validator':<34}{CONTAINER_COUNT:>10}{'':>14}"
        f"{1000 * verify_s / CONTAINER_COUNT:>16.3f}"
    )

    ratio = per_message[BATCH_SIZES[-1]] / single_sign_ms
    print(f"batch of {BATCH_SIZES[-1]} signs at {ratio:.1%} of a single signature's cost per message")
    if ratio > MAX_BATCH_TO_SINGLE_RATIO:
        print(f"FAIL: expected at most {MAX_BATCH_TO_SINGLE_RATIO:.0%}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
