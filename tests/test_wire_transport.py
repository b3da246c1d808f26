"""The node-to-node transport message: X-Road's own test messages, exact bytes, round trips, hostile input."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.wire import transport
from xroad_mn.wire.rest import build_rest_request
from xroad_mn.wire.transport import (
    MAX_OCSP_RESPONSES,
    MAX_TRANSPORT_MESSAGE_BYTES,
    REST_REQUEST_CONTENT_TYPE,
    REST_RESPONSE_CONTENT_TYPE,
    TEXT_XML_UTF8,
    Attachment,
    TransportMessage,
    decode_transport_message,
    encode_transport_message,
)

MESSAGES = Path(__file__).parent / "data" / "xroad" / "soap" / "proxy-core-proxymessages"
OCSP = b"\x30\x03\x0a\x01\x06"  # a DER OCSPResponse shell: SEQUENCE { ENUMERATED 6 (unauthorized) }
SIG = b'<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#"/>'


def test_module_examples_run() -> None:
    assert doctest.testmod(transport).failed == 0


def read(name: str) -> tuple[str, bytes]:
    data = (MESSAGES / name).read_bytes()
    match = re.match(rb"--(\S+)", data)
    assert match is not None
    return f"multipart/mixed; charset=UTF-8; boundary={match.group(1).decode()}", data


# --------------------------------------------------------------------------------------------------------
# X-Road's ProxyMessageDecoderTest messages, with the verdicts its tests expect


def test_normal_request() -> None:
    msg = decode_transport_message(*read("normal.request"))
    assert msg.ocsp_responses == ()
    assert msg.message_content_type == "text/xml"
    assert msg.message.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert msg.message.endswith(b"</SOAP-ENV:Envelope>")
    assert msg.signature is not None
    assert msg.signature.startswith(b"<?xml")
    assert msg.signature.endswith(b"</asic:XAdESSignatures>")
    assert msg.fault is None
    assert not msg.is_rest


def test_normal_response_and_soap_fault_message() -> None:
    assert decode_transport_message(*read("normal.response")).signature is not None
    faulty = decode_transport_message(*read("normal-soapfault.request"))
    assert b"<faultcode>CODE</faultcode>" in faulty.message
    assert faulty.signature is not None


def test_ocsp_request_carries_the_der_ocsp_response() -> None:
    msg = decode_transport_message(*read("ocsp.request"))
    (ocsp,) = msg.ocsp_responses
    assert ocsp[0] == 0x30
    assert b"EJBCA Sample" in ocsp
    assert msg.signature is not None


def test_attachment_request() -> None:
    msg = decode_transport_message(*read("attachment.request"))
    (attachment,) = msg.attachments
    assert attachment.content_type == "text/plain"
    assert attachment.data
    assert msg.signature is not None


def test_fault_in_place_of_the_signature() -> None:
    msg = decode_transport_message(*read("fault-signature.request"))
    assert msg.signature is None
    assert msg.fault is not None
    assert b"Fault" in msg.fault


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("extracontent.request", FaultCode.INVALID_MESSAGE),
        ("invalid-contenttype-signature.request", FaultCode.INVALID_CONTENT_TYPE),
        ("invalid-soap-contenttype.request", FaultCode.INVALID_CONTENT_TYPE),
        ("invalid-ocsp.request", FaultCode.IO_ERROR),
    ],
)
def test_x_roads_invalid_messages_fail_with_x_roads_codes(name: str, code: str) -> None:
    with pytest.raises(XRoadError) as info:
        decode_transport_message(*read(name))
    assert info.value.code == code


def test_real_messages_round_trip_through_our_encoder() -> None:
    for name in ("normal.request", "ocsp.request", "attachment.request", "fault-signature.request"):
        msg = decode_transport_message(*read(name))
        assert decode_transport_message(*encode_transport_message(msg)) == msg


# --------------------------------------------------------------------------------------------------------
# Exact bytes (MultipartEncoder's layout)


def test_soap_with_attachments_exact_bytes() -> None:
    msg = TransportMessage(
        (OCSP,),
        "text/xml; charset=UTF-8",
        b"<soap/>",
        attachments=(
            Attachment((("Content-Type", "application/pdf"), ("content-id", "<a1>")), b"%PDF"),
            Attachment((("content-type", "text/plain"),), b"two"),
        ),
        hash_chain_result=b"<hcr/>",
        hash_chain=b"<hc/>",
        signature=SIG,
    )
    content_type, body = encode_transport_message(msg, boundary="xtopB")
    assert content_type == "multipart/mixed; charset=UTF-8; boundary=xtopB"
    assert body == (
        b"--xtopB\r\ncontent-type: application/ocsp-response\r\n\r\n" + OCSP + b"\r\n"
        b"--xtopB\r\ncontent-type: text/xml; charset=UTF-8\r\n\r\n<soap/>\r\n"
        b"--xtopB\r\ncontent-type: multipart/mixed; charset=UTF-8; boundary=xattB\r\n\r\n\r\n"
        b"--xattB\r\ncontent-type: application/pdf\r\ncontent-id: <a1>\r\n\r\n%PDF\r\n"
        b"--xattB\r\ncontent-type: text/plain\r\n\r\ntwo\r\n"
        b"--xattB--\r\n\r\n"
        b"--xtopB\r\ncontent-type: application/hash-chain-result\r\n\r\n<hcr/>\r\n"
        b"--xtopB\r\ncontent-type: application/hash-chain\r\n\r\n<hc/>\r\n"
        b"--xtopB\r\ncontent-type: signature/bdoc-1.0/ts\r\n\r\n" + SIG + b"\r\n"
        b"--xtopB--\r\n"
    )
    back = decode_transport_message(content_type, body)
    assert back.attachments[0].data == b"%PDF"
    assert back.attachments[0].content_type == "application/pdf"
    assert dict(back.attachments[0].headers)["content-id"] == "<a1>"
    assert back.hash_chain_result == b"<hcr/>"
    assert back.hash_chain == b"<hc/>"


def test_rest_response_with_fault_instead_of_signature() -> None:
    msg = TransportMessage((), REST_RESPONSE_CONTENT_TYPE, b"200\r\nOK\r\n", fault=b"<fault/>")
    _, body = encode_transport_message(msg, boundary="xtopF")
    assert body.endswith(
        b"\r\n--xtopF\r\ncontent-type: text/xml; charset=UTF-8\r\n\r\n<fault/>\r\n--xtopF--\r\n"
    )
    decoded = decode_transport_message("multipart/mixed; boundary=xtopF", body)
    assert decoded.fault == b"<fault/>"
    assert decoded.signature is None


def test_random_boundaries_are_x_roads_shape() -> None:
    msg = TransportMessage(
        (), TEXT_XML_UTF8, b"<s/>", attachments=(Attachment((("content-type", "a/b"),), b"x"),), signature=SIG
    )
    content_type, body = encode_transport_message(msg)
    top = content_type.rsplit("=", 1)[1]
    assert re.fullmatch(r"xtop[A-Za-z]{30}", top)
    assert f"boundary=xatt{top[4:]}".encode() in body
    assert encode_transport_message(msg)[0] != content_type


def test_whole_text_xml_body_is_a_fault_response() -> None:
    msg = decode_transport_message("text/xml; charset=UTF-8", b"<SOAP-ENV:Envelope/>")
    assert msg.fault == b"<SOAP-ENV:Envelope/>"
    assert msg.message == b""
    assert msg.signature is None


def test_real_rest_header_part_travels_in_a_request() -> None:
    request = build_rest_request(
        "PUT", "/r1/A/B/C/D/e/x", [("X-Road-Client", "A/B/C/F")], query_id="q", request_id="r"
    )
    msg = TransportMessage(
        (OCSP, OCSP), REST_REQUEST_CONTENT_TYPE, request.to_bytes(), rest_body=b"", signature=SIG
    )
    decoded = decode_transport_message(*encode_transport_message(msg))
    assert decoded.message == request.to_bytes()
    assert decoded.rest_body == b""  # an empty body part stays a body part
    assert decoded.is_rest


# --------------------------------------------------------------------------------------------------------
# Round trips

# MIME header values as written: whitespace after the colon is not part of the value (RFC 5322 unfolding).
_VALUE_CHAR = r"[A-Za-z0-9<>@./=;\-]"
_HEADER_VALUE = st.from_regex(rf"{_VALUE_CHAR}([A-Za-z0-9<>@./=;\- ]{{0,19}}{_VALUE_CHAR})?", fullmatch=True)
_ATTACHMENTS = st.lists(
    st.builds(
        lambda ct, extra, data: Attachment((("content-type", ct), *extra), data),
        st.sampled_from(["application/octet-stream", "text/plain; charset=UTF-8", "image/png"]),
        st.lists(
            st.tuples(st.sampled_from(["content-id", "content-transfer-encoding"]), _HEADER_VALUE), max_size=1
        ),
        st.binary(max_size=200),
    ),
    max_size=3,
)


@given(
    st.lists(st.binary(min_size=0, max_size=100).map(lambda b: bytes([0x30, len(b)]) + b), max_size=3),
    st.binary(max_size=300),
    _ATTACHMENTS,
    st.booleans(),
    st.binary(max_size=50),
)
def test_soap_round_trip(
    ocsp: list[bytes], message: bytes, attachments: list[Attachment], batch: bool, sig: bytes
) -> None:
    msg = TransportMessage(
        tuple(ocsp),
        "text/xml; charset=UTF-8",
        message,
        attachments=tuple(attachments),
        hash_chain_result=b"<r/>" if batch else None,
        hash_chain=b"<c/>" if batch else None,
        signature=sig,
    )
    assert decode_transport_message(*encode_transport_message(msg)) == msg


@given(st.binary(max_size=300), st.none() | st.binary(max_size=500), st.binary(max_size=50), st.booleans())
def test_rest_round_trip(header_part: bytes, body: bytes | None, sig: bytes, is_request: bool) -> None:
    kind = REST_REQUEST_CONTENT_TYPE if is_request else REST_RESPONSE_CONTENT_TYPE
    msg = TransportMessage((), kind, header_part, rest_body=body, signature=sig)
    assert decode_transport_message(*encode_transport_message(msg)) == msg


# --------------------------------------------------------------------------------------------------------
# Hostile input


def encoded(msg: TransportMessage) -> bytes:
    return encode_transport_message(msg, boundary="xtopH")[1]


CT = "multipart/mixed; charset=UTF-8; boundary=xtopH"
REST = TransportMessage(
    (OCSP,), REST_REQUEST_CONTENT_TYPE, b"GET\r\n/r1/A/B/C/D/e\r\n", rest_body=b"x", signature=SIG
)


def part(content_type: str, data: bytes) -> bytes:
    return b"--xtopH\r\ncontent-type: " + content_type.encode() + b"\r\n\r\n" + data + b"\r\n"


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        # the signature is missing
        (CT, part(REST_REQUEST_CONTENT_TYPE, b"hp") + b"--xtopH--\r\n", FaultCode.MISSING_SIGNATURE),
        # parts out of order: signature before the message
        (
            CT,
            part("signature/bdoc-1.0/ts", SIG) + part("text/xml", b"<s/>") + b"--xtopH--\r\n",
            FaultCode.INVALID_CONTENT_TYPE,
        ),
        # the body after the signature
        (
            CT,
            encoded(REST).replace(b"--xtopH--\r\n", b"")
            + part("application/x-road-rest-body", b"x")
            + b"--xtopH--\r\n",
            FaultCode.INVALID_MESSAGE,
        ),
        # OCSP after the message
        (
            CT,
            part("text/xml", b"<s/>")
            + part("application/ocsp-response", OCSP)
            + part("signature/bdoc-1.0/ts", SIG)
            + b"--xtopH--\r\n",
            FaultCode.INVALID_CONTENT_TYPE,
        ),
        # a hash chain without its result
        (
            CT,
            part("text/xml", b"<s/>")
            + part("application/hash-chain", b"c")
            + part("signature/bdoc-1.0/ts", SIG)
            + b"--xtopH--\r\n",
            FaultCode.INVALID_MESSAGE,
        ),
        # attachments with a REST message
        (
            CT,
            part(REST_REQUEST_CONTENT_TYPE, b"hp")
            + part("multipart/mixed; boundary=xattH", b"--xattH--")
            + part("signature/bdoc-1.0/ts", SIG)
            + b"--xtopH--\r\n",
            FaultCode.INVALID_CONTENT_TYPE,
        ),
        # no message at all
        (CT, part("application/ocsp-response", OCSP) + b"--xtopH--\r\n", FaultCode.INVALID_MESSAGE),
        # an OCSP part that is not DER
        (
            CT,
            part("application/ocsp-response", b"\x30\x05abc") + part("text/xml", b"<s/>") + b"--xtopH--\r\n",
            FaultCode.IO_ERROR,
        ),
        # the wrong boundary, no boundary, an unusable boundary, a wrong content type
        ("multipart/mixed; boundary=other", encoded(REST), FaultCode.INVALID_MESSAGE),
        ("multipart/mixed", encoded(REST), FaultCode.INVALID_CONTENT_TYPE),
        ('multipart/mixed; boundary="a\x01b"', encoded(REST), FaultCode.INVALID_CONTENT_TYPE),
        ("application/json", b"{}", FaultCode.INVALID_CONTENT_TYPE),
        # not closed, or garbage
        (CT, encoded(REST)[:-12], FaultCode.INVALID_MESSAGE),
        (CT, b"\x00\xff garbage", FaultCode.INVALID_MESSAGE),
        # attachments whose nested multipart is broken
        (
            CT,
            part("text/xml", b"<s/>")
            + part("multipart/mixed; boundary=xattH", b"--xattH\r\nno end")
            + part("signature/bdoc-1.0/ts", SIG)
            + b"--xtopH--\r\n",
            FaultCode.INVALID_MESSAGE,
        ),
    ],
)
def test_hostile_messages_fail_with_clear_codes(content_type: str, body: bytes, code: str) -> None:
    with pytest.raises(XRoadError) as info:
        decode_transport_message(content_type, body)
    assert info.value.code == code


def test_too_many_ocsp_parts() -> None:
    msg = TransportMessage((OCSP,) * (MAX_OCSP_RESPONSES + 1), "text/xml", b"<s/>", signature=SIG)
    with pytest.raises(XRoadError, match="OCSP") as info:
        decode_transport_message(*encode_transport_message(msg))
    assert info.value.code == FaultCode.INVALID_MESSAGE


def test_oversized_message() -> None:
    with pytest.raises(XRoadError, match="larger than") as info:
        decode_transport_message(CT, b"x" * (MAX_TRANSPORT_MESSAGE_BYTES + 1))
    assert info.value.code == FaultCode.INVALID_MESSAGE


def test_nested_multipart_inside_an_attachment_stays_opaque() -> None:
    inner = b"--deep\r\ncontent-type: multipart/mixed; boundary=deeper\r\n\r\n--deeper--\r\n--deep--\r\n"
    msg = TransportMessage(
        (),
        "text/xml",
        b"<s/>",
        attachments=(Attachment((("content-type", "multipart/mixed; boundary=deep"),), inner),),
        signature=SIG,
    )
    assert decode_transport_message(*encode_transport_message(msg)).attachments[0].data == inner


@pytest.mark.parametrize(
    "msg",
    [
        TransportMessage((), "text/xml", b"<s/>"),  # neither signature nor fault
        TransportMessage((), "text/xml", b"<s/>", signature=SIG, fault=b"<f/>"),
        TransportMessage((), "text/xml", b"<s/>", hash_chain=b"c", signature=SIG),
        TransportMessage(
            (),
            REST_REQUEST_CONTENT_TYPE,
            b"hp",
            attachments=(Attachment((("content-type", "a/b"),), b""),),
            signature=SIG,
        ),
        TransportMessage((), "text/xml", b"<s/>", rest_body=b"x", signature=SIG),
        TransportMessage((), "text/xml", b"<s/>", attachments=(Attachment((), b"no type"),), signature=SIG),
    ],
)
def test_encoder_refuses_malformed_messages(msg: TransportMessage) -> None:
    with pytest.raises(XRoadError) as info:
        encode_transport_message(msg)
    assert info.value.code == FaultCode.INTERNAL_ERROR


@given(st.binary(max_size=600))
def test_arbitrary_bodies_decode_or_fail_cleanly(noise: bytes) -> None:
    body = encoded(REST)
    cut = len(noise) % (len(body) + 1)
    outcome: TransportMessage | XRoadError
    try:
        outcome = decode_transport_message(CT, body[:cut] + noise)
    except XRoadError as e:
        outcome = e
    if isinstance(outcome, XRoadError):
        assert outcome.code in {
            FaultCode.INVALID_MESSAGE,
            FaultCode.INVALID_CONTENT_TYPE,
            FaultCode.MISSING_SIGNATURE,
            FaultCode.IO_ERROR,
        }
    else:
        assert outcome.signature is not None or outcome.fault is not None
