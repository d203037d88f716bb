"""A technician's keymap: rebound keys work on every screen and show in footer, help and palette; a broken
keymap is refused before anything starts, each problem with its file, line and key."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_tui_support import fixed_inventory, fixed_source, frozen_clock, frozen_host

from bibnet_ops.inventory import ConfigError
from bibnet_ops.tui.app import DashboardApp
from bibnet_ops.tui.commands import RegistryCommands
from bibnet_ops.tui.keymap import default_keymap_path, load_keymap
from bibnet_ops.tui.keys import REGISTRY, use_keymap
from bibnet_ops.tui.screens import HelpScreen, OverviewScreen, ProblemsScreen

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def registry_keys() -> Iterator[None]:
    yield
    use_keymap({})  # the next test's screens get the registry's own keys


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keymap.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _text(app: DashboardApp) -> str:
    """What the terminal shows, as lines of text (from the SVG screenshot Textual exports)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text[^>]*x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot()):
        text = html.unescape(re.sub("<[^>]+>", "", m.group(3))).replace("\xa0", " ")
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), text))
    return "\n".join("".join(t for _, t in sorted(rows[y])) for y in sorted(rows))


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_keymap(path)
    return [str(issue) for issue in caught.value.issues]


async def test_rebound_keys_work_and_show_everywhere(tmp_path: Path) -> None:
    keymap = load_keymap(_write(tmp_path, '[keys]\nfilter = "s"\nproblems = "P,2"\nquit = "Q"\n'))
    assert keymap == {"filter": "s", "problems": "P,2", "quit": "Q"}
    app = DashboardApp(fixed_inventory(), fixed_source(), lang="en", clock=frozen_clock, host=frozen_host,
                       refresh=0.5, keymap=keymap)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        footer = _text(app).splitlines()[-1]
        assert "s Filter" in footer and "Q Quit" in footer and "/ Filter" not in footer
        await pilot.press("slash")  # no longer the filter key
        await pilot.pause()
        assert not app.screen.query_one("#filter").display
        await pilot.press("s")
        await pilot.pause()
        assert app.screen.query_one("#filter").display and app.focused is app.screen.query_one("#filter")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("exclamation_mark")  # the old problems key does nothing now
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, ProblemsScreen)
        palette = {spec.id: spec.keys for spec in RegistryCommands(app.screen)._specs()}
        assert palette["problems"] == "P,2" and palette["quit"] == "Q"
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = _text(app)
        assert re.search(r"P / 2\s+Problems", shown) and re.search(r"Q\s+Quit", shown)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("q")  # q was rebound away: still running
        await pilot.pause()
        assert app.is_running
        await pilot.press("Q")
        await pilot.pause()
    assert app.return_code == 0


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "\n".join([
        "[keys]",
        'fliter = "s"',            # 2: a typo
        'pause = 3',               # 3: not a string
        'help = "ctrl+, f1"',      # 4: not a key name
        'problems_mark = "a"',     # 5: a is already the ack key of the same screen
        'theme = "j"',             # 6: app keys are live on every screen, j moves in lists
        "",
        "[colors]",                # 8: not part of a keymap
        'x = "y"',
    ]))
    name = str(path)
    assert _errors(path) == [
        f"{name}:2: [keys.fliter] unknown binding id 'fliter' (did you mean 'filter'?)",
        f"{name}:3: [keys.pause] 'pause' must be a non-empty string of keys such as \"s,f3\"",
        f"{name}:4: [keys.help] not a key name: 'ctrl+' (examples: s, f3, ctrl+s, slash)",
        f"{name}:5: [keys.problems_mark] key a is also bound to 'problems_ack' (problems keys); "
        "rebind that one too or pick another key",
        f"{name}:6: [keys.theme] key j is also bound to 'down' (nav keys); rebind that one too or pick another key",
        f"{name}:8: [colors] unknown key 'colors' (a keymap has one table, [keys])",
    ]


def test_swapping_two_keys_is_no_clash_and_bad_toml_is_located(tmp_path: Path) -> None:
    swapped = load_keymap(_write(tmp_path, '[keys]\nproblems_ack = "x,f3"\nproblems_mark = "a,space"\n'))
    assert swapped == {"problems_ack": "x,f3", "problems_mark": "a,space"}
    assert _errors(_write(tmp_path, '[keys]\nfilter = "s"\nquit = \n')) == [
        f"{tmp_path / 'keymap.toml'}:3: invalid TOML: Invalid value"
    ]


def test_the_shipped_registry_has_no_clash_and_docs_list_every_id() -> None:
    assert load_keymap  # the default keys pass the same check a user's keymap gets
    from bibnet_ops.tui.keymap import _clashes

    assert _clashes({spec.id: spec.keys for spec in REGISTRY}) == []
    docs = (REPO / "docs" / "dashboard.md").read_text(encoding="utf-8")
    assert [spec.id for spec in REGISTRY if f"| `{spec.id}` | `{spec.keys}` |" not in docs] == []


def test_default_place_and_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIBNET_OPS_KEYMAP", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_keymap_path() is None
    mine = tmp_path / "xdg" / "bibnet-ops" / "keymap.toml"
    mine.parent.mkdir(parents=True)
    mine.write_text('[keys]\nfilter = "s"\n', encoding="utf-8")
    assert default_keymap_path() == mine
    bad = _write(tmp_path, '[keys]\nquitt = "x"\n')
    monkeypatch.setenv("BIBNET_OPS_KEYMAP", str(bad))
    assert default_keymap_path() == bad
    # The dashboard refuses it before starting a collector or touching the terminal.
    env = {**os.environ, "BIBNET_OPS_KEYMAP": str(bad)}
    done = subprocess.run([sys.executable, "-m", "bibnet_ops", "--config", str(REPO / "config"), "dashboard"],
                          capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"{bad}:2: [keys.quitt] unknown binding id 'quitt' (did you mean 'quit'?)",
        "bibnet-ops: 1 error(s) in the keymap",
    ]
    done = subprocess.run([sys.executable, "-m", "bibnet_ops", "demo", "--keymap", str(bad)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=REPO)
    assert done.returncode == 2 and "starting the simulated network" not in done.stderr, done.stderr
