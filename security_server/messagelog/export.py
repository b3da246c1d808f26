"""Evidence out: the logged messages of an exchange as ASiC-E containers, and X-Road's ``GET /asic``.

:func:`export_exchange` turns the records of a query id into containers named as X-Road names them
(``<queryId>-request-<id in base32>.asice``, ``-response-``), built with :func:`xroad_mn.asic.write_container`
(with the batch time-stamp's token and hash chains, or the single time-stamp inside the signature). They
verify offline with ``xroad-mn asic verify`` (and X-Road's ``asicverifier``) against the node's global
configuration. :func:`asic_response` answers the client proxy's ``/asic`` request as X-Road's
``AsicContainerClientRequestProcessor`` does.

Example::

    >>> files = await export_exchange(store, "MN-5c1f...", client=client)  # doctest: +SKIP
    >>> [name for name, _ in files]  # doctest: +SKIP
    ['MN-5c1f...-request-1.asice', 'MN-5c1f...-response-2.asice']
    >>> answer = await asic_response(store, request.query, timestamper=timestamper)  # doctest: +SKIP
    >>> answer.content_type, answer.filename  # doctest: +SKIP
    ('application/zip', 'MN-5c1f....zip')
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from security_server.messagelog.store import MessageLogStore, StoredRecord
from security_server.messagelog.timestamper import Timestamper
from xroad_mn.archive import asic_entry_name, escape_query_id
from xroad_mn.asic import MIMETYPE, AsicContainer, write_container
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, MemberId

__all__ = [
    "ASIC_PARAMETERS",
    "ZIP_CONTENT_TYPE",
    "AsicQuery",
    "AsicResponse",
    "asic_response",
    "container_of",
    "export_exchange",
    "parse_asic_query",
    "write_containers",
]

ZIP_CONTENT_TYPE: Final = "application/zip"
PARAM_INSTANCE: Final = "xRoadInstance"
PARAM_MEMBER_CLASS: Final = "memberClass"
PARAM_MEMBER_CODE: Final = "memberCode"
PARAM_SUBSYSTEM_CODE: Final = "subsystemCode"
PARAM_QUERY_ID: Final = "queryId"
PARAM_REQUEST_ONLY: Final = "requestOnly"
PARAM_RESPONSE_ONLY: Final = "responseOnly"
PARAM_UNIQUE: Final = "unique"
PARAM_FORCE: Final = "force"
ASIC_PARAMETERS: Final = (
    PARAM_INSTANCE,
    PARAM_MEMBER_CLASS,
    PARAM_MEMBER_CODE,
    PARAM_SUBSYSTEM_CODE,
    PARAM_QUERY_ID,
    PARAM_REQUEST_ONLY,
    PARAM_RESPONSE_ONLY,
    PARAM_UNIQUE,
    PARAM_FORCE,
)
"""The query parameters of X-Road's ``GET /asic``."""

NOT_FOUND_MESSAGE: Final = "No signed documents found"
NOT_TIMESTAMPED_MESSAGE: Final = "Message signature has not been timestamped yet!"
TIMESTAMPING_FAILED_MESSAGE: Final = "Could not create missing timestamp!"


def container_of(record: StoredRecord) -> AsicContainer:
    """The ASiC-E contents of a logged message."""
    return AsicContainer(
        message=record.message,
        signature=record.signature,
        attachments=record.attachments,
        timestamp=record.batch_timestamp,
    )


def write_containers(records: Sequence[StoredRecord]) -> list[tuple[str, bytes]]:
    """Every record's container as X-Road names it in an archive or an export: ``(entry name, bytes)``."""
    return [
        (
            asic_entry_name(r.query_id, response=r.response, record_id=r.id),
            write_container(container_of(r), created=r.time),
        )
        for r in records
    ]


def _response_filter(request_only: bool, response_only: bool) -> bool | None:
    if request_only and response_only:
        raise XRoadError(
            FaultCode.BAD_REQUEST,
            f'Parameters "{PARAM_REQUEST_ONLY}" and "{PARAM_RESPONSE_ONLY}" cannot be used at the same time.',
            kind=ErrorKind.BAD_INPUT,
        )
    return True if response_only else (False if request_only else None)


async def export_exchange(
    store: MessageLogStore,
    query_id: str,
    *,
    client: ClientId | None = None,
    request_only: bool = False,
    response_only: bool = False,
    timestamped_only: bool = True,
) -> list[tuple[str, bytes]]:
    """The containers of the messages logged under ``query_id`` (of ``client`` when given): file name and
    bytes, in the order they were logged. ``timestamped_only`` leaves out records the timestamper has not
    reached yet (a container without a time-stamp verifies only at a time given to the verifier).
    ``not_found`` (404) when nothing matches."""
    records = await store.find(
        query_id, client=client, response=_response_filter(request_only, response_only)
    )
    if timestamped_only:
        records = [r for r in records if r.timestamped]
    if not records:
        raise XRoadError(
            FaultCode.NOT_FOUND,
            f"no {'time-stamped ' if timestamped_only else ''}message is logged under query id {query_id!r}",
            kind=ErrorKind.NOT_FOUND,
            details={"query_id": query_id[:255]},
        )
    return await asyncio.to_thread(write_containers, records)


@dataclass(frozen=True)
class AsicQuery:
    """The parameters of one ``GET /asic`` request."""

    client: ClientId
    query_id: str
    response: bool | None
    """True: responses only; False: requests only; None: both."""
    unique: bool
    force: bool


@dataclass(frozen=True)
class AsicResponse:
    """The answer to ``GET /asic``: content type, file name (``Content-Disposition``) and body."""

    content_type: str
    filename: str
    body: bytes

    @property
    def content_disposition(self) -> str:
        return f'attachment; filename="{self.filename}"'


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise XRoadError(
            FaultCode.BAD_REQUEST, f'Parameter "{name}"  must be specified.', kind=ErrorKind.BAD_INPUT
        )
    return value


def parse_asic_query(params: Mapping[str, str]) -> AsicQuery:
    """Read the ``/asic`` query parameters as X-Road does; a missing parameter or a wrong combination is
    ``bad_request`` (400)."""
    member = MemberId(
        _required(params, PARAM_INSTANCE),
        _required(params, PARAM_MEMBER_CLASS),
        _required(params, PARAM_MEMBER_CODE),
    )
    subsystem = params.get(PARAM_SUBSYSTEM_CODE)
    client: ClientId = member.subsystem(subsystem) if subsystem is not None else member
    query_id = _required(params, PARAM_QUERY_ID)
    response = _response_filter(PARAM_REQUEST_ONLY in params, PARAM_RESPONSE_ONLY in params)
    unique = PARAM_UNIQUE in params
    if unique and response is None:
        raise XRoadError(
            FaultCode.BAD_REQUEST,
            f'Parameter "{PARAM_UNIQUE}" not applicable without "{PARAM_REQUEST_ONLY}" or '
            f'"{PARAM_RESPONSE_ONLY}".',
            kind=ErrorKind.BAD_INPUT,
        )
    return AsicQuery(client, query_id, response, unique, PARAM_FORCE in params)


async def _ensure_timestamped(
    store: MessageLogStore, query: AsicQuery, timestamper: Timestamper | None
) -> list[StoredRecord]:
    records = await store.find(query.query_id, client=query.client, response=query.response)
    if not records:
        raise XRoadError(FaultCode.NOT_FOUND, NOT_FOUND_MESSAGE, kind=ErrorKind.NOT_FOUND)
    if all(r.timestamped for r in records):
        return records
    if not query.force or timestamper is None:
        raise XRoadError(FaultCode.INTERNAL_ERROR, NOT_TIMESTAMPED_MESSAGE)
    try:
        await timestamper.timestamp_now()
    except XRoadError as e:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"{TIMESTAMPING_FAILED_MESSAGE} {e.message}") from e
    records = await store.find(query.query_id, client=query.client, response=query.response)
    if not all(r.timestamped for r in records):
        raise XRoadError(FaultCode.INTERNAL_ERROR, TIMESTAMPING_FAILED_MESSAGE)
    return records


def _zip(files: Sequence[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files:
            zf.writestr(name, data)
    return out.getvalue()


async def asic_response(
    store: MessageLogStore, params: Mapping[str, str], *, timestamper: Timestamper | None = None
) -> AsicResponse:
    """Answer ``GET /asic?xRoadInstance=..&memberClass=..&memberCode=..[&subsystemCode=..]&queryId=..
    [&requestOnly|&responseOnly][&unique][&force]`` as X-Road does: a zip
    (``<queryId>[-request|-response].zip``, entries stored) of every record's container, or with ``unique``
    the one container. Errors: ``bad_request`` (400) for the parameters, ``not_found`` (404) when nothing
    is logged, ``internal_error`` (500) when a record is not time-stamped yet (``force`` time-stamps it
    first with ``timestamper``)."""
    query = parse_asic_query(params)
    records = await _ensure_timestamped(store, query, timestamper)
    if query.unique:
        if len(records) > 1:
            raise XRoadError(
                FaultCode.INTERNAL_ERROR, f"{len(records)} signed documents match; unique needs exactly one"
            )
        ((name, data),) = await asyncio.to_thread(write_containers, records)
        return AsicResponse(MIMETYPE, name, data)
    files = await asyncio.to_thread(write_containers, records)
    suffix = "" if query.response is None else ("-response" if query.response else "-request")
    body = await asyncio.to_thread(_zip, files)
    return AsicResponse(ZIP_CONTENT_TYPE, f"{escape_query_id(query.query_id)}{suffix}.zip", body)
