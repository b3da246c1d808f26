"""The agency registers' part of ``xroad-mn demo``: build (once) the demo agencies' databases.

A demo component (see :mod:`xroad_mn.cli.demo`): on the first run it generates the synthetic world and
loads each agency's SQLite database under ``DEMO/registries`` (a few seconds); later runs find them built
and only list them. Declared in ``pyproject.toml`` as ``registries = "adapters.demo.component:component"``
in the ``xroad_mn.demo`` entry-point group, it runs beside the registry; the adapters that serve these
databases read them at :func:`adapters.demo.registries.registry_urls` of that directory::

    $ xroad-mn demo --dir .demo
    ...
    Agency registers (synthetic, seed 11, 5000 citizens) in .demo/registries — built in 2.9 s:
      state_registration  General Authority for State Registration  citizens 5000, addresses 5000, ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

from adapters.demo.data import DEFAULT_CITIZENS, DEFAULT_SEED
from adapters.demo.registries import AGENCIES, BuildReport, build_demo_registries
from xroad_mn.cli.demo import DemoContext

__all__ = ["REGISTRIES_DIR", "component", "describe"]

REGISTRIES_DIR: Final = "registries"
"""The databases' directory in the demo home."""


def describe(directory: Path, report: BuildReport, counts: dict[str, int] | None = None) -> list[str]:
    """The lines the demo prints about the registers in ``directory`` after ``report``."""
    done = f"built in {report.total_seconds:.1f} s" if report.loaded else "already built, reused"
    world = f"synthetic, seed {DEFAULT_SEED}, {DEFAULT_CITIZENS} citizens"
    lines = [f"Agency registers ({world}) in {directory} — {done}:"]
    for agency in AGENCIES:
        tables = ", ".join(f"{t} {counts[t]}" if counts and t in counts else t for t in agency.tables)
        lines.append(f"  {agency.key:<19} {agency.name:<41} {tables}")
    return lines


@asynccontextmanager
async def component(context: DemoContext) -> AsyncIterator[Sequence[str]]:
    """Build the agency databases in ``DEMO/registries`` unless they are built; yield what to print."""
    directory = context.directory / REGISTRIES_DIR
    report = await build_demo_registries(directory)
    yield describe(directory, report, dict(report.rows) or None)
