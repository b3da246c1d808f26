"""The SQL adapter on SQLite and PostgreSQL: configured by TOML, served for real, attacked with hostile
parameters (injection attempts, oversized values, wrong types) that must be answered with clear X-Road
errors while the data stays as it was."""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.ready.sql import SqlAdapterSettings, create_sql_app
from tests.adapters.sdk_sample import served_app
from xroad_mn.database import sqlite_url
from xroad_mn.errors import XRoadError
from xroad_mn.settings import load_settings

CITIZENS: Final = 250
HEADERS: Final = {"X-Road-Client": "MN/COM/9011223/kyc", "X-Road-Id": "MN-1"}
CONFIG: Final = """
kind = "sql"
title = "Civil registry"
version = "3.0.0"

[database]
url = "{url}"
{schema}

[[endpoints]]
path = "/citizens/{{regnum}}"
summary = "A citizen by registration number"
sql = "SELECT * FROM citizens WHERE regnum = :regnum"
columns = ["regnum", "given_name", "birth_date", "aimag"]
single = true
[endpoints.parameters.regnum]
pattern = "^[А-ЯӨҮ]{{2}}[0-9]{{8}}$"

[[endpoints]]
path = "/citizens"
summary = "Citizens by aimag and name"
sql = \"\"\"
SELECT regnum, given_name, aimag, secret_note FROM citizens  -- secret_note is not allow-listed
WHERE aimag = :aimag AND (CAST(:name AS VARCHAR(50)) IS NULL OR given_name = :name)
  AND birth_year >= :born_from
ORDER BY regnum;
\"\"\"
columns = ["regnum", "given_name", "aimag"]
max_rows = 20
[endpoints.parameters.aimag]
max_length = 40
[endpoints.parameters.name]
required = false
[endpoints.parameters.born_from]
type = "integer"
required = false
default = 1900
minimum = 1900
maximum = 2100

[[endpoints]]
path = "/sneaky"
summary = "A statement that tries to write from inside a query"
sql = "WITH gone AS (DELETE FROM citizens RETURNING regnum) SELECT regnum FROM gone"
columns = ["regnum"]

[[endpoints]]
path = "/typed/{{regnum}}"
summary = "Typed columns: the same JSON from SQLite's 0/1 and text dates as from PostgreSQL's"
sql = "SELECT regnum, birth_date, birth_year, alive FROM citizens WHERE regnum = :regnum"
columns = ["regnum", "birth_date", "birth_year", "alive"]
column_types = {{ birth_date = "date", birth_year = "integer", alive = "boolean" }}
single = true
[endpoints.parameters.regnum]
max_length = 10

[[endpoints]]
path = "/mistyped/{{regnum}}"
summary = "A column declared with a type its values cannot take"
sql = "SELECT regnum, given_name FROM citizens WHERE regnum = :regnum"
columns = ["regnum", "given_name"]
column_types = {{ given_name = "integer" }}
single = true
[endpoints.parameters.regnum]
max_length = 10
"""
AIMAGS: Final = ("Дархан-Уул", "Орхон", "Увс")


@dataclass
class Database:
    url: str
    schema: str | None
    engine: AsyncEngine


async def _seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(
            "CREATE TABLE citizens (regnum VARCHAR(10) PRIMARY KEY, given_name VARCHAR(50), birth_date DATE, "
            "birth_year INTEGER, aimag VARCHAR(40), secret_note VARCHAR(100), alive BOOLEAN)"
        ))  # fmt: skip
        rows = [
            {
                "regnum": f"УБ{i:08d}", "given_name": "Батбаяр" if i % 2 else "Сараа",
                "birth_date": datetime.date(1950 + i % 60, 1 + i % 12, 1 + i % 28),
                "birth_year": 1950 + i % 60,
                "aimag": AIMAGS[i % 3], "secret_note": f"secret-{i}", "alive": i % 7 != 0,
            }
            for i in range(CITIZENS)
        ]  # fmt: skip
        await conn.execute(
            text(
                "INSERT INTO citizens VALUES "
                "(:regnum, :given_name, :birth_date, :birth_year, :aimag, :secret_note, :alive)"
            ),
            rows,
        )


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "civil.db")
        engine = create_async_engine(url)
        await _seed(engine)
        try:
            yield Database(url, None, engine)
        finally:
            await engine.dispose()
        return
    pg_url: str = request.getfixturevalue("postgres_url")
    schema = f"sqladapter_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(pg_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_async_engine(pg_url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await _seed(engine)
        yield Database(pg_url, schema, engine)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def settings_for(db: Database, tmp_path: Path, config: str = CONFIG) -> SqlAdapterSettings:
    schema = f'schema = "{db.schema}"' if db.schema else ""
    path = tmp_path / "adapter.toml"
    path.write_text(config.format(url=db.url, schema=schema), encoding="utf-8")
    return load_settings(SqlAdapterSettings, app="adapter", path=path, env={})


@pytest_asyncio.fixture
async def base(database: Database, tmp_path: Path) -> AsyncIterator[str]:
    async with served_app(create_sql_app(settings_for(database, tmp_path))) as url:
        yield url


async def get(url: str, **params: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=HEADERS, **params) as resp:
        return resp.status, await resp.json()


async def count(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM citizens"))).scalar_one())


async def test_one_row_by_path_only_allow_listed_columns(base: str) -> None:
    status, body = await get(f"{base}/citizens/УБ00000007")
    assert status == 200, body
    assert body == {
        "regnum": "УБ00000007",
        "given_name": "Батбаяр",
        "birth_date": "1957-08-08",
        "aimag": "Орхон",
    }
    status, body = await get(f"{base}/citizens/УБ99999999")
    assert status == 404
    assert body["type"] == "client.not_found"


async def test_rows_are_limited_and_the_answer_says_it_was_truncated(base: str) -> None:
    status, body = await get(f"{base}/citizens", params={"aimag": "Орхон"})
    assert status == 200, body
    assert body["truncated"] is True
    assert len(body["items"]) == 20
    assert all(set(item) == {"regnum", "given_name", "aimag"} for item in body["items"])  # no secret_note
    status, body = await get(
        f"{base}/citizens", params={"aimag": "Орхон", "name": "Сараа", "born_from": 2005}
    )
    assert status == 200, body
    assert body["truncated"] is False
    assert {i["given_name"] for i in body["items"]} == {"Сараа"}
    assert 0 < len(body["items"]) < 20


@pytest.mark.parametrize(
    "name",
    [
        "' OR '1'='1",
        "x'; DROP TABLE citizens; --",
        "Сараа' UNION SELECT regnum, secret_note, aimag, secret_note FROM citizens --",
        "\\'; DELETE FROM citizens WHERE '1'='1",
        ":aimag",
    ],
)
async def test_injection_attempts_are_bound_as_values(base: str, database: Database, name: str) -> None:
    status, body = await get(f"{base}/citizens", params={"aimag": "Орхон", "name": name})
    assert (status, body) == (200, {"items": [], "truncated": False})
    assert await count(database) == CITIZENS


@pytest.mark.parametrize(
    ("target", "params", "words"),
    [
        ("/citizens/' OR 1=1 --", {}, ["path parameter 'regnum'", "pattern"]),
        ("/citizens/УБ0000000", {}, ["'regnum'", "pattern"]),
        ("/citizens", {"aimag": "Орхон", "born_from": "1990 OR 1=1"}, ["'born_from'", "integer"]),
        (
            "/citizens",
            {"aimag": "Орхон", "born_from": "99999"},
            ["'born_from'", "less than or equal to 2100"],
        ),
        ("/citizens", {"aimag": "О" * 41}, ["'aimag'", "at most 40"]),
        ("/citizens", {"aimag": "Орхон", "name": "Б" * 257}, ["'name'", "at most 256"]),
        ("/citizens", {"aimag": "Орхон", "name": "B" * 2000}, ["longer than 1024"]),
        ("/citizens", {}, ["'aimag'", "Field required"]),
        ("/citizens", {"aimag": "Орхон", "order": "secret_note"}, ["'order'", "Extra inputs"]),
    ],
)
async def test_hostile_parameters_are_refused_with_clear_errors(
    base: str, database: Database, target: str, params: dict[str, str], words: list[str]
) -> None:
    status, body = await get(base + target, params=params)
    assert status == 400, body
    assert body["type"] == "client.bad_request"
    for word in words:
        assert word in body["message"]
    assert await count(database) == CITIZENS


async def test_a_statement_that_writes_fails_in_its_read_only_transaction(
    base: str, database: Database
) -> None:
    status, body = await get(f"{base}/sneaky")
    assert status == 500
    assert body["type"] == "server.service_failed"
    assert "DELETE" not in body["message"]
    assert await count(database) == CITIZENS


SLOW_ENDPOINT: Final = '''
[[endpoints]]
path = "/slow"
summary = "A query that runs far longer than its timeout"
sql = """
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000)
SELECT count(*) AS n FROM c
"""
columns = ["n"]
single = true
'''


async def test_a_query_past_its_timeout_is_stopped_and_the_next_one_runs(
    database: Database, tmp_path: Path
) -> None:
    """The database stops the query (SQLite by its progress handler, not by cancelling the statement's
    task, which would leave the connection open); the answer is X-Road's timeout, and nothing is left
    running."""
    config = CONFIG.replace("{schema}", "{schema}\nquery_timeout_seconds = 0.5", 1) + SLOW_ENDPOINT
    async with served_app(create_sql_app(settings_for(database, tmp_path, config))) as base:
        started = time.monotonic()
        status, body = await get(f"{base}/slow")
        assert status == 504, body
        assert body["type"] == "server.timeout"
        assert "did not finish in 0.5 s" in body["message"]
        assert time.monotonic() - started < 5  # stopped, not run to its end
        status, body = await get(f"{base}/citizens/УБ00000007")
        assert status == 200, body
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not left, left


async def test_openapi_document_of_the_configured_endpoints_is_valid(base: str) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.validators import OpenAPIV30SpecValidator

    status, document = await get(f"{base}/openapi.json")
    assert status == 200
    validate(document, cls=OpenAPIV30SpecValidator)
    listed = {p["name"]: p for p in document["paths"]["/citizens"]["get"]["parameters"]}
    assert listed["born_from"]["schema"] == {
        "type": "integer", "minimum": 1900, "maximum": 2100, "default": 1900, "nullable": True
    }  # fmt: skip
    assert listed["aimag"]["required"] is True
    row = document["components"]["schemas"]["GetCitizensRow"]
    assert list(row["properties"]) == ["regnum", "given_name", "aimag"]


async def test_typed_columns_answer_json_types_on_every_database(base: str) -> None:
    status, body = await get(f"{base}/typed/УБ00000007")
    assert status == 200, body
    assert body == {"regnum": "УБ00000007", "birth_date": "1957-08-08", "birth_year": 1957, "alive": False}
    status, body = await get(f"{base}/typed/УБ00000008")
    assert status == 200, body
    assert body["alive"] is True  # SQLite keeps 1, PostgreSQL true: both answer true
    status, document = await get(f"{base}/openapi.json")
    row = document["components"]["schemas"]["GetTypedRegnumRow"]["properties"]
    assert row["alive"] == {"type": "boolean", "nullable": True, "title": "Alive", "default": None}
    assert row["birth_date"]["format"] == "date"
    assert row["regnum"] == {"title": "Regnum", "default": None}  # undeclared: whatever the database gives


async def test_a_value_its_declared_type_cannot_take_is_the_adapters_fault(base: str) -> None:
    status, body = await get(f"{base}/mistyped/УБ00000007")
    assert status == 500, body
    assert body["type"] == "server.internal_error"
    assert "Батбаяр" not in body["message"]


def test_column_types_of_columns_not_returned_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "adapter.toml"
    path.write_text(
        f"""
title = "t"
[database]
url = "sqlite+aiosqlite:///{tmp_path}/x.db"
[[endpoints]]
path = "/citizens"
sql = "SELECT regnum FROM citizens"
columns = ["regnum"]
column_types = {{ secret_note = "string" }}
""",
        encoding="utf-8",
    )
    with pytest.raises(XRoadError) as caught:
        load_settings(SqlAdapterSettings, app="adapter", path=path, env={})
    assert "column_types names columns that are not returned: ['secret_note']" in caught.value.message


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("DELETE FROM citizens WHERE regnum = :regnum", "beginning with SELECT or WITH"),
        ("SELECT * FROM citizens WHERE regnum = :regnum; DROP TABLE citizens", "one statement"),
        ("SELECT * FROM citizens WHERE regnum = :regnum AND aimag = :aimag", "the SQL binds"),
        ("SELECT * FROM citizens", "the SQL binds"),
        ("UPDATE citizens SET aimag = 'x' WHERE regnum = :regnum", "beginning with SELECT"),
    ],
)
def test_configuration_with_an_unsafe_statement_is_refused(tmp_path: Path, sql: str, words: str) -> None:
    config = f"""
title = "t"
[database]
url = "sqlite+aiosqlite:///{tmp_path}/x.db"
[[endpoints]]
path = "/citizens/{{regnum}}"
sql = "{sql}"
columns = ["regnum"]
[endpoints.parameters.regnum]
"""
    path = tmp_path / "adapter.toml"
    path.write_text(config, encoding="utf-8")
    with pytest.raises(XRoadError) as caught:
        load_settings(SqlAdapterSettings, app="adapter", path=path, env={})
    assert caught.value.code == "invalid_settings"
    assert words in caught.value.message
