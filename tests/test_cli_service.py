"""Running as a service: global options after the command, journald/JSON logs, `check --json` kinds,
and the `[collector] metrics` / `pid_file` keys validated with file:line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from test_cli_check import bibnet, config

from bibnet_ops.cli import GLOBAL_OPTIONS, build_parser
from bibnet_ops.cli._logging import JournalFormatter, JsonFormatter, configure_logging

ROOT = Path(__file__).resolve().parents[1]


def _patient(tmp_path: Path) -> None:
    """Give the shared test template a timeout a loaded machine meets: these tests are about output, not speed."""
    template = tmp_path / "checks" / "web.toml"
    template.write_text(template.read_text(encoding="utf-8").replace("timeout = 0.5", "timeout = 5"),
                        encoding="utf-8")


Parsers = dict[tuple[str, ...], argparse.ArgumentParser]


def _leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Parsers:
    out: Parsers = {}
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        out[path] = parser
    for action in subs:
        for name, child in action.choices.items():
            out.update(_leaf_parsers(child, (*path, name)))
    return out


def test_every_command_accepts_the_global_options_after_it() -> None:
    parser = build_parser()
    leaves = _leaf_parsers(parser)
    assert ("config", "show") in leaves and ("collect",) in leaves and ("reload",) in leaves
    for path, sub in leaves.items():
        options = {o for action in sub._actions for o in action.option_strings}
        missing = [o for o in GLOBAL_OPTIONS if o not in options]
        assert not missing, f"bibnet-ops {' '.join(path)} lacks {missing}"


def test_global_option_before_the_command_is_kept_when_not_repeated_after() -> None:
    parser = build_parser()
    before = parser.parse_args(["--config", "/srv/a", "--log-format", "json", "config", "show"])
    after = parser.parse_args(["config", "show", "--config", "/srv/a", "--log-format", "json"])
    both = parser.parse_args(["--config", "/srv/a", "config", "show", "--config", "/srv/b"])
    assert (before.config, before.log_format) == (after.config, after.log_format) == ("/srv/a", "json")
    assert both.config == "/srv/b"  # the later one wins, as with any repeated option
    assert parser.parse_args(["collect"]).config is None


async def test_config_show_with_config_after_the_command_matches_before(tmp_path: Path) -> None:
    async with config(tmp_path, {"alger": None, "oran": None}):
        _patient(tmp_path)
        directory = str(tmp_path / "config")
        code_a, out_a, _ = await _cli(tmp_path, "--config", directory, "config", "show")
        code_b, out_b, _ = await _cli(tmp_path, "config", "show", "--config", directory)
        code_c, out_c, _ = await _cli(tmp_path, "check", "--json", "--config", directory)
    assert code_a == code_b == 0
    assert out_a == out_b and "alger" in out_a
    rows = [json.loads(line) for line in out_c.splitlines()]
    assert code_c == 0
    assert [(r["id"], r["probe"], r["template"], r["kind"]) for r in rows] == [
        ("alger/web/home", "http", "web", "catalogue"), ("oran/web/home", "http", "web", "catalogue")]
    assert all(r["site"] and r["device"] == "web" and r["check"] == "home" for r in rows)


async def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None, stderr_file: Path | None = None
               ) -> tuple[int, str, str]:
    """Run bibnet-ops in a fresh process (stderr to a file when given, to test the journal detection)."""
    err_target: int | object = asyncio.subprocess.PIPE
    handle = None
    if stderr_file is not None:
        handle = stderr_file.open("wb")
        err_target = handle
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bibnet_ops", *args, cwd=cwd, env={**os.environ, **(env or {})},
            stdout=asyncio.subprocess.PIPE, stderr=err_target)  # type: ignore[arg-type]
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if handle is not None:
            handle.close()
    text = stderr_file.read_text(encoding="utf-8") if stderr_file is not None else err.decode()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), text


async def test_logs_under_journald_carry_priorities_and_no_timestamps(tmp_path: Path) -> None:
    async with config(tmp_path, {"alger": None}):
        _patient(tmp_path)
        log = tmp_path / "stderr.log"
        log.touch()
        st = os.stat(log)
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        code, _, err = await _cli(tmp_path, "collect", "--once", "--no-store", "--config",
                                  str(tmp_path / "config"), env=env, stderr_file=log)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line]
    started = [line for line in lines if "collecting: 1 sites, 1 checks" in line]
    assert started and started[0].startswith("<6>bibnet_ops.collect: "), lines
    assert not any(line[:4].isdigit() for line in lines), "journald stamps lines itself"


async def test_logs_as_json_lines(tmp_path: Path) -> None:
    async with config(tmp_path, {"alger": None}):
        _patient(tmp_path)
        code, _, err = await _cli(tmp_path, "collect", "--once", "--no-store", "--log-format", "json",
                                  "--config", str(tmp_path / "config"))
    assert code == 0, err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    started = [r for r in records if r["message"].startswith("collecting: 1 sites")]
    assert started and started[0]["level"] == "INFO" and started[0]["logger"] == "bibnet_ops.collect"
    assert started[0]["time"].endswith("+00:00") and started[0]["pid"] > 0


def test_formatters_keep_a_traceback_together() -> None:
    import logging

    try:
        raise ValueError("bad reply")
    except ValueError:
        record = logging.LogRecord("bibnet_ops.x", logging.ERROR, __file__, 1, "it broke: %s", ("oran",),
                                   sys.exc_info())
    journal = JournalFormatter().format(record).splitlines()
    assert journal[0] == "<3>bibnet_ops.x: it broke: oran"
    assert all(line.startswith("<3>") for line in journal) and "ValueError: bad reply" in journal[-1]
    data = json.loads(JsonFormatter().format(record))
    assert data["level"] == "ERROR" and "ValueError: bad reply" in data["exc"]


def test_configure_logging_auto_is_text_on_a_terminal_or_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    import logging

    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    with (tmp_path / "out.log").open("w") as stream:
        assert configure_logging("auto", "INFO", stream) == "text"
        logging.getLogger("bibnet_ops.test").info("hello")
        assert configure_logging("json", "WARNING", stream) == "json"
        logging.getLogger("bibnet_ops.test").info("not shown at WARNING")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bibnet", False):
            root.removeHandler(handler)
    text = (tmp_path / "out.log").read_text()
    assert " INFO bibnet_ops.test: hello" in text and "not shown" not in text


async def test_collector_metrics_and_pid_file_keys_are_validated(tmp_path: Path) -> None:
    async with config(tmp_path, {"alger": None}):
        net = tmp_path / "config" / "network.toml"
        net.write_text(net.read_text() + 'metrics = "localhost"\npid_file = ""\n', encoding="utf-8")
        code, _, err = await bibnet(tmp_path, "config", "validate")
        assert code == 2
        assert "network.toml:8: [collector.metrics] 'localhost' is not HOST:PORT" in err, err
        assert "network.toml:9: [collector.pid_file]" in err
        net.write_text(net.read_text().replace('"localhost"', '"127.0.0.1:99999"').replace('pid_file = ""\n', ""))
        code, _, err = await bibnet(tmp_path, "config", "validate")
        assert code == 2 and "port must be between 0 and 65535" in err
        net.write_text(net.read_text().replace("127.0.0.1:99999", "[::1]:9877"))
        code, _, err = await bibnet(tmp_path, "config", "validate")
        assert code == 0, err


def test_the_systemd_unit_example_is_valid(tmp_path: Path) -> None:
    import shutil
    import subprocess

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = (ROOT / "contrib" / "bibnet-ops-collect.service").read_text(encoding="utf-8")
    assert "ExecReload=" in text and "bibnet-ops reload" in text and "RestartPreventExitStatus=2" in text
    # the example's install path replaced by this environment's command, so verify can check it is executable
    command = Path(sys.executable).with_name("bibnet-ops")
    if not command.exists():
        pytest.skip(f"{command} is not installed")
    unit = tmp_path / "bibnet-ops-collect.service"
    unit.write_text(text.replace("/opt/bibnet-ops/venv/bin/bibnet-ops", str(command)), encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
