"""Message log test helpers: signed log records from the dev PKI, and trust material approving the dev
trust services' real TSA."""

from __future__ import annotations

from pathlib import Path

from security_server.messagelog import LogRecord
from tests.test_signature import SOAP, Evidence
from trust_services.store import TrustServiceStore
from xroad_mn.globalconf.trust import ApprovedTSA, TrustMaterial
from xroad_mn.hashchain import MessagePart
from xroad_mn.identifiers import MemberId
from xroad_mn.signature import SignatureData, sign, sign_batch

CLIENT = MemberId("MN", "GOV", "5012345")
"""The client of :data:`tests.test_signature.SOAP`, whose signing key the dev PKI holds."""
SERVICE = MemberId("MN", "GOV", "9999").service("getRandom")
DEAD_TSA = "http://127.0.0.1:1/tsa"


def soap_message(query_id: str) -> bytes:
    return SOAP.replace(b"6f2d0a1e", query_id.encode())


def record_for(
    query_id: str,
    signature: SignatureData,
    *,
    message: bytes | None = None,
    attachments: tuple[bytes, ...] = (),
    response: bool = False,
) -> LogRecord:
    return LogRecord(
        query_id=query_id,
        x_request_id=f"xreq-{query_id}",
        client=CLIENT,
        service=SERVICE,
        response=response,
        rest=False,
        message=message if message is not None else soap_message(query_id),
        attachments=attachments,
        signature=signature,
    )


def signed_record(
    evidence: Evidence, query_id: str, *, attachments: tuple[bytes, ...] = (), response: bool = False
) -> LogRecord:
    """A request (or response) signed alone (hash-chain form when it has attachments)."""
    message = soap_message(query_id)
    parts = [MessagePart("/message.xml", message)] + [
        MessagePart(f"/attachment{i}", a) for i, a in enumerate(attachments, start=1)
    ]
    return record_for(query_id, sign(parts, evidence.key), attachments=attachments, response=response)


def batch_signed_records(evidence: Evidence, query_ids: list[str]) -> list[LogRecord]:
    """Records sharing one batch signature, as the batch signer makes them."""
    messages = [soap_message(q) for q in query_ids]
    signatures = sign_batch([[MessagePart("/message.xml", m)] for m in messages], evidence.key)
    return [record_for(q, s) for q, s in zip(query_ids, signatures, strict=True)]


def trust_with_tsas(evidence: Evidence, trust_dir: Path, urls: list[str]) -> TrustMaterial:
    """The dev PKI's CA with the trust services' TSA at each of ``urls`` (in order)."""
    cert = TrustServiceStore.open(trust_dir).tsa.certificate
    tsas = tuple(ApprovedTSA(f"TSA {i}", url, cert, evidence.trust.instance) for i, url in enumerate(urls))
    return TrustMaterial(evidence.trust.instance, evidence.trust.approved_cas, tsas, 3600, 60)
