"""One prefixing rule for X-Road fault codes in REST errors and SOAP faults alike."""

from __future__ import annotations

import pytest

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.wire.faults import (
    as_sent,
    parse_rest_error,
    parse_soap_fault,
    render_rest_error,
    render_soap_fault,
)

CASES = [
    (XRoadError(FaultCode.BAD_REQUEST, "no", http_status=400), "client.bad_request"),
    (XRoadError(FaultCode.ACCESS_DENIED, "no", http_status=403), "client.access_denied"),
    (XRoadError(FaultCode.OCSP_FAILED, "down"), "server.ocsp_failed"),
    (XRoadError(FaultCode.INTERNAL_ERROR, "boom", http_status=502), "server.internal_error"),
    (
        XRoadError(FaultCode.ACCESS_DENIED, "no").with_prefix("server.serverproxy"),
        "server.serverproxy.access_denied",
    ),
    (XRoadError("client.invalid_body", "no", http_status=500), "client.invalid_body"),
    (XRoadError("signer.token_not_active", "no"), "signer.token_not_active"),
]


@pytest.mark.parametrize(("err", "code"), CASES, ids=[c for _, c in CASES])
def test_soap_and_rest_carry_the_same_prefixed_code(err: XRoadError, code: str) -> None:
    assert as_sent(err).code == code
    soap = parse_soap_fault(render_soap_fault(err))
    assert (soap.code, soap.detail) == (code, err.detail)
    rest = render_rest_error(err)
    assert rest.headers["X-Road-Error"] == code
    assert parse_rest_error(rest.body).code == code
