"""The xroad-mn root command: entry-point discovery and the XRoadError funnel."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from io import StringIO

import structlog
import typer
from typer.testing import CliRunner

from xroad_mn.cli.main import ENTRY_POINT_GROUP, build_app
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.logs import bound_context, configure_logging


def _app_with_probe() -> typer.Typer:
    app = build_app()
    probe = typer.Typer()

    @probe.command()
    def fail() -> None:
        raise XRoadError(
            FaultCode.MALFORMED_ANCHOR, "anchor has no instanceIdentifier", details={"file": "a.xml"}
        )

    @probe.command()
    def crash() -> None:
        raise RuntimeError("disk on fire")

    @probe.command()
    def ok() -> None:
        typer.echo("fine")

    app.add_typer(probe, name="probe")
    return app


def test_xroad_error_becomes_exit_1_with_code_and_message() -> None:
    result = CliRunner().invoke(_app_with_probe(), ["probe", "fail"])
    assert result.exit_code == 1
    assert "malformed_anchor" in result.output
    assert "anchor has no instanceIdentifier" in result.output
    assert "Traceback" not in result.output


def test_commands_run_and_version_prints() -> None:
    runner = CliRunner()
    assert runner.invoke(_app_with_probe(), ["probe", "ok"]).output.strip() == "fine"
    assert "xroad-mn 0.1.0" in runner.invoke(build_app(), ["--version"]).output


def test_every_declared_entry_point_is_a_sub_command() -> None:
    declared = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert "trust" in declared
    result = CliRunner().invoke(build_app(), ["--help"])
    assert result.exit_code == 0
    for name in declared:
        assert name in result.output
    assert "unavailable" not in result.output


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "xroad_mn", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "xroad-mn 0.1.0"


def test_json_logs_carry_bound_context() -> None:
    stream = StringIO()
    configure_logging("json", level="info", stream=stream)
    try:
        with bound_context(x_road_id="MN-1", client="SUBSYSTEM:MN/GOV/5012345/civil-registry", service=None):
            structlog.get_logger("t").info("message_logged", records=3)
        structlog.get_logger("t").debug("hidden")
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1
    assert lines[0]["event"] == "message_logged"
    assert lines[0]["x_road_id"] == "MN-1"
    assert lines[0]["client"] == "SUBSYSTEM:MN/GOV/5012345/civil-registry"
    assert "service" not in lines[0]
    assert lines[0]["level"] == "info"


def test_unexpected_exception_exits_2_without_traceback() -> None:
    result = CliRunner().invoke(_app_with_probe(), ["probe", "crash"])
    assert result.exit_code == 2
    assert "internal error" in result.output
    assert "disk on fire" in result.output
    assert "Traceback" not in result.output
    structlog.reset_defaults()


def test_error_output_carries_the_details_and_logs_the_fault_detail_id() -> None:
    """The fault-detail id is in the log (and in ``--json``), not at the end of the human error line."""
    result = CliRunner().invoke(
        _app_with_probe(), ["--log-level", "info", "--log-format", "json", "probe", "fail"]
    )
    assert "file: a.xml" in result.output
    assert "fault detail:" not in result.output
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failed = [entry for entry in logged if entry["event"] == "command_failed"]
    assert failed
    assert failed[0]["code"] == "malformed_anchor"
    assert len(failed[0]["detail"]) == 36


def test_a_sub_command_imports_only_its_own_application() -> None:
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from xroad_mn.cli.main import build_app\n"
        "result = CliRunner().invoke(build_app(), ['asic', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "apps = ('security_server', 'registry', 'adapters', 'trust_services')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(apps)))\n"
    )
    argv = [sys.executable, "-c", probe]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_broken_plug_in_is_named_and_the_others_still_work() -> None:
    from importlib.metadata import EntryPoint

    from xroad_mn.cli.main import _LazyRoot

    broken = EntryPoint(name="broken", value="no_such_package.cli:app", group=ENTRY_POINT_GROUP)
    asic = next(ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "asic")
    root = type("Probe", (_LazyRoot,), {"entry_points": {"broken": broken, "asic": asic}})
    app = typer.Typer(cls=root, no_args_is_help=True)
    app.callback()(lambda: None)
    result = CliRunner().invoke(app, ["broken", "x"])
    assert result.exit_code == 2
    assert "sub-command 'broken' is unavailable (no_such_package.cli:app)" in result.output
    assert CliRunner().invoke(app, ["asic", "--help"]).exit_code == 0
