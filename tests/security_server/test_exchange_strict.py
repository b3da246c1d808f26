"""``strict_identifier_checks`` end to end: XYP's service names through two nodes that turned X-Road's strict
identifier checks off, and what a strict node refuses, naming the setting.

Mongolia's XYP services are named like ``WS100101_getCitizenIDCardInfo``; X-Road's strict checks (on by
default) refuse the ``_``. The federation of :mod:`tests.security_server.exchange_world` runs its consumer
node ss1 on 127.0.0.44 and its provider node ss2 on 127.0.0.45, both with ``strict_identifier_checks =
false`` in ``node.toml`` (the CLI reads it too). The provider's information system is an SDK adapter on
127.0.0.44: its SOAP operation ``WS100101_getCitizenIDCardInfo`` is added from its WSDL, its REST API from
its OpenAPI document under the code ``WS100102_getCitizenPhoto``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Final
from urllib.parse import quote

import pytest
import pytest_asyncio
from pydantic import BaseModel, Field

from adapters.client import XRoadClient
from adapters.sdk import Adapter, XRoadContext
from tests.adapters.sdk_sample import served
from tests.security_server.exchange_world import CONSUMER, PROVIDER, Federation, federation_in
from tests.security_server.test_node_e2e import refused
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import RepresentedParty, format_colon_id
from xroad_mn.wire.faults import parse_soap_fault
from xroad_mn.wire.soap import build_soap_request

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADDRESSES: Final = ("127.0.0.44", "127.0.0.45")
"""This module's nodes (consumer, provider); nothing else of it binds another address but 127.0.0.1."""
NOT_STRICT: Final = {"strict_identifier_checks": False}
STRICT_ENV: Final = {"XROAD_MN_NODE__STRICT_IDENTIFIER_CHECKS": "true"}
XYP_NS: Final = "http://xyp.gov.mn/citizen"
CARD: Final = PROVIDER.service("WS100101_getCitizenIDCardInfo", "v1")
PHOTO: Final = PROVIDER.service("WS100102_getCitizenPhoto")
PROVIDER_CLIENT: Final = f"SUBSYSTEM:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}"
REGNUM: Final = "УБ99112233"
STRICT_ONLY: Final = "'_' which X-Road identifiers do not allow in strict mode"
SETTING: Final = "(node setting strict_identifier_checks = true)"


class CardRequest(BaseModel):
    regnum: Annotated[str, Field(max_length=10)]


class CardResponse(BaseModel):
    regnum: str
    card_number: str
    asked_by: str


class Photo(BaseModel):
    regnum: str
    media_type: str


def xyp_adapter(seen: list[str]) -> Adapter:
    """XYP's citizen register as an SDK adapter: the ID card (SOAP) and the photo (REST)."""
    adapter = Adapter("XYP citizen", "1.0.0", namespace=XYP_NS)

    @adapter.soap(CARD.service_code, version="v1")
    async def card(ctx: XRoadContext, request: CardRequest) -> CardResponse:
        """The citizen's ID card"""
        seen.append(CARD.service_code)
        return CardResponse(regnum=request.regnum, card_number="MN-0042", asked_by=str(ctx.client))

    @adapter.get("/photos/{regnum}")
    async def photo(ctx: XRoadContext, regnum: Annotated[str, Field(max_length=10)]) -> Photo:
        """The citizen's ID card photo."""
        seen.append(PHOTO.service_code)
        return Photo(regnum=regnum, media_type="image/jpeg")

    return adapter


@dataclass
class World:
    fed: Federation
    adapter_url: str
    seen: list[str] = field(default_factory=list)
    """The services the adapter answered, in order."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    seen: list[str] = []
    async with (
        federation_in(
            tmp_path_factory.mktemp("exchange-strict"), addresses=ADDRESSES, settings=(NOT_STRICT, NOT_STRICT)
        ) as fed,
        served(xyp_adapter(seen), host=ADDRESSES[0]) as url,
    ):
        provider = fed.provider
        await provider.cli("service", "add", "--client", PROVIDER_CLIENT, "--wsdl", f"{url}/wsdl")
        await provider.cli(
            "service", "add", "--client", PROVIDER_CLIENT, "--openapi", f"{url}/openapi.json",
            "--code", PHOTO.service_code,
        )  # fmt: skip
        await fed.grant(CARD.service_code)
        await fed.grant(PHOTO.service_code)
        yield World(fed, url, seen)


async def _admin(fed: Federation, server_code: str, method: str, path: str, body: Any, expect: int) -> Any:
    """An admin API call to a running node of ``fed`` with its first API key."""
    url = f"{fed.running[server_code].admin_url}/api/v1{path}"
    headers = {"Authorization": f"X-Road-ApiKey token={fed.api_keys[server_code]}"}
    async with fed.session.request(method, url, json=body, headers=headers) as resp:
        answer = await resp.json()
        assert resp.status == expect, answer
        return answer


async def test_xyp_soap_operation_through_two_nodes_without_strict_checks(world: World) -> None:
    async with XRoadClient(world.fed.client_proxy, CONSUMER) as xroad:
        answer = await xroad.soap_call(
            CARD, CardRequest(regnum=REGNUM), CardResponse, namespace=XYP_NS, user_id="MN-officer-7"
        )
    assert (answer.regnum, answer.card_number, answer.asked_by) == (REGNUM, "MN-0042", str(CONSUMER))
    assert world.seen[-1] == CARD.service_code


async def test_xyp_rest_code_through_two_nodes_without_strict_checks(world: World) -> None:
    async with XRoadClient(world.fed.client_proxy, CONSUMER) as xroad:
        answer = await xroad.get(PHOTO, f"/photos/{REGNUM}")
    assert answer.status == 200, answer.body
    assert answer.model(Photo) == Photo(regnum=REGNUM, media_type="image/jpeg")
    assert world.seen[-1] == PHOTO.service_code


async def test_the_non_strict_admin_api_takes_xyp_style_local_groups(world: World) -> None:
    fed = world.fed
    provider = quote(format_colon_id(PROVIDER), safe="")
    ss2 = fed.provider.server_code
    group = await _admin(fed, ss2, "POST", f"/clients/{provider}/local-groups",
                         {"code": "xyp_officers", "description": "XYP officers"}, 201)  # fmt: skip
    assert group["code"] == "xyp_officers"
    members = {"members": [format_colon_id(CONSUMER)]}
    await _admin(fed, ss2, "POST", f"/clients/{provider}/local-groups/xyp_officers/members", members, 200)
    rights = await _admin(fed, ss2, "POST", f"/clients/{provider}/services/{CARD.service_code}/access-rights",
                          {"subjects": ["LOCALGROUP:xyp_officers"]}, 201)  # fmt: skip
    assert [r["subject"] for r in rights] == ["LOCALGROUP:xyp_officers"]


async def test_a_strict_consumer_node_refuses_xyp_codes_and_names_the_setting(world: World) -> None:
    fed = world.fed
    await fed.stop_node(fed.consumer)
    await fed.start_node(fed.consumer, {"strict_identifier_checks": True})
    try:
        answered = len(world.seen)
        async with XRoadClient(fed.client_proxy, CONSUMER) as xroad:
            with pytest.raises(XRoadError) as caught:
                await xroad.get(PHOTO, f"/photos/{REGNUM}")
        assert caught.value.code == "client.invalid_service_identifier"
        assert STRICT_ONLY in caught.value.message
        assert caught.value.message.endswith(SETTING)
        async with fed.session.get(fed.rest_url(PHOTO.service_code, f"/photos/{REGNUM}"),
                                   headers=fed.client_header()) as resp:  # fmt: skip
            assert resp.status == 400
            assert resp.headers["X-Road-Error"] == "client.invalid_service_identifier"
        # SOAP too: the header's service code, read leniently, is held to the node's mode.
        async with XRoadClient(fed.client_proxy, CONSUMER) as xroad:
            with pytest.raises(XRoadError) as caught:
                await xroad.soap_call(CARD, CardRequest(regnum=REGNUM), CardResponse, namespace=XYP_NS)
        assert caught.value.code == "client.invalid_service_identifier"
        assert STRICT_ONLY in caught.value.message
        assert caught.value.message.endswith(SETTING)
        # A SOAP represented party is held to the mode as its REST header is.
        party = RepresentedParty("COM", "xyp_agent")
        envelope = build_soap_request(
            CONSUMER, PROVIDER.service("getCard", "v1"), "strict-party-1", b"<x:getCard xmlns:x='urn:x'/>",
            represented_party=party,
        )  # fmt: skip
        async with fed.session.post(
            fed.client_proxy, data=envelope, headers={"Content-Type": "text/xml; charset=utf-8"}
        ) as resp:
            fault = parse_soap_fault(await resp.read())
        assert fault.code.startswith("client."), fault.code
        assert STRICT_ONLY in fault.message
        assert fault.message.endswith(SETTING)
        assert len(world.seen) == answered  # nothing reached the provider
        # Its admin API refuses an XYP-style subsystem the same way.
        error = await _admin(fed, fed.consumer.server_code, "POST", "/clients",
                             {"client_id": "MN:GOV:9010001:xyp_gateway"}, 400)  # fmt: skip
        assert error["type"] == "client.invalid_client_identifier"
        assert STRICT_ONLY in error["message"]
        assert error["message"].endswith(SETTING)
    finally:
        await fed.stop_node(fed.consumer)
        await fed.start_node(fed.consumer)
    async with XRoadClient(fed.client_proxy, CONSUMER) as xroad:  # not strict again
        assert (await xroad.get(PHOTO, f"/photos/{REGNUM}")).status == 200


async def test_the_strict_cli_refuses_xyp_names_and_names_the_setting(world: World) -> None:
    provider = world.fed.provider
    wsdl = ("service", "add", "--client", PROVIDER_CLIENT, "--wsdl", f"{world.adapter_url}/wsdl")
    rest = ("service", "add", "--client", PROVIDER_CLIENT, "--rest", world.adapter_url,
            "--code", "WS100103_getCitizenAddress")  # fmt: skip
    services = f"SERVICE:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}"
    grant = (
        "access",
        "grant",
        "--service",
        f"{services}/{CARD.service_code}",
        "--to",
        format_colon_id(CONSUMER),
    )
    to_group = ("access", "grant", "--service", f"{services}/getCitizen", "--to", "LOCALGROUP:xyp_officers")
    for args, code in (
        (wsdl, "invalid_wsdl_service_identifier"),
        (rest, "invalid_identifier"),
        (grant, "invalid_service_identifier"),
        (to_group, "invalid_identifier"),
    ):
        error = await refused("node", *args, *provider.dir, code=code, env=STRICT_ENV)
        assert "strict mode" in error["message"]
        assert "strict_identifier_checks = true" in error["message"], error
    # Not strict, as node.toml says: the WSDL is read, and conflicts with itself already there.
    await refused("node", *wsdl, *provider.dir, code="conflict")
