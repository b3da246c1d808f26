"""The civil registry's SOAP service in ХУР/XYP's style, written with the adapter SDK.

``getCitizenIDCardInfo`` (XYP's ``WS100101_getCitizenIDCardInfo``: X-Road's strict identifier rules, which
the demo's nodes keep, allow no ``_`` in a service code, and a SOAP operation's name is its service code;
nodes with ``strict_identifier_checks = false`` carry XYP's own name) answers a citizen's
identity-card record (names in Cyrillic, civil id, sex, date and place of birth, registered address) by
registration number, from the General Authority for State Registration's demo database
(:mod:`adapters.demo.registries`). The SDK serves it at ``/soap`` with its WSDL at ``/wsdl`` (X-Road's
header elements, ``xrd:version`` ``v1``), validates the request, and answers
an unknown registration number with a SOAP fault ``not_found``::

    >>> from xroad_mn.database import create_engine
    >>> engine = create_engine("sqlite+aiosqlite:///.demo/registries/state_registration.db")
    >>> adapter = xyp_adapter(engine)
    >>> sorted(adapter.soap_operations)
    ['getCitizenIDCardInfo']
"""

from __future__ import annotations

import datetime
from typing import Annotated, Final

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.demo.registries import addresses, citizens
from adapters.sdk import Adapter, XRoadContext
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError

__all__ = ["NAMESPACE", "OPERATION", "CitizenIDCardInfo", "GetCitizenIDCardInfo", "xyp_adapter"]

NAMESPACE: Final = "http://xyp.gov.mn/civil-registry"
OPERATION: Final = "getCitizenIDCardInfo"
"""The operation's name, which is the X-Road service code."""
REGNUM_PATTERN: Final = r"^[А-ЯӨҮ]{2}[0-9]{8}$"


class GetCitizenIDCardInfo(BaseModel):
    """The request: whose card."""

    regnum: Annotated[str, Field(pattern=REGNUM_PATTERN, max_length=10)]


class CitizenIDCardInfo(BaseModel):
    """The identity-card record."""

    regnum: str
    civilId: str
    surname: str
    lastname: str
    firstname: str
    gender: str
    birthDate: datetime.date
    birthPlace: str
    nationality: str
    addressAimagName: str | None = None
    addressSoumName: str | None = None
    fullAddress: str | None = None


def xyp_adapter(engine: AsyncEngine, *, server_url: str | None = None) -> Adapter:
    """The SDK declaration of the civil registry's SOAP service over the state registration database
    ``engine`` reads (its owner disposes of it), served at ``server_url`` (the WSDL's address)."""
    adapter = Adapter(
        "ХУР civil registry (XYP)",
        "1.0.0",
        namespace=NAMESPACE,
        server_url=server_url,
        max_body_bytes=16 * 1024,
    )

    @adapter.soap(OPERATION, version="v1")
    async def get_citizen_id_card_info(ctx: XRoadContext, request: GetCitizenIDCardInfo) -> CitizenIDCardInfo:
        """A citizen's identity-card information by registration number"""
        query = (
            select(citizens, addresses.c.aimag_name, addresses.c.soum_name, addresses.c.full_address)
            .outerjoin(addresses, addresses.c.regnum == citizens.c.regnum)
            .where(citizens.c.regnum == request.regnum)
        )
        async with engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise XRoadError(
                FaultCode.NOT_FOUND, "no citizen is registered with that number", kind=ErrorKind.NOT_FOUND
            )
        return CitizenIDCardInfo(
            regnum=row["regnum"],
            civilId=row["civil_id"],
            surname=row["clan_name"],
            lastname=row["last_name"],
            firstname=row["first_name"],
            gender=str(row["sex"]),
            birthDate=row["birth_date"],
            birthPlace=f"{row['birth_aimag']}, {row['birth_soum']}",
            nationality=row["nationality"],
            addressAimagName=row["aimag_name"],
            addressSoumName=row["soum_name"],
            fullAddress=row["full_address"],
        )

    return adapter
