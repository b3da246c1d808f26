"""A civil registry written with the adapter SDK, and a way to serve it on loopback for a test."""

from __future__ import annotations

import datetime
import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from aiohttp import web
from pydantic import BaseModel, Field

from adapters.sdk import Adapter, XRoadContext, create_app
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.transport.server import ServerTimeouts, TimedSite, app_runner, http_url, listen

__all__ = [
    "NAMESPACE",
    "Registry",
    "sample_adapter",
    "served",
    "served_app",
]

NAMESPACE: Final = "http://civil-registry.mn/sdk"
REGNUM: Final = r"^[А-ЯӨҮ]{2}[0-9]{8}$"


class Gender(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"


class Address(BaseModel):
    aimag: str
    soum: str


class Citizen(BaseModel):
    regnum: str
    given_name: str = Field(description="Given name, in Cyrillic")
    birth_date: datetime.date
    gender: Gender
    address: Address
    phones: list[str] = []
    note: str | None = None


class NewCitizen(BaseModel):
    regnum: Annotated[str, Field(pattern=REGNUM)]
    given_name: Annotated[str, Field(min_length=1, max_length=50)]
    birth_date: datetime.date
    children: Annotated[int, Field(ge=0, le=30)] = 0


class Page(BaseModel):
    items: list[Citizen]
    limit: int


class GetCitizen(BaseModel):
    regnum: Annotated[str, Field(max_length=10)]
    with_address: bool = True


class GetCitizenResponse(BaseModel):
    citizen: Citizen
    asked_by: str
    user_id: str | None = None
    data_subject: str | None = None


@dataclass
class Registry:
    """What the handlers saw: each call's context and arguments."""

    seen: list[dict[str, Any]] = field(default_factory=list)


def _citizen(regnum: str) -> Citizen:
    return Citizen(
        regnum=regnum,
        given_name="Батбаяр",
        birth_date=datetime.date(1999, 11, 22),
        gender=Gender.MALE,
        address=Address(aimag="Улаанбаатар", soum="Сүхбаатар"),
        phones=["99112233", "88112233"],
    )


def sample_adapter(registry: Registry, *, server_url: str | None = None) -> Adapter:
    adapter = Adapter(
        "Civil registry", "2.1.0", namespace=NAMESPACE, server_url=server_url, max_body_bytes=16 * 1024
    )

    @adapter.get("/citizens/{regnum}", tag="citizens")
    async def get_citizen(
        ctx: XRoadContext, regnum: Annotated[str, Field(max_length=10)], full: bool = False
    ) -> Citizen:
        """One citizen by registration number.

        The citizen's record as the registry holds it."""
        registry.seen.append({"op": "get_citizen", "ctx": ctx, "regnum": regnum, "full": full})
        if regnum == "missing":
            raise XRoadError(FaultCode.NOT_FOUND, "no citizen is registered so", kind=ErrorKind.NOT_FOUND)
        return _citizen(regnum)

    @adapter.get("/citizens")
    async def list_citizens(
        ctx: XRoadContext,
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
        aimag: list[str] | None = None,
        born_after: datetime.date | None = None,
    ) -> Page:
        """Citizens, a page at a time."""
        registry.seen.append(
            {"op": "list_citizens", "limit": limit, "aimag": aimag, "born_after": born_after}
        )
        return Page(items=[_citizen("УБ99112233")], limit=limit)

    @adapter.post("/citizens", status=201)
    async def add_citizen(ctx: XRoadContext, body: NewCitizen) -> NewCitizen:
        """Register a citizen."""
        registry.seen.append({"op": "add_citizen", "body": body})
        return body

    @adapter.delete("/citizens/{regnum}")
    async def remove_citizen(regnum: str) -> None:
        """Remove a citizen."""
        registry.seen.append({"op": "remove_citizen", "regnum": regnum})

    @adapter.get("/broken")
    async def broken(request: web.Request) -> Citizen:
        """Answers something that is not a citizen."""
        return {"regnum": 42}  # type: ignore[return-value]

    @adapter.soap(version="v1")
    async def getCitizenRecord(ctx: XRoadContext, request: GetCitizen) -> GetCitizenResponse:
        """Get a citizen's record"""
        registry.seen.append({"op": "getCitizenRecord", "ctx": ctx, "request": request})
        return GetCitizenResponse(
            citizen=_citizen(request.regnum),
            asked_by=str(ctx.client),
            user_id=ctx.user_id,
            data_subject=ctx.data_subject,
        )

    return adapter


@asynccontextmanager
async def served(adapter: Adapter, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``adapter`` on ``host`` (a free port by default) as production does; yields its base URL."""
    async with served_app(create_app(adapter), host, port) as url:
        yield url


@asynccontextmanager
async def served_app(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` on ``host`` with the core's runner and timed site; yields its base URL."""
    sock = listen(host, port)
    timeouts = ServerTimeouts()
    runner = app_runner(app, timeouts)
    await runner.setup()
    try:
        await TimedSite(runner, sock, timeouts).start()
        yield http_url(host, sock.getsockname()[1])
    finally:
        await runner.cleanup()
        sock.close()
