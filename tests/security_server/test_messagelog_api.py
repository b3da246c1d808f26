"""The message log for auditors, on SQLite and PostgreSQL: the node's admin API (its real operations and
pipeline, served over HTTP on the node's own database and home) with xroad-mn's two log roles — the
auditor reads metadata, the body reader bodies and exports, X-Road's roles nothing of the log — every filter
and keyset pages, and export zips whose manifest digests match and whose containers verify offline; the
``node log export`` zip and ``xroad-mn asic verify``; the node's ``apikey`` commands."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from typer.testing import CliRunner

from security_server.api import add_admin_routes
from security_server.api.call import CLOCK_KEY, SETTINGS_KEY, STORE_KEY
from security_server.api.messagelog import NEXT_AFTER_ID_HEADER
from security_server.cli import app as node_cli
from security_server.db import NodeStore
from security_server.home import api_keys_file, audit_log_file, create_home, globalconf_dir, open_home
from security_server.messagelog import ExchangeFacts, MessageLogStore, SubjectKey
from security_server.messagelog.bundle import BUNDLE_FORMAT, MANIFEST_NAME, NOT_TIMESTAMPED
from security_server.messagelog.models import MessageRecordRow
from security_server.messagelog.search import LogFilters
from security_server.operations import FIRST_KEY_ROLES, messagelog, open_node_store
from security_server.settings import NodeSettings
from tests.security_server.conftest import BACKENDS
from tests.security_server.node_world import database_settings
from tests.security_server.test_messagelog_search import (
    OTHER_SUBJECT,
    SUBJECT,
    _logged_and_stamped,
    _soap_pair,
)
from tests.security_server.test_messagelog_timestamper import _write_conf
from tests.security_server.test_node_e2e import xroad_mn
from tests.test_signature import Evidence, build_evidence
from xroad_mn.admin import (
    API_KEYS_KEY,
    AUDIT_KEY,
    LIMITER_KEY,
    ApiKeyRing,
    AuditLog,
    RateLimiter,
    Role,
    create_api_key,
)
from xroad_mn.asic import verify_container
from xroad_mn.identifiers import format_id
from xroad_mn.transport.server import xroad_error_middleware

from .messagelog_fixtures import CLIENT, SERVICE

NOW = datetime(2027, 1, 6, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return build_evidence()


@dataclass
class LogApi:
    """The node's admin API on its database, one key per role."""

    url: str
    session: aiohttp.ClientSession
    tokens: dict[str, str]
    home: Path
    ids: dict[str, list[int]]

    async def call(
        self, method: str, path: str, *, key: str | None, body: Any = None, expect: int
    ) -> tuple[bytes, Any]:
        headers = {}
        if key is not None:
            headers["Authorization"] = f"X-Road-ApiKey token={self.tokens[key]}"
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, self.url + path, data=data, headers=headers) as resp:
            raw = await resp.read()
            assert resp.status == expect, (method, path, key, resp.status, raw[:400])
            return raw, resp.headers

    async def json(self, method: str, path: str, *, key: str = "auditor", body: Any = None) -> Any:
        raw, _ = await self.call(method, path, key=key, body=body, expect=200)
        return json.loads(raw)

    async def search(self, key: str = "auditor", **filters: Any) -> list[int]:
        page = await self.json("POST", "/messagelog/search", key=key, body={"limit": 1000, **filters})
        return [r["id"] for r in page["records"]]

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in audit_log_file(self.home).read_text().splitlines()]


async def _records(settings: NodeSettings, store: NodeStore, evidence: Evidence) -> dict[str, list[int]]:
    """Three exchanges of :func:`_logged_and_stamped` (two time-stamped, about :data:`SUBJECT`; one waiting),
    and a fourth an hour later, about :data:`OTHER_SUBJECT`, from a subsystem, unstamped."""
    log = MessageLogStore(store.engine, subject_key=SubjectKey.open(settings.home))
    try:
        ids = await _logged_and_stamped(log, evidence)
        later = [
            dataclasses.replace(r, client=CLIENT.subsystem("crm"))
            for r in _soap_pair(evidence, "q-later", ExchangeFacts(OTHER_SUBJECT, "EE2", "case-7"))
        ]
        ids["later"] = await log.insert_records(later, at=evidence.now + timedelta(hours=1))
    finally:
        log.close()
    return ids


def _key_with_the_cli(home: Path, role: Role) -> str:
    ran = CliRunner().invoke(
        node_cli, ["apikey", "create", "--dir", str(home), "--role", role.value, "--json"]
    )
    assert ran.exit_code == 0, ran.output
    created: dict[str, Any] = json.loads(ran.stdout)
    assert created["roles"] == [role.value]
    return str(created["api_key"])


@pytest.fixture
async def api(store: NodeStore, evidence: Evidence, tmp_path: Path) -> AsyncIterator[LogApi]:
    home = create_home(tmp_path / "node", {"address": "127.0.0.2"})
    settings = open_home(home)
    ids = await _records(settings, store, evidence)
    keys = api_keys_file(home)
    tokens = {
        "auditor": await asyncio.to_thread(_key_with_the_cli, home, Role.MESSAGELOG_AUDITOR),
        "body_reader": await asyncio.to_thread(_key_with_the_cli, home, Role.MESSAGELOG_BODY_READER),
        "admin": create_api_key(keys, FIRST_KEY_ROLES, NOW).token,
        "observer": create_api_key(keys, {Role.XROAD_SECURITYSERVER_OBSERVER}, NOW).token,
    }
    app = web.Application(middlewares=[xroad_error_middleware])
    app[SETTINGS_KEY] = settings
    app[STORE_KEY] = store
    app[CLOCK_KEY] = lambda: NOW
    app[AUDIT_KEY] = AuditLog(audit_log_file(home), clock=lambda: NOW)
    app[API_KEYS_KEY] = ApiKeyRing(keys)
    app[LIMITER_KEY] = RateLimiter(1000, 10_000)
    add_admin_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            yield LogApi(f"http://127.0.0.1:{port}/api/v1", session, tokens, home, ids)
    finally:
        await runner.cleanup()


async def test_roles_auditor_reads_metadata_body_reader_bodies_others_nothing(api: LogApi) -> None:
    record = api.ids["rest"][0]
    operations: list[tuple[str, str, Any, set[str]]] = [
        ("POST", "/messagelog/search", {"data_subject": SUBJECT}, {"auditor", "body_reader"}),
        ("GET", f"/messagelog/records/{record}", None, {"auditor", "body_reader"}),
        ("GET", f"/messagelog/records/{record}/body", None, {"body_reader"}),
        ("POST", "/messagelog/export", {"x_road_id": "q-rest"}, {"body_reader"}),
    ]
    for method, path, body, allowed in operations:
        for key in ("auditor", "body_reader", "admin", "observer"):
            expect = 200 if key in allowed else 403
            raw, _ = await api.call(method, path, key=key, body=body, expect=expect)
            if expect == 403:
                assert json.loads(raw)["type"] == "client.forbidden"
        await api.call(method, path, key=None, body=body, expect=401)
    # The log roles read nothing else of the node; X-Road's roles still read its configuration.
    await api.call("GET", "/clients", key="auditor", expect=403)
    await api.call("GET", "/token", key="body_reader", expect=403)

    audit = api.audit()
    searches = [a for a in audit if a["event"] == "Search message log"]
    assert len(searches) == 2
    assert searches[0]["data"]["filters"] == {"data_subject_hash": SubjectKey.open(api.home).hash(SUBJECT)}
    assert searches[0]["data"]["records"] == 4
    assert {a["event"] for a in audit} >= {
        "Search message log failed", "Read message log record", "Read logged message body",
        "Export message log", "Export message log failed", "Create API key",
    }  # fmt: skip
    assert SUBJECT not in audit_log_file(api.home).read_text()


async def test_every_filter_and_keyset_pages(api: LogApi) -> None:
    ids = api.ids
    everything = ids["batch"] + ids["rest"] + ids["wait"] + ids["later"]
    assert await api.search() == everything
    assert await api.search(data_subject=f" {SUBJECT} ") == ids["batch"] + ids["rest"]
    hashed = SubjectKey.open(api.home).hash(OTHER_SUBJECT)
    assert await api.search(data_subject_hash=hashed) == ids["later"]
    assert await api.search(data_subject="АА00000000") == []
    first = await api.json("GET", f"/messagelog/records/{ids['batch'][0]}")
    t0 = datetime.fromisoformat(first["logged_at"])
    assert await api.search(**{"from": (t0 + timedelta(minutes=30)).isoformat()}) == ids["later"]
    assert await api.search(to=(t0 + timedelta(minutes=1)).isoformat()) == (
        ids["batch"] + ids["rest"] + ids["wait"]
    )
    assert await api.search(client="MN:GOV:5012345:crm") == ids["later"]
    assert await api.search(client="MEMBER:MN/GOV/5012345") == ids["batch"] + ids["rest"] + ids["wait"]
    assert await api.search(service="SERVICE:MN/GOV/5012345/registry/people") == ids["rest"]
    assert await api.search(service=format_id(SERVICE), message="request") == [
        ids["batch"][0], ids["wait"][0], ids["later"][0],
    ]  # fmt: skip
    assert await api.search(x_road_id="q-wait") == ids["wait"]
    assert await api.search(x_request_id="xreq-q-rest") == ids["rest"]
    assert await api.search(user_id="EE1") == ids["rest"]
    assert await api.search(issue="case-7") == ids["later"]
    assert await api.search(status=200) == [ids["rest"][1]]
    assert await api.search(message="response", x_road_id="q-batch") == [ids["batch"][1]]

    page = await api.json("POST", "/messagelog/search", body={"limit": 3})
    assert [r["id"] for r in page["records"]] == everything[:3]
    seen = [r["id"] for r in page["records"]]
    while page["next_after_id"] is not None:
        page = await api.json(
            "POST", "/messagelog/search", body={"limit": 3, "after_id": page["next_after_id"]}
        )
        seen += [r["id"] for r in page["records"]]
    assert seen == everything

    # Each result: both parties, the service, the times and the state; never a body or a subject.
    page = await api.json("POST", "/messagelog/search", body={"x_road_id": "q-rest"})
    request, response = page["records"]
    assert request["client"] == "MEMBER:MN/GOV/5012345"
    assert request["provider"] == "SUBSYSTEM:MN/GOV/5012345/registry"
    assert request["service"] == "SERVICE:MN/GOV/5012345/registry/people"
    assert (request["message"], response["message"], response["status"]) == ("request", "response", 200)
    assert (request["signed"], request["timestamped"], request["archived"]) == (True, True, False)
    assert request["timestamped_at"] is not None
    waiting = await api.json("GET", f"/messagelog/records/{ids['wait'][0]}")
    assert (waiting["timestamped"], waiting["timestamped_at"]) == (False, None)
    text = json.dumps(await api.json("POST", "/messagelog/search", body={"limit": 1000}), ensure_ascii=False)
    for absent in (SUBJECT, OTHER_SUBJECT, "Envelope", "subject"):
        assert absent not in text


async def test_bad_search_input_gets_the_protocols_error(api: LogApi) -> None:
    for body, code in (
        ({"from": "yesterday"}, "client.invalid_request"),
        ({"client": "not an id"}, "client.invalid_client_identifier"),
        ({"data_subject_hash": "ABC"}, "client.invalid_request"),
        ({"limit": 1001}, "client.invalid_body"),
        ({"subject": SUBJECT}, "client.invalid_body"),
    ):
        raw, _ = await api.call("POST", "/messagelog/search", key="auditor", body=body, expect=400)
        assert json.loads(raw)["type"] == code, (body, raw)
    for path in ("/messagelog/records/999999", "/messagelog/records/x1"):
        raw, _ = await api.call("GET", path, key="auditor", expect=404)
        assert json.loads(raw)["type"] == "client.not_found"
    assert SUBJECT not in audit_log_file(api.home).read_text()


async def test_a_body_is_the_logged_message(api: LogApi, store: NodeStore) -> None:
    record = api.ids["rest"][0]
    out = await api.json("GET", f"/messagelog/records/{record}/body", key="body_reader")
    async with store.engine.connect() as conn:
        logged = (
            await conn.execute(select(MessageRecordRow.message).where(MessageRecordRow.id == record))
        ).scalar_one()
    assert base64.b64decode(out["message_base64"]) == bytes(logged)
    assert SUBJECT.encode() in base64.b64decode(out["message_base64"])  # the body reader sees it all
    assert out["attachments_base64"] == []
    assert out["record"]["id"] == record
    assert out["record"]["x_road_id"] == "q-rest"


def _read_bundle(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(files.pop(MANIFEST_NAME))
    return manifest, files


def _check_bundle(manifest: dict[str, Any], files: dict[str, bytes], evidence: Evidence) -> None:
    """Every container listed once with its digest, and verifying offline."""
    assert manifest["format"] == BUNDLE_FORMAT
    assert sorted(files) == sorted(c["file"] for c in manifest["containers"])
    for item in manifest["containers"]:
        data = files[item["file"]]
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
        assert len(data) == item["bytes"]
        assert item["state"] == {"signed": True, "timestamped": True, "archived": False}
        verify_container(data, trust=evidence.trust)
    counts = manifest["counts"]
    assert counts["containers"] == len(manifest["containers"])
    assert counts["skipped"] == len(manifest["skipped"])
    assert counts["records"] == counts["containers"] + counts["skipped"]


async def test_export_zip_through_the_api(api: LogApi, evidence: Evidence) -> None:
    ids = api.ids
    raw, headers = await api.call(
        "POST", "/messagelog/export", key="body_reader", body={"data_subject": SUBJECT}, expect=200
    )
    assert headers["Content-Type"] == "application/zip"
    assert NEXT_AFTER_ID_HEADER not in headers
    manifest, files = _read_bundle(raw)
    _check_bundle(manifest, files, evidence)
    assert manifest["node"] == "SERVER:MN/GOV/5012345/ss1"
    assert manifest["created_at"] == NOW.isoformat()
    assert manifest["asked"] == {"data_subject_hash": SubjectKey.open(api.home).hash(SUBJECT)}
    assert [c["record_id"] for c in manifest["containers"]] == ids["batch"] + ids["rest"]
    assert {c["x_road_id"] for c in manifest["containers"]} == {"q-batch", "q-rest"}
    assert (manifest["complete"], manifest["next_after_id"], manifest["skipped"]) == (True, None, [])

    # The records not time-stamped yet are skipped and listed; a limit cuts the export where the next
    # one continues.
    raw, headers = await api.call(
        "POST", "/messagelog/export", key="body_reader", body={"limit": 5}, expect=200
    )
    manifest, files = _read_bundle(raw)
    _check_bundle(manifest, files, evidence)
    assert [c["record_id"] for c in manifest["containers"]] == ids["batch"] + ids["rest"]
    assert [(s["record_id"], s["reason"]) for s in manifest["skipped"]] == [(ids["wait"][0], NOT_TIMESTAMPED)]
    assert (manifest["complete"], manifest["next_after_id"]) == (False, ids["wait"][0])
    assert headers[NEXT_AFTER_ID_HEADER] == str(ids["wait"][0])
    raw, _ = await api.call(
        "POST", "/messagelog/export", key="body_reader", body={"limit": 5, "after_id": ids["wait"][0]},
        expect=200,
    )  # fmt: skip
    manifest, files = _read_bundle(raw)
    assert files == {}
    assert [s["record_id"] for s in manifest["skipped"]] == ids["wait"][1:] + ids["later"]
    assert (manifest["complete"], manifest["counts"]["records"]) == (True, 3)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_node_log_export_zip_verifies_with_asic_verify(
    backend: str, request: pytest.FixtureRequest, evidence: Evidence, tmp_path: Path
) -> None:
    async with database_settings(backend, request) as db:
        home = create_home(tmp_path / "node", {"address": "127.0.0.2", **db})
        settings = open_home(home)
        async with open_node_store(settings) as node_store:
            await node_store.init_server(CLIENT, "ss9", address="127.0.0.2")
            ids = await _records(settings, node_store, evidence)
        _write_conf(evidence.trust, globalconf_dir(home))
        out = tmp_path / "out" / "evidence.zip"
        day = evidence.now.date().isoformat()
        ran = await xroad_mn(
            "node", "log", "export", "--dir", str(home), "--from", day, "--to", (evidence.now + timedelta(
                minutes=30)).isoformat(), "--client", "MN:GOV:5012345", "--out", str(out), "--json",
        )  # fmt: skip
        summary = ran.json()
        assert (summary["containers"], summary["skipped"], summary["complete"]) == (4, 2, True)
        manifest, files = _read_bundle(out.read_bytes())
        _check_bundle(manifest, files, evidence)
        assert manifest["node"] == "SERVER:MN/GOV/5012345/ss9"
        assert manifest["asked"]["client"] == "MEMBER:MN/GOV/5012345"
        assert [s["record_id"] for s in manifest["skipped"]] == ids["wait"]
        assert [p.name for p in out.parent.iterdir()] == ["evidence.zip"]  # no partial file left
        for name, data in files.items():
            path = tmp_path / "containers" / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            verified = await xroad_mn(
                "asic", "verify", str(path), "--conf", str(globalconf_dir(home)), "--json"
            )
            assert verified.json()["valid"] is True
        # The data subject: given in clear, recorded hashed; a directory still takes one exchange.
        await xroad_mn(
            "node", "log", "export", "--dir", str(home), "--subject", OTHER_SUBJECT, "--out",
            str(tmp_path / "later.zip"),
        )  # fmt: skip
        manifest, files = _read_bundle((tmp_path / "later.zip").read_bytes())
        assert manifest["counts"] == {"records": 2, "containers": 0, "skipped": 2}
        assert OTHER_SUBJECT not in json.dumps(manifest, ensure_ascii=False)
        ran = await xroad_mn(
            "node", "log", "export", "--dir", str(home), "--x-road-id", "q-rest", "--out",
            str(tmp_path / "dir"), "--json",
        )  # fmt: skip
        assert len(ran.json()["files"]) == 2
        refused = await xroad_mn(
            "node", "log", "export", "--dir", str(home), "--issue", "x", "--out", str(tmp_path / "d"),
            expect=2,
        )  # fmt: skip
        assert "--out FILE.zip" in refused.output
        audit = audit_log_file(home).read_text()
        assert audit.count('"Export message log"') == 3
        assert OTHER_SUBJECT not in audit


def test_node_apikey_commands(tmp_path: Path) -> None:
    home = create_home(tmp_path / "node", {"address": "127.0.0.2"})
    runner = CliRunner()
    created = json.loads(
        runner.invoke(
            node_cli,
            ["apikey", "create", "--dir", str(home), "--role", "xroad-mn-messagelog-body-reader",
             "--role", "xroad-securityserver-observer", "--json"],
        ).stdout
    )  # fmt: skip
    assert created["roles"] == ["xroad-mn-messagelog-body-reader", "xroad-securityserver-observer"]
    listed = json.loads(runner.invoke(node_cli, ["apikey", "list", "--dir", str(home), "--json"]).stdout)
    assert [k["id"] for k in listed["keys"]] == [created["api_key_id"]]
    assert created["api_key"] not in api_keys_file(home).read_text()
    wrong = runner.invoke(node_cli, ["apikey", "create", "--dir", str(home), "--role", "observer"])
    assert wrong.exit_code == 2
    assert "xroad-mn-messagelog-auditor" in wrong.output
    revoked = runner.invoke(node_cli, ["apikey", "revoke", "--dir", str(home), created["api_key_id"]])
    assert revoked.exit_code == 0, revoked.output
    listed = json.loads(runner.invoke(node_cli, ["apikey", "list", "--dir", str(home), "--json"]).stdout)
    assert listed["keys"] == []
    events = [json.loads(line)["event"] for line in audit_log_file(home).read_text().splitlines()]
    assert events == ["Create API key", "Revoke API key"]


async def test_an_export_bounded_in_bytes_continues_where_it_stopped(
    store: NodeStore, evidence: Evidence, tmp_path: Path
) -> None:
    """With ``max_bytes`` below one container, each export holds one (and the skipped records before the
    next); following ``next_after_id`` goes through every record exactly once."""
    settings = open_home(create_home(tmp_path / "node", {"address": "127.0.0.2"}))
    ids = await _records(settings, store, evidence)
    exported: list[int] = []
    skipped: list[int] = []
    after_id: int | None = None
    rounds = 0
    while True:
        rounds += 1
        out = io.BytesIO()
        summary = await messagelog.export(
            settings, store, LogFilters(), out, now=NOW, after_id=after_id, max_bytes=1
        )
        manifest, files = _read_bundle(out.getvalue())
        _check_bundle(manifest, files, evidence)
        assert len(files) <= 1
        exported += [c["record_id"] for c in manifest["containers"]]
        skipped += [s["record_id"] for s in manifest["skipped"]]
        assert (manifest["complete"], manifest["next_after_id"]) == (summary.complete, summary.next_after_id)
        if summary.complete:
            break
        after_id = summary.next_after_id
    assert exported == ids["batch"] + ids["rest"]
    assert skipped == ids["wait"] + ids["later"]
    assert rounds == 5  # one container each, then the records waiting for a time-stamp
