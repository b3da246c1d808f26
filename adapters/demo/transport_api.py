"""The National Road Transport Centre's own REST API, as it ran before X-Road: the upstream of the demo's
HTTP ready adapter.

An agency rarely starts from nothing: its vehicle register already has an API that its own systems call,
with its own paths, field names and key. The demo serves one over the transport database
(:mod:`adapters.demo.registries`, table ``vehicles``) and puts it behind X-Road with no code, through the
HTTP ready adapter (``configs/demo/adapters/vehicle-registry.toml``), which maps X-Road's paths onto it and
adds its key:

* ``GET /api/v2/cars/{plate}`` — a vehicle by plate number (``1234 УБА`` or ``1234УБА``; XYP WS100401
  getVehicleInfo-style);
* ``GET /api/v2/citizens/{regnum}/cars`` — the vehicles a citizen owns (XYP WS100406
  getCitizenVehicleList-style).

Every call needs the API key (``X-Api-Key``, else 401) and names the calling system (``X-Consumer``, else
400): the adapter sets the first and fills the second from X-Road's ``X-Road-Client``, and passes the
officer as ``X-Operator``. Answers are the centre's JSON (camelCase), errors its own
``{"error": ..., "message": ...}`` (503 ``register_unavailable`` when its database fails); the adapter
passes both on as they are.
"""

from __future__ import annotations

import hmac
import re
from typing import Any, Final

import structlog
from aiohttp import web
from sqlalchemy import RowMapping, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.demo.registries import vehicles

__all__ = ["API_KEY_HEADER", "BASE_PATH", "transport_api"]

log = structlog.get_logger(__name__)

BASE_PATH: Final = "/api/v2"
API_KEY_HEADER: Final = "X-Api-Key"
CONSUMER_HEADER: Final = "X-Consumer"
OPERATOR_HEADER: Final = "X-Operator"
_PLATE: Final = re.compile(r"([0-9]{4}) ?([А-ЯӨҮ]{3})")
_REGNUM: Final = re.compile(r"[А-ЯӨҮ]{2}[0-9]{8}")


def _car(row: RowMapping) -> dict[str, Any]:
    """The centre's JSON for a vehicle row."""
    return {
        "plateNumber": row["plate"],
        "cabinNumber": row["vin"],
        "certificateNumber": row["certificate_number"],
        "markName": row["make"],
        "modelName": row["model"],
        "buildYear": row["build_year"],
        "colorName": row["colour"],
        "fuelType": row["fuel"],
        "capacity": row["engine_cc"],
        "mass": row["mass_kg"],
        "importDate": row["import_date"].isoformat(),
        "registeredDate": row["registered_on"].isoformat(),
        "owner": {
            "regnum": row["owner_regnum"],
            "lastname": row["owner_last_name"],
            "firstname": row["owner_first_name"],
            "type": row["owner_type"],
            "country": row["owner_country"],
        },
    }


def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


def transport_api(engine: AsyncEngine, *, api_key: str) -> web.Application:
    """The centre's API over the transport database ``engine`` reads (its owner disposes of it)."""

    @web.middleware
    async def authorised(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get(API_KEY_HEADER, "")
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            return _error(401, "unauthorized", "a valid X-Api-Key is required")
        if not request.headers.get(CONSUMER_HEADER):
            return _error(400, "consumer_required", "X-Consumer must name the calling system")
        log.info(
            "transport_api_call",
            path=request.path,
            consumer=request.headers[CONSUMER_HEADER],
            operator=request.headers.get(OPERATOR_HEADER),
        )
        try:
            response: web.StreamResponse = await handler(request)
        except SQLAlchemyError:  # the register's own failure: the API's error, never a stack trace
            log.exception("transport_api_query_failed", path=request.path)
            return _error(503, "register_unavailable", "the vehicle register cannot answer now")
        return response

    async def car(request: web.Request) -> web.Response:
        matched = _PLATE.fullmatch(request.match_info["plate"])
        if matched is None:
            return _error(400, "invalid_plate", "a plate number is four digits and three Cyrillic letters")
        plate = f"{matched[1]} {matched[2]}"  # as the register keeps it: 1234 УБА
        async with engine.connect() as conn:
            row = (await conn.execute(select(vehicles).where(vehicles.c.plate == plate))).mappings().first()
        if row is None:
            return _error(404, "not_found", "no vehicle is registered with that plate")
        return web.json_response(_car(row))

    async def citizen_cars(request: web.Request) -> web.Response:
        regnum = request.match_info["regnum"]
        if not _REGNUM.fullmatch(regnum):
            return _error(400, "invalid_regnum", "a registration number is two Cyrillic letters and 8 digits")
        query = select(vehicles).where(vehicles.c.owner_regnum == regnum).order_by(vehicles.c.plate)
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return web.json_response({"regnum": regnum, "count": len(rows), "cars": [_car(r) for r in rows]})

    app = web.Application(middlewares=[authorised])
    app.router.add_get(f"{BASE_PATH}/cars/{{plate}}", car)
    app.router.add_get(f"{BASE_PATH}/citizens/{{regnum}}/cars", citizen_cars)
    return app
