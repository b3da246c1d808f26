"""``init_node`` and ``run_node`` for real: a refused init leaves nothing behind, a wrong PIN stops the node
before it listens, and two nodes run side by side on 127.0.0.33 and 127.0.0.34 with X-Road's default ports."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from security_server.app import run_node
from security_server.home import anchor_file, open_home
from security_server.settings import DEFAULT_ADMIN_PORT, DEFAULT_OCSP_RESPONDER_PORT
from tests.registry.test_e2e import pinned_context
from tests.security_server.node_world import PIN, init_test_node
from tests.security_server.test_registration import World, running_world
from xroad_mn.errors import XRoadError
from xroad_mn.globalconf.anchor import build_anchor
from xroad_mn.identifiers import MemberId


async def _refused(world: World, home: Path, code: str, **kwargs: object) -> XRoadError:
    with pytest.raises(XRoadError) as e:
        await init_test_node(world, home, "127.0.0.33", **kwargs)  # type: ignore[arg-type]
    assert e.value.code == code, e.value
    return e.value


async def test_a_refused_init_leaves_nothing_behind(tmp_path: Path) -> None:
    async with running_world(tmp_path) as world:
        home = tmp_path / "ss1"
        url = world.anchor.sources[0].download_url
        # An anchor whose key did not sign the configuration its source serves.
        unknown = build_anchor("MN", [(url, [world.tls_cert])], datetime.now(UTC))
        err = await _refused(world, home, "global_conf_invalid", anchor=unknown)
        assert "verification certificate is not among the trusted ones" in err.message
        assert not home.exists()
        # The configuration has expired by the time the node looks at it.
        later = datetime.now(UTC) + timedelta(days=2)
        await _refused(world, home, "global_conf_outdated", clock=lambda: later)
        assert not home.exists()
        # An anchor of another instance than the owner's, and an owner the registry does not know.
        other = build_anchor("EE", [(url, [world.tls_cert])], datetime.now(UTC))
        await _refused(world, home, "invalid_request", anchor=other)
        err = await _refused(world, home, "not_found", owner=MemberId("MN", "GOV", "7777777"))
        assert "MEMBER:MN/GOV/7777777 is not a member" in err.message
        assert not home.exists()
        # An empty directory given as home stays, empty.
        home.mkdir()
        await _refused(world, home, "not_found", owner=MemberId("MN", "GOV", "7777777"))
        assert list(home.iterdir()) == []
        # A home holding a node is not initialised twice; the first node stays as it was.
        await init_test_node(world, home, "127.0.0.33")
        anchor = anchor_file(home).read_bytes()
        await _refused(world, home, "conflict")
        assert anchor_file(home).read_bytes() == anchor
        assert open_home(home, env={}).address == "127.0.0.33"


def _free(host: str, port: int) -> bool:
    try:
        socket.create_server((host, port)).close()
    except OSError:
        return False
    return True


async def test_a_wrong_pin_stops_the_node_before_it_listens(tmp_path: Path) -> None:
    async with running_world(tmp_path) as world:
        init = await init_test_node(world, tmp_path / "ss1", "127.0.0.35")
        with pytest.raises(XRoadError) as e:
            async with run_node(init.settings, pin="not-the-pin"):
                pytest.fail("the node started")
        assert e.value.code == "signer.pin_incorrect"
        assert "PIN" in e.value.message
        assert _free("127.0.0.35", DEFAULT_ADMIN_PORT)
        assert _free("127.0.0.35", DEFAULT_OCSP_RESPONDER_PORT)


async def test_two_nodes_side_by_side_on_default_ports(tmp_path: Path) -> None:
    async with running_world(tmp_path) as world:
        inits = [
            await init_test_node(world, tmp_path / f"ss{i}", f"127.0.0.{31 + i}", server_code=f"ss{i}")
            for i in (2, 3)
        ]
        tls = pinned_context(world.tls_cert)
        async with (
            run_node(inits[0].settings, pin=PIN, globalconf_ssl=tls) as first,
            run_node(inits[1].settings, pin=PIN, globalconf_ssl=tls) as second,
            aiohttp.ClientSession() as session,
        ):
            assert (first.admin_url, first.ocsp_url) == ("http://127.0.0.33:4000", "http://127.0.0.33:5577")
            assert (second.admin_url, second.ocsp_url) == ("http://127.0.0.34:4000", "http://127.0.0.34:5577")
            for init, node, code in ((inits[0], first, "ss2"), (inits[1], second, "ss3")):
                headers = {"Authorization": f"X-Road-ApiKey token={init.api_key}"}
                async with session.get(node.admin_url + "/api/v1/status", headers=headers) as resp:
                    assert resp.status == 200
                    assert (await resp.json())["server_code"] == code
                async with session.head(node.ocsp_url + "/") as resp:
                    assert resp.status == 200
            # The key of one node opens nothing on the other.
            headers = {"Authorization": f"X-Road-ApiKey token={inits[0].api_key}"}
            async with session.get(second.admin_url + "/api/v1/status", headers=headers) as resp:
                assert resp.status == 401
