"""The SDK on both sides of a real exchange: an SDK application is the provider's information system behind
node ss2, and :class:`~adapters.client.XRoadClient` calls it through node ss1's client proxy.

The federation (:mod:`tests.security_server.exchange_world`: trust services, the registry, two enrolled
nodes on 127.0.0.26 and 127.0.0.27) is built once for the module. The SDK application's REST operations are
registered from its own OpenAPI document and its SOAP operation from its own WSDL, as an agency would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import pytest
import pytest_asyncio

from adapters.client import XRoadClient
from adapters.sdk import XRoadContext
from tests.adapters.sdk_sample import (
    NAMESPACE,
    Citizen,
    GetCitizen,
    GetCitizenResponse,
    Registry,
    sample_adapter,
    served,
)
from tests.security_server.exchange_world import CONSUMER, PROVIDER, Federation, federation_in
from xroad_mn.errors import XRoadError

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADDRESSES: Final = ("127.0.0.26", "127.0.0.27")
PROVIDER_CLIENT: Final = f"SUBSYSTEM:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}"
CITIZENS: Final = PROVIDER.service("sdk-citizens")
UNGRANTED: Final = PROVIDER.service("sdk-ungranted")
GET_CITIZEN: Final = PROVIDER.service("getCitizenRecord", "v1")


@dataclass
class World:
    fed: Federation
    registry: Registry


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    registry = Registry()
    async with (
        federation_in(tmp_path_factory.mktemp("sdk-federation"), addresses=ADDRESSES) as fed,
        served(sample_adapter(registry)) as sdk_url,
    ):
        await fed.provider.cli(
            "service", "add", "--client", PROVIDER_CLIENT, "--openapi", f"{sdk_url}/openapi.json",
            "--code", CITIZENS.service_code,
        )  # fmt: skip
        await fed.provider.cli(
            "service", "add", "--client", PROVIDER_CLIENT, "--rest", sdk_url, "--code", UNGRANTED.service_code
        )
        await fed.provider.cli("service", "add", "--client", PROVIDER_CLIENT, "--wsdl", f"{sdk_url}/wsdl")
        await fed.grant(CITIZENS.service_code)
        await fed.grant(GET_CITIZEN.service_code)
        yield World(fed, registry)


async def test_rest_call_through_two_nodes_reaches_the_handler_with_its_context(world: World) -> None:
    # A Cyrillic data subject and user id travel as UTF-8 header values through both nodes.
    async with XRoadClient(world.fed.client_proxy, CONSUMER) as xroad:
        answer = await xroad.get(
            CITIZENS, "/citizens/УБ99112233", query={"full": "true"}, user_id="МН-офицер-7",
            issue="kyc-2026-17", data_subject="УБ12345678",
        )  # fmt: skip
    assert answer.status == 200, answer.body
    citizen = answer.model(Citizen)
    assert citizen.address.soum == "Сүхбаатар"
    assert answer.query_id.startswith("MN-")
    seen = world.registry.seen[-1]
    assert seen["full"] is True
    ctx: XRoadContext = seen["ctx"]
    assert ctx.client == CONSUMER
    assert ctx.query_id == answer.query_id
    assert ctx.request_id == answer.request_id
    assert ctx.request_id is not None
    assert (ctx.user_id, ctx.issue, ctx.data_subject) == ("МН-офицер-7", "kyc-2026-17", "УБ12345678")


async def test_invalid_input_comes_back_as_the_sdk_error_with_its_code(world: World) -> None:
    before = len(world.registry.seen)
    async with XRoadClient(world.fed.client_proxy, CONSUMER) as xroad:
        with pytest.raises(XRoadError) as caught:
            await xroad.get(CITIZENS, "/citizens", query={"limit": "1; DROP TABLE citizens"})
    assert caught.value.code == "client.bad_request"
    assert "query parameter 'limit'" in caught.value.message
    assert len(world.registry.seen) == before


async def test_a_service_without_an_access_right_is_access_denied(world: World) -> None:
    async with XRoadClient(world.fed.client_proxy, CONSUMER) as xroad:
        with pytest.raises(XRoadError) as caught:
            await xroad.get(UNGRANTED, "/citizens/УБ99112233")
    assert caught.value.has_code("access_denied")
    assert caught.value.code.startswith("server.")


async def test_typed_soap_call_through_two_nodes(world: World) -> None:
    query_id = f"MN-{uuid.uuid4()}"
    async with XRoadClient(world.fed.client_proxy, CONSUMER) as xroad:
        answer = await xroad.soap_call(
            GET_CITIZEN, GetCitizen(regnum="ДА01234567"), GetCitizenResponse, namespace=NAMESPACE,
            user_id="MN-officer-7", data_subject="ДА01234567", query_id=query_id,
        )  # fmt: skip
        assert answer.citizen.regnum == "ДА01234567"
        assert answer.asked_by == str(CONSUMER)
        assert (answer.user_id, answer.data_subject) == ("MN-officer-7", "ДА01234567")
        ctx: XRoadContext = world.registry.seen[-1]["ctx"]
        assert (ctx.service, ctx.query_id) == (GET_CITIZEN, query_id)

        with pytest.raises(XRoadError) as caught:  # the SDK's fault, passed back by both nodes
            await xroad.soap_call(
                GET_CITIZEN,
                GetCitizen.model_construct(regnum="ABCDEFGHIJKLMNOP", with_address=True),
                GetCitizenResponse,
                namespace=NAMESPACE,
            )
    assert caught.value.code == "client.bad_request"
    assert "'regnum'" in caught.value.message
