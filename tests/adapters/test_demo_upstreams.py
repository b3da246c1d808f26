"""The demo's two agencies that had systems before X-Road, each behind a ready adapter configured by the
demo's own TOML: the transport centre's REST API behind the HTTP adapter (paths mapped, its key and X-Road's
context in its own headers) and the social insurance office's SOAP service behind the SOAP adapter (the
X-Road header rewritten into its own, the body renamed both ways, its faults passed back), over the demo's
registers built on SQLite (a file per agency) and on PostgreSQL (one schema of their own)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from lxml import etree
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.demo.insurance_soap import (
    AUTH_NAMESPACE,
    MAX_REQUEST_BYTES,
    NAMESPACE,
    OPERATION,
    PATH,
    insurance_service,
)
from adapters.demo.registries import (
    AGENCIES,
    build_demo_registries,
    build_registries,
    contributions,
    registry_urls,
    vehicles,
)
from adapters.demo.services import CONFIGS_DIR, CONSUMER, INSURANCE, SALARY_SERVICE
from adapters.demo.transport_api import API_KEY_HEADER, BASE_PATH, transport_api
from adapters.ready.config import load_ready_adapter
from security_server.servicedesc import parse_wsdl
from tests.adapters.sdk_sample import served_app
from tests.conftest import PG_URL_ENV
from xroad_mn.database import create_engine, sqlite_url
from xroad_mn.identifiers import format_client_header, format_id
from xroad_mn.wire.faults import SOAP_ENV_NS
from xroad_mn.wire.soap import XROAD_NS, build_soap_request, parse_soap_message, soap_body

API_KEY: Final = "test-key-not-secret"
BACKENDS: Final = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
AGENCY_KEYS: Final = tuple(agency.key for agency in AGENCIES)
XROAD_HEADERS: Final = {
    "X-Road-Client": format_client_header(CONSUMER),
    "X-Road-Id": "MN-test-1",
    "X-Road-UserId": "MN-khanbank-officer-17",
}
SALARY: Final = INSURANCE.service(SALARY_SERVICE, "v1")


@dataclass
class Seen:
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


def recording(app: web.Application, seen: Seen) -> web.Application:
    @web.middleware
    async def record(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        if (request.content_length or 0) <= MAX_REQUEST_BYTES:  # the service refuses the others itself
            seen.requests.append((dict(request.headers), await request.read()))
        return await handler(request)

    app.middlewares.insert(0, record)
    return app


@dataclass(frozen=True)
class Registers:
    """The demo's registers on one backend: where each agency's tables are."""

    urls: dict[str, str]
    search_path: str | None = None

    def engine(self, agency: str) -> AsyncEngine:
        if self.search_path is None:
            return create_engine(self.urls[agency])
        return create_engine(
            self.urls[agency], connect_args={"server_settings": {"search_path": self.search_path}}
        )


@pytest.fixture(scope="module", params=BACKENDS)
def registers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registers]:
    if request.param == "sqlite":
        directory = tmp_path_factory.mktemp("registries")
        asyncio.run(build_demo_registries(directory))
        yield Registers(registry_urls(directory))
        return
    pg_url = os.environ.get(PG_URL_ENV)
    if not pg_url:
        pytest.skip(f"{PG_URL_ENV} is not set")
    found = Registers(dict.fromkeys(AGENCY_KEYS, pg_url), f"demo_upstreams_{uuid.uuid4().hex[:12]}")

    async def build() -> None:
        admin = create_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{found.search_path}"'))
        await admin.dispose()
        engine = found.engine("transport")
        try:
            await build_registries(dict.fromkeys(AGENCY_KEYS, engine))
        finally:
            await engine.dispose()

    async def drop() -> None:
        admin = create_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{found.search_path}" CASCADE'))
        await admin.dispose()

    asyncio.run(build())
    try:
        yield found
    finally:
        asyncio.run(drop())


@dataclass
class Upstream:
    adapter: str
    own: str
    seen: Seen


@pytest.fixture
async def transport(registers: Registers) -> AsyncIterator[Upstream]:
    engine = registers.engine("transport")
    seen = Seen()
    try:
        async with served_app(recording(transport_api(engine, api_key=API_KEY), seen)) as api:
            adapter = load_ready_adapter(
                CONFIGS_DIR / "vehicle-registry.toml",
                env={},
                overrides={
                    "host": "127.0.0.1",
                    "upstream": api + BASE_PATH,
                    "headers": {"set": {API_KEY_HEADER: API_KEY}},
                },
            )
            async with served_app(adapter.create_app()) as url:
                yield Upstream(url, api, seen)
    finally:
        await engine.dispose()


@pytest.fixture
async def insurance(registers: Registers) -> AsyncIterator[Upstream]:
    engine = registers.engine("social_insurance")
    seen = Seen()
    try:
        async with served_app(recording(insurance_service(engine), seen)) as legacy:
            adapter = load_ready_adapter(
                CONFIGS_DIR / "social-insurance.toml",
                env={},
                overrides={
                    "host": "127.0.0.1",
                    "upstream": legacy + PATH,
                    "server_url": "http://insurance.example.mn:8096",
                },
            )
            async with served_app(adapter.create_app()) as url:
                yield Upstream(url, legacy, seen)
    finally:
        await engine.dispose()


async def _get(url: str, headers: dict[str, str] = XROAD_HEADERS) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def _owner_with_vehicles(registers: Registers, at_least: int = 2) -> tuple[str, list[str]]:
    engine = registers.engine("transport")
    try:
        async with engine.connect() as conn:
            regnum = (
                await conn.execute(
                    select(vehicles.c.owner_regnum)
                    .group_by(vehicles.c.owner_regnum)
                    .having(func.count() >= at_least)
                    .order_by(vehicles.c.owner_regnum)
                    .limit(1)
                )
            ).scalar_one()
            plates = (
                await conn.execute(
                    select(vehicles.c.plate)
                    .where(vehicles.c.owner_regnum == regnum)
                    .order_by(vehicles.c.plate)
                )
            ).scalars()
            return regnum, list(plates)
    finally:
        await engine.dispose()


async def test_vehicles_through_the_http_adapter_come_from_the_centres_api(
    transport: Upstream, registers: Registers
) -> None:
    regnum, plates = await _owner_with_vehicles(registers)
    status, body = await _get(f"{transport.adapter}/owners/{quote(regnum)}/vehicles")
    assert status == 200, body
    assert body["regnum"] == regnum
    assert [car["plateNumber"] for car in body["cars"]] == plates
    assert all(car["owner"]["regnum"] == regnum for car in body["cars"])
    # The API got its key, and X-Road's context in its own headers; never X-Road's headers themselves.
    headers, _ = transport.seen.requests[-1]
    assert headers[API_KEY_HEADER] == API_KEY
    assert headers["X-Consumer"] == format_id(CONSUMER)
    assert headers["X-Operator"] == XROAD_HEADERS["X-Road-UserId"]
    assert headers["X-Request-Ref"] == XROAD_HEADERS["X-Road-Id"]
    assert not any(name.lower().startswith("x-road-") for name in headers)
    # A plate has a space in the register; percent-encoded in one path segment it reaches the right car.
    status, car = await _get(f"{transport.adapter}/vehicles/{quote(plates[0])}")
    assert status == 200, car
    assert car["plateNumber"] == plates[0]
    assert car["owner"]["regnum"] == regnum


@pytest.mark.parametrize(
    ("value", "status", "error"),
    [
        ("1234", 400, "invalid_plate"),
        ("..%2F..%2Fcitizens%2FУБ00000000%2Fcars", 400, "invalid_plate"),  # one segment, never a new path
        ("0000 ААА", 404, "not_found"),
    ],
)
async def test_the_apis_own_errors_are_passed_on(
    transport: Upstream, value: str, status: int, error: str
) -> None:
    got, body = await _get(f"{transport.adapter}/vehicles/{quote(value, safe='%')}")
    assert (got, body["error"]) == (status, error), body


async def test_the_centres_api_wants_its_key_and_a_consumer(transport: Upstream) -> None:
    url = f"{transport.own}{BASE_PATH}/cars/{quote('0000 ААА')}"
    status, body = await _get(url, headers={"X-Consumer": "MN/COM/2012345/kyc"})
    assert (status, body["error"]) == (401, "unauthorized")
    status, body = await _get(url, headers={API_KEY_HEADER: "wrong", "X-Consumer": "x"})
    assert (status, body["error"]) == (401, "unauthorized")
    status, body = await _get(url, headers={API_KEY_HEADER: API_KEY})
    assert (status, body["error"]) == (400, "consumer_required")
    # Without X-Road-Client the adapter refuses before the API is asked.
    status, body = await _get(f"{transport.adapter}/vehicles/{quote('0000 ААА')}", headers={})
    assert status == 400
    assert body["type"].startswith("client.")


def _salary_request(regnum: str, months: str | None = "6") -> bytes:
    extra = "" if months is None else f"<i:months>{months}</i:months>"
    body = (
        f'<i:{SALARY_SERVICE} xmlns:i="{NAMESPACE}"><i:regnum>{regnum}</i:regnum>{extra}</i:{SALARY_SERVICE}>'
    )
    return build_soap_request(
        CONSUMER, SALARY, "MN-test-2", body.encode(), user_id=XROAD_HEADERS["X-Road-UserId"]
    )


async def _soap(url: str, envelope: bytes) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=envelope, headers={"Content-Type": "text/xml; charset=utf-8"}) as resp,
    ):
        return resp.status, await resp.read()


async def _insured_person(registers: Registers) -> tuple[str, list[tuple[int, int, int]]]:
    engine = registers.engine("social_insurance")
    try:
        async with engine.connect() as conn:
            regnum = (
                await conn.execute(select(contributions.c.regnum).order_by(contributions.c.regnum).limit(1))
            ).scalar_one()
            rows = (
                await conn.execute(
                    select(contributions.c.year, contributions.c.month, contributions.c.salary_mnt)
                    .where(contributions.c.regnum == regnum)
                    .order_by(contributions.c.year.desc(), contributions.c.month.desc())
                    .limit(6)
                )
            ).all()
            return regnum, [(r.year, r.month, r.salary_mnt) for r in rows]
    finally:
        await engine.dispose()


async def test_salaries_through_the_soap_adapter_come_from_the_offices_service(
    insurance: Upstream, registers: Registers
) -> None:
    regnum, expected = await _insured_person(registers)
    status, data = await _soap(f"{insurance.adapter}/", _salary_request(regnum))
    assert status == 200, data
    message = parse_soap_message(data, content_type="text/xml")
    assert not message.is_fault
    answer = soap_body(message)
    assert answer.tag == f"{{{NAMESPACE}}}{SALARY_SERVICE}Response"
    assert answer.findtext(f"{{{NAMESPACE}}}regnum") == regnum
    got = [
        (int(s.findtext(f"{{{NAMESPACE}}}year") or 0), int(s.findtext(f"{{{NAMESPACE}}}month") or 0),
         int(s.findtext(f"{{{NAMESPACE}}}salaryAmount") or 0))
        for s in answer.iterfind(f"{{{NAMESPACE}}}salary")
    ]  # fmt: skip
    assert got == expected
    # The office's service got its own envelope: its operation, its header, nothing of X-Road's.
    _, sent = insurance.seen.requests[-1]
    root = etree.fromstring(sent)
    assert root.find(f"{{{SOAP_ENV_NS}}}Body/{{{NAMESPACE}}}{OPERATION}") is not None
    header = root.find(f"{{{SOAP_ENV_NS}}}Header")
    assert header is not None
    assert header.findtext(f"{{{AUTH_NAMESPACE}}}callerSystem") == format_id(CONSUMER)
    assert header.findtext(f"{{{AUTH_NAMESPACE}}}operator") == XROAD_HEADERS["X-Road-UserId"]
    assert not list(root.iter(f"{{{XROAD_NS}}}*"))


@pytest.mark.parametrize(
    ("regnum", "months", "words"),
    [
        ("УБ0000000", "6", "regnum is two Cyrillic letters"),
        ("' OR 1=1 --", "6", "regnum is two Cyrillic letters"),
        ("УБ00000000", "0", "months is between 1 and 60"),
        ("УБ00000000", "six", "months is a whole number"),
        ("УБ00000000", "٣", "months is a whole number"),
    ],
)
async def test_the_offices_faults_are_passed_back(
    insurance: Upstream, regnum: str, months: str, words: str
) -> None:
    status, data = await _soap(f"{insurance.adapter}/", _salary_request(regnum, months))
    assert status == 500, data
    fault = etree.fromstring(data).find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soapenv:Client"
    assert words in (fault.findtext("faultstring") or "")


@pytest.mark.parametrize(
    ("envelope", "words"),
    [
        (b"<not-xml", "the request"),
        (b"<x>" + b"a" * 70_000 + b"</x>", "larger than 65536 bytes"),
        (b'<!DOCTYPE x [<!ENTITY e "1">]><x>&e;</x>', "DOCTYPE"),
        (
            f'<s:Envelope xmlns:s="{SOAP_ENV_NS}"><s:Body><i:{OPERATION} xmlns:i="{NAMESPACE}"><i:regnum>'
            f"УБ00000000</i:regnum></i:{OPERATION}></s:Body></s:Envelope>".encode(),
            "callerSystem",
        ),
    ],
)
async def test_the_offices_service_refuses_bad_requests_with_client_faults(
    insurance: Upstream, envelope: bytes, words: str
) -> None:
    status, data = await _soap(insurance.own + PATH, envelope)
    assert status == 500
    fault = etree.fromstring(data).find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soapenv:Client"
    assert words in (fault.findtext("faultstring") or "")


async def test_the_soap_adapters_wsdl_is_what_the_node_publishes(insurance: Upstream) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{insurance.adapter}/wsdl") as resp:
        assert resp.status == 200
        document = await resp.read()
    parsed = parse_wsdl(document, source_url=f"{insurance.adapter}/wsdl")
    assert [(s.code, s.version, s.url) for s in parsed.services] == [
        (SALARY_SERVICE, "v1", "http://insurance.example.mn:8096/")
    ]


async def test_a_register_that_fails_is_each_services_own_error_not_a_stack_trace(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path / "empty.db"))  # no tables: every query fails
    try:
        async with served_app(transport_api(engine, api_key=API_KEY)) as api:
            status, body = await _get(
                f"{api}{BASE_PATH}/cars/{quote('0000 ААА')}",
                headers={API_KEY_HEADER: API_KEY, "X-Consumer": "x"},
            )
            assert (status, body["error"]) == (503, "register_unavailable")
        async with served_app(insurance_service(engine)) as legacy:
            envelope = (
                f'<s:Envelope xmlns:s="{SOAP_ENV_NS}"><s:Header>'
                f'<a:callerSystem xmlns:a="{AUTH_NAMESPACE}">x</a:callerSystem></s:Header><s:Body>'
                f'<i:{OPERATION} xmlns:i="{NAMESPACE}"><i:regnum>УБ00000000</i:regnum></i:{OPERATION}>'
                "</s:Body></s:Envelope>"
            ).encode()
            status, data = await _soap(legacy + PATH, envelope)
            fault = etree.fromstring(data).find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault")
            assert status == 500
            assert fault is not None
            assert fault.findtext("faultcode") == "soapenv:Server"
            assert fault.findtext("faultstring") == "the social insurance register cannot answer now"
    finally:
        await engine.dispose()
