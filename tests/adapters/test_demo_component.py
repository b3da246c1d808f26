"""adapters.demo.component: the demo builds the agency databases on its first run and reuses them after."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from adapters.demo.component import REGISTRIES_DIR, component
from adapters.demo.registries import AGENCIES
from trust_services.pki import build_dev_pki
from xroad_mn.cli.demo import DemoContext, DemoTrustServices


def _context(directory: Path) -> DemoContext:
    pki = build_dev_pki(datetime.now(UTC))
    trust = DemoTrustServices(
        directory=directory / "trust",
        ca_url="http://127.0.0.1:1/ca",
        ocsp_url="http://127.0.0.1:1/ocsp",
        tsa_url="http://127.0.0.1:1/tsa",
        ca_certificate=pki.root.certificate,
        ocsp_certificate=pki.ocsp_responder.certificate,
        tsa_certificate=pki.tsa.certificate,
        created=True,
    )
    return DemoContext(
        directory=directory, instance="MN", host="127.0.0.1", ephemeral_ports=True, trust=trust
    )


async def test_the_first_run_builds_the_databases_and_later_runs_reuse_them(tmp_path: Path) -> None:
    context = _context(tmp_path)
    async with component(context) as first:
        pass
    assert "built in" in first[0]
    assert any("citizens 5000" in line for line in first)
    files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / REGISTRIES_DIR).glob("*.db")}
    assert sorted(files) == sorted(f"{a.key}.db" for a in AGENCIES)

    async with component(context) as second:
        pass
    assert "already built, reused" in second[0]
    assert "created" not in " ".join(second)
    assert [line.split()[0] for line in second[1:]] == [a.key for a in AGENCIES]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / REGISTRIES_DIR).glob("*.db")} == files
