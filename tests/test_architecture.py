"""Architecture rules checked on the real package: the import contracts, no import cycles, small modules.

The contracts live in pyproject.toml (`[tool.importlinter]`, drawn in docs/architecture.md); `make lint`
runs them with `lint-imports`. Here they run on the package as it is, and on copies of it with one
forbidden import added, to show that each contract catches what it is written for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "bibnet_ops"

LAYERS = "Doors open one way"
NO_TEXTUAL = "The core imports no Textual"
TUI_SIM = "The dashboard and the simulator do not know each other"
SIM_OBSERVED = "The simulator is the world being observed"
ACYCLIC = "No import cycles"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the contracts of `root`/pyproject.toml on the package in `root`."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", code, "--no-logo", "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )


def _verdicts(output: str) -> dict[str, str]:
    """Contract name prefix -> KEPT or BROKEN, from lint-imports' summary."""
    flat = " ".join(output.split())
    verdicts = {}
    for name in (LAYERS, NO_TEXTUAL, TUI_SIM, SIM_OBSERVED, ACYCLIC):
        start = flat.find(name)
        assert start >= 0, f"contract {name!r} not run:\n{output}"
        kept, broken = flat.find(" KEPT", start), flat.find(" BROKEN", start)
        candidates = [i for i in (kept, broken) if i >= 0]
        verdicts[name] = "BROKEN" if candidates and min(candidates) == broken else "KEPT"
    return verdicts


def test_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(_verdicts(result.stdout).values()) == {"KEPT"}


# One forbidden import each (module relative to bibnet_ops/, code appended to it), and what it breaks.
BREAKS = {
    "the engine reaches up into reports, inside a function": (
        "engine/_health.py",
        "\n\ndef _report() -> None:\n    from bibnet_ops.reports import build_report  # noqa: F401\n",
        {LAYERS},
    ),
    "the engine reaches up into the dashboard, which reaches it through the collector": (
        "engine/_health.py",
        "\n\ndef _peek() -> None:\n    from bibnet_ops.tui import app  # noqa: F401\n",
        {LAYERS, ACYCLIC},
    ),
    "store reaches up into reports, for typing only": (
        "store/_read.py",
        "\n\nif TYPE_CHECKING:\n    from bibnet_ops.reports import UptimeReport  # noqa: F401\n",
        {LAYERS, ACYCLIC},
    ),
    "the model imports Textual": (
        "model.py",
        "\n\ndef _widget() -> None:\n    import textual.widgets  # noqa: F401\n",
        {NO_TEXTUAL},
    ),
    "the simulator imports the engine": (
        "sim/_state.py",
        "\n\ndef _engine() -> None:\n    from bibnet_ops.engine import Engine  # noqa: F401\n",
        {SIM_OBSERVED},
    ),
    "the simulator knows the dashboard": (
        "sim/_state.py",
        "\n\ndef _fmt() -> None:\n    from bibnet_ops.tui import fmt  # noqa: F401\n",
        {LAYERS, TUI_SIM},
    ),
    "two report modules import each other": (
        "reports/_cells.py",
        "\n\ndef _html() -> None:\n    from bibnet_ops.reports import _html  # noqa: F401\n",
        {ACYCLIC},
    ),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_forbidden_import_breaks_its_contract(case: str, tmp_path: Path) -> None:
    module, code, broken = BREAKS[case]
    shutil.copytree(PKG, tmp_path / "bibnet_ops", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "bibnet_ops" / module
    text = target.read_text(encoding="utf-8")
    if "TYPE_CHECKING" in code and "TYPE_CHECKING" not in text:
        text = text.replace("from __future__ import annotations\n",
                            "from __future__ import annotations\n\nfrom typing import TYPE_CHECKING\n", 1)
    target.write_text(text + code, encoding="utf-8")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    verdicts = _verdicts(result.stdout)
    assert {name for name, verdict in verdicts.items() if verdict == "BROKEN"} == broken, result.stdout


def _cycles(nodes: Iterable[str], edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules() -> None:
    graph = grimp.build_graph("bibnet_ops")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(graph.modules, edges) == []


def test_no_import_cycles_between_the_parts_of_a_package() -> None:
    """Within each package, its modules and subpackages (with all they contain) form no cycle."""
    graph = grimp.build_graph("bibnet_ops")
    found = []
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        parts = graph.find_children(package)

        def part_of(module: str, parts: set[str] = parts) -> str | None:
            return next((p for p in parts if module == p or module.startswith(p + ".")), None)

        edges: dict[str, set[str]] = {}
        for module in graph.modules:
            source = part_of(module)
            if source is None:
                continue
            for imported in graph.find_modules_directly_imported_by(module):
                target = part_of(imported)
                if target is not None and target != source:
                    edges.setdefault(source, set()).add(target)
        found += _cycles(parts, edges)
    assert found == []


def test_cycle_finder_sees_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles("abcd", edges) == [["a", "b", "c"]]


def test_every_module_imports() -> None:
    """A module that imports a name no longer there fails here (mypy is told to ignore missing imports)."""
    modules = sorted(m for m in grimp.build_graph("bibnet_ops").modules if not m.endswith("__main__"))
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    result = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


def test_modules_stay_small() -> None:
    big = [f"{p.relative_to(PKG)}: {n}" for p in PKG.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600]
    assert big == []
