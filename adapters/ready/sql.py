"""The SQL adapter: parameterised read-only queries over any SQLAlchemy database, as REST endpoints.

Configured by TOML, no code::

    kind = "sql"
    title = "Civil registry"
    port = 8091

    [database]
    url = "postgresql+asyncpg://registry@db/civil"      # or sqlite+aiosqlite:///path/civil.db
    schema = "civil"                                     # PostgreSQL search_path (optional)

    [[endpoints]]
    path = "/citizens/{regnum}"
    summary = "A citizen by registration number"
    sql = "SELECT regnum, given_name, birth_date FROM citizens WHERE regnum = :regnum"
    columns = ["regnum", "given_name", "birth_date"]
    column_types = { birth_date = "date" }               # typed in the answer and its OpenAPI schema
    single = true

    [endpoints.parameters.regnum]
    type = "string"
    pattern = "^[А-ЯӨҮ]{2}[0-9]{8}$"

Every endpoint is a ``GET`` operation of the adapter SDK (:mod:`adapters.sdk`), with its OpenAPI document,
X-Road's error format and the X-Road context. Its safety, in order:

1. The statement is checked when the configuration loads: one statement (no ``;`` inside), beginning with
   ``SELECT`` or ``WITH``; every ``:name`` in it is a declared parameter and every declared parameter is
   used; the path template's parameters are declared.
2. Parameters are typed (``string``, ``integer``, ``number``, ``boolean``, ``date``) with bounds
   (``max_length``, ``pattern``, ``minimum``, ...), validated by the SDK before any query runs; every string
   is at most :data:`MAX_STRING_CHARS` unless the configuration says less.
3. Values are bound by the database driver (``text(sql)`` with bind parameters), never put into the SQL.
4. The query runs in a read-only transaction (PostgreSQL ``SET TRANSACTION READ ONLY``, SQLite
   ``PRAGMA query_only``), within ``query_timeout_seconds``.
5. At most ``max_rows`` rows are fetched (one more is read to say the answer was ``truncated``).
6. Only the allow-listed ``columns`` are returned, whatever the statement selects.

A column is answered as the database driver gives it unless ``column_types`` names its type (``string``,
``integer``, ``number``, ``boolean``, ``date``, ``datetime``): then the answer carries that JSON type and
the OpenAPI document says so. SQLite keeps a boolean as 0 or 1 and a date as text, so ``boolean`` and
``date`` are what make the same configuration answer alike on SQLite and PostgreSQL. A value the declared
type cannot take (``"abc"`` for an integer) is the adapter's fault, never passed on:
``server.internal_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Annotated, Any, Final, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, Field, create_model, field_validator, model_validator
from sqlalchemy import Boolean, Date, Float, Integer, String, TextClause, bindparam, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeEngine

from adapters.sdk import Adapter, create_app
from adapters.sdk.declare import explicit_params
from adapters.sdk.rest import PATH_PARAM, rest_operation
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.settings import SettingsModel

__all__ = [
    "HARD_MAX_ROWS",
    "MAX_STRING_CHARS",
    "DatabaseSettings",
    "Endpoint",
    "Parameter",
    "SqlAdapterSettings",
    "create_sql_app",
    "sql_adapter",
]

log = structlog.get_logger(__name__)

HARD_MAX_ROWS: Final = 10_000
"""No endpoint returns more rows than this, whatever its ``max_rows``."""
MAX_STRING_CHARS: Final = 256
"""Longest string parameter unless an endpoint says less."""
_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COMMENTS: Final = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_STRINGS: Final = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_READ_VERBS: Final = ("select", "with")
_PYTHON_TYPES: Final[Mapping[str, type]] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "date": datetime.date,
}


_COLUMN_TYPES: Final[Mapping[str, type]] = {**_PYTHON_TYPES, "datetime": datetime.datetime}
ColumnType = Literal["string", "integer", "number", "boolean", "date", "datetime"]


_SQL_TYPES: Final[Mapping[str, Callable[[], TypeEngine[Any]]]] = {
    "string": String,
    "integer": Integer,
    "number": Float,
    "boolean": Boolean,
    "date": Date,
}


class Parameter(SettingsModel):
    """One query parameter: its type and bounds."""

    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    required: bool = True
    default: str | int | float | bool | None = None
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1, le=MAX_STRING_CHARS)
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    def annotation(self) -> Any:
        """The parameter's type with its bounds, as the SDK validates it."""
        tp = _PYTHON_TYPES[self.type]
        constraints: dict[str, Any] = {"description": self.description or None}
        if self.type == "string":
            constraints |= {
                "min_length": self.min_length,
                "max_length": self.max_length or MAX_STRING_CHARS,
                "pattern": self.pattern,
            }
        elif self.type in ("integer", "number"):
            constraints |= {"ge": self.minimum, "le": self.maximum}
        field = Field(**{k: v for k, v in constraints.items() if v is not None})
        annotated = Annotated[tp, field]  # type: ignore[valid-type]
        return annotated if self.required else annotated | None


class Endpoint(SettingsModel):
    """One REST endpoint: a ``GET`` path answered by one query."""

    path: str
    sql: str
    columns: list[str] = Field(min_length=1)
    """The columns returned, in this order; any other column the statement selects is left out."""
    column_types: dict[str, ColumnType] = Field(default_factory=dict)
    """The JSON type a column is answered as (every value may also be null); others as the driver gives."""
    summary: str = ""
    description: str = ""
    operation_id: str | None = None
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    max_rows: int = Field(default=100, ge=1, le=HARD_MAX_ROWS)
    single: bool = False
    """Answer one object (404 ``not_found`` when no row matches) instead of ``{"items", "truncated"}``."""

    @field_validator("columns")
    @classmethod
    def _columns_are_identifiers(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not _IDENTIFIER.match(c)]
        if bad:
            raise ValueError(f"column names must be identifiers: {bad}")
        if len(set(value)) != len(value):
            raise ValueError("a column is listed twice")
        return value

    @model_validator(mode="after")
    def _typed_columns_are_returned(self) -> Endpoint:
        unknown = sorted(set(self.column_types) - set(self.columns))
        if unknown:
            raise ValueError(f"{self.path}: column_types names columns that are not returned: {unknown}")
        return self

    def column_annotation(self, column: str) -> Any:
        """The answer's type of ``column``: its declared type or null, else whatever the driver gives."""
        declared = self.column_types.get(column)
        return Any if declared is None else _COLUMN_TYPES[declared] | None

    @model_validator(mode="after")
    def _statement_is_one_read(self) -> Endpoint:
        # 1. one statement, a read, whose bind parameters are exactly the declared ones
        code = _COMMENTS.sub(" ", _STRINGS.sub("''", self.sql)).strip()
        if ";" in code.rstrip(";").rstrip() or code.count(";") > 1:
            raise ValueError(f"{self.path}: the SQL must be one statement (no ';' inside)")
        if not code.lower().startswith(_READ_VERBS):
            raise ValueError(f"{self.path}: the SQL must be a query beginning with SELECT or WITH")
        binds = set(text(self.sql.rstrip().rstrip(";")).compile().params)
        declared = set(self.parameters)
        if binds != declared:
            raise ValueError(
                f"{self.path}: the SQL binds {sorted(binds)}, the parameters declared are {sorted(declared)}"
            )
        for name in PATH_PARAM.findall(self.path):
            if name not in declared:
                raise ValueError(f"{self.path}: path parameter {name!r} is not declared")
            if not self.parameters[name].required:
                raise ValueError(f"{self.path}: path parameter {name!r} cannot be optional")
        return self

    @property
    def statement(self) -> TextClause:
        """The statement with a bind parameter of the declared SQL type for each parameter."""
        clause = text(self.sql.rstrip().rstrip(";"))
        return clause.bindparams(
            *(bindparam(name, type_=_SQL_TYPES[p.type]()) for name, p in self.parameters.items())
        )


class DatabaseSettings(SettingsModel):
    url: str
    """Any async SQLAlchemy URL (``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...``)."""
    schema_name: str | None = Field(default=None, alias="schema")
    """PostgreSQL: the ``search_path`` the queries run with."""
    query_timeout_seconds: float = Field(default=10.0, gt=0, le=600)


class SqlAdapterSettings(SettingsModel):
    """An SQL adapter's configuration file."""

    kind: Literal["sql"] = "sql"
    title: str
    version: str = "1.0.0"
    description: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8091, ge=0, le=65535)
    server_url: str | None = None
    """The adapter's URL as the security server reaches it (the OpenAPI document's server)."""
    max_parameter_chars: int = Field(default=1024, ge=1, le=65536)
    database: DatabaseSettings
    endpoints: list[Endpoint] = Field(min_length=1)


ENGINE_KEY: Final = web.AppKey("sql_engine", AsyncEngine)


def _query_only(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """A read-only engine for the adapter's database (``invalid_settings`` for a URL that cannot be used)."""
    try:
        url = make_url(settings.url)
        kwargs: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql" and settings.schema_name:
            kwargs["connect_args"] = {"server_settings": {"search_path": settings.schema_name}}
        engine = create_async_engine(url, **kwargs)
    except (ArgumentError, SQLAlchemyError, ImportError) as e:
        raise XRoadError(FaultCode.INVALID_SETTINGS, f"cannot use database URL: {e}") from e
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _query_only)
    return engine


SQLITE_PROGRESS_STEPS: Final = 10_000
"""SQLite virtual-machine steps between two looks at a query's deadline (well under a millisecond)."""


async def _sqlite_deadline(conn: AsyncConnection, deadline: float) -> None:
    """Make SQLite interrupt the statements of ``conn`` after ``deadline`` (``time.monotonic()``); they
    fail with ``interrupted``."""
    driver = (await conn.get_raw_connection()).driver_connection  # the aiosqlite connection
    if driver is None:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "the database connection is closed")
    await driver.set_progress_handler(lambda: time.monotonic() > deadline, SQLITE_PROGRESS_STEPS)


class _Rows:
    """The queries of one adapter, on the engine its application opens."""

    def __init__(self, settings: SqlAdapterSettings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None

    async def run(self, endpoint: Endpoint, values: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        if self.engine is None:
            raise XRoadError(FaultCode.INTERNAL_ERROR, "the database is not open")
        timeout = self.settings.database.query_timeout_seconds
        sqlite = self.engine.dialect.name == "sqlite"
        try:
            # SQLite is stopped by its own progress handler at the deadline: a cancel in the middle of an
            # aiosqlite statement would leave the connection open (xroad_mn.database.run_to_completion).
            async with (
                contextlib.nullcontext() if sqlite else asyncio.timeout(timeout),
                self.engine.connect() as conn,
            ):
                if sqlite:
                    await _sqlite_deadline(conn, time.monotonic() + timeout)
                # 4. a read-only transaction
                if conn.dialect.name == "postgresql":
                    await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                # 3. values bound by the driver
                result = await conn.stream(endpoint.statement, dict(values))
                # 5. at most max_rows, one more to know the answer is truncated
                rows = await result.fetchmany(endpoint.max_rows + 1)
                keys = list(result.keys())
                await result.close()
                await conn.rollback()
        except TimeoutError as e:
            raise XRoadError(
                FaultCode.TIMEOUT, f"the query did not finish in {timeout:g} s", http_status=504
            ) from e
        except OperationalError as e:
            if not (sqlite and "interrupted" in str(e.orig)):
                log.exception("query_failed", path=endpoint.path)
                raise XRoadError(FaultCode.SERVICE_FAILED, "the database query failed") from e
            raise XRoadError(
                FaultCode.TIMEOUT, f"the query did not finish in {timeout:g} s", http_status=504
            ) from e
        except (XRoadError, asyncio.CancelledError):
            raise
        except Exception as e:  # SQLAlchemy's errors, and a driver's own from a streaming cursor
            log.exception("query_failed", path=endpoint.path)
            raise XRoadError(FaultCode.SERVICE_FAILED, "the database query failed") from e
        # 6. only the allow-listed columns
        missing = [c for c in endpoint.columns if c not in keys]
        if missing:
            log.error("columns_missing", path=endpoint.path, missing=missing)
            raise XRoadError(FaultCode.SERVICE_FAILED, "the query does not return the configured columns")
        picked = [{c: row._mapping[c] for c in endpoint.columns} for row in rows[: endpoint.max_rows]]
        return picked, len(rows) > endpoint.max_rows


def _operation_id(endpoint: Endpoint, index: int) -> str:
    if endpoint.operation_id:
        return endpoint.operation_id
    words = [w for w in re.split(r"[^A-Za-z0-9]+", endpoint.path) if w]
    return "get_" + "_".join(words) if words else f"endpoint_{index}"


def sql_adapter(settings: SqlAdapterSettings) -> tuple[Adapter, _Rows]:
    """The SDK adapter of ``settings`` and the query runner its handlers use."""
    adapter = Adapter(
        settings.title,
        settings.version,
        description=settings.description,
        server_url=settings.server_url,
        max_parameter_chars=settings.max_parameter_chars,
    )
    rows = _Rows(settings)
    for index, endpoint in enumerate(settings.endpoints):
        op_id = _operation_id(endpoint, index)
        path_names = set(PATH_PARAM.findall(endpoint.path))
        fields = {
            name: (p.annotation(), ... if p.required else p.default)
            for name, p in endpoint.parameters.items()
        }
        pascal = "".join(w[:1].upper() + w[1:] for w in op_id.split("_"))
        # Columns are aliases of fields c0, c1, ... so that a column may be called "schema" or "json".
        row_fields: dict[str, Any] = {
            f"c{i}": (Annotated[endpoint.column_annotation(c), Field(alias=c)], None)
            for i, c in enumerate(endpoint.columns)
        }
        row_model: type[BaseModel] = create_model(f"{pascal}Row", **row_fields)
        page_model: type[BaseModel] = create_model(
            f"{pascal}Page",
            items=(list[row_model], ...),
            truncated=(bool, ...),
        )
        params = explicit_params(
            op_id,
            path_fields={n: f for n, f in fields.items() if n in path_names},
            query_fields={n: f for n, f in fields.items() if n not in path_names},
            response_type=row_model if endpoint.single else page_model,
        )

        def handler(endpoint: Endpoint = endpoint, row_model: type[BaseModel] = row_model) -> Any:
            async def handle(**values: Any) -> Any:
                found, truncated = await rows.run(endpoint, values)
                if endpoint.single:
                    if not found:
                        raise XRoadError(FaultCode.NOT_FOUND, "no row matches", kind=ErrorKind.NOT_FOUND)
                    return found[0]
                return {"items": found, "truncated": truncated}

            return handle

        adapter.add_rest(
            rest_operation(
                "GET",
                endpoint.path,
                handler(),
                summary=endpoint.summary or None,
                operation_id=op_id,
                params=params,
            )
        )
    return adapter, rows


def create_sql_app(settings: SqlAdapterSettings) -> web.Application:
    """The SQL adapter's application; its engine is opened and disposed of with the application."""
    adapter, rows = sql_adapter(settings)
    app = create_app(adapter)

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.database)
        rows.engine = engine
        app[ENGINE_KEY] = engine
        try:
            yield
        finally:
            rows.engine = None
            await engine.dispose()

    app.cleanup_ctx.append(database)
    return app
