"""Architecture rules from the design card, checked on the real package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "bibnet_ops"


def _core_modules() -> list[str]:
    mods = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts
        if "tui" in parts or parts[-1] == "__main__":
            continue
        mods.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return mods


def test_core_imports_no_textual_at_runtime() -> None:
    mods = _core_modules()
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k == 'textual' or k.startswith('textual.'))\n"
        "print(len(bad))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "0", "a core module imported Textual"


def test_core_sources_never_name_textual() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        if "tui" in path.relative_to(PKG).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "textual" or n.startswith("textual.") for n in names):
                offenders.append(f"{path}:{node.lineno}")
    assert offenders == []


def test_layering_rules() -> None:
    """Probes import neither engine nor store; the simulator never imports probes or engine."""
    rules = {
        "probes": ("bibnet_ops.engine", "bibnet_ops.store", "bibnet_ops.tui", "bibnet_ops.alerts"),
        "engine": ("bibnet_ops.store", "bibnet_ops.tui", "bibnet_ops.alerts", "bibnet_ops.reports"),
        "sim": ("bibnet_ops.probes", "bibnet_ops.engine", "bibnet_ops.tui"),
        "store": ("bibnet_ops.tui",),
        "reports": ("bibnet_ops.tui",),
        "inventory": ("bibnet_ops.engine", "bibnet_ops.store", "bibnet_ops.tui"),
    }
    offenders = []
    for part, banned in rules.items():
        for path in (PKG / part).rglob("*.py") if (PKG / part).is_dir() else []:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(banned):
                    offenders.append(f"{path.name}:{node.lineno} {node.module}")
                elif isinstance(node, ast.Import):
                    offenders += [f"{path.name}:{node.lineno} {a.name}" for a in node.names
                                  if a.name.startswith(banned)]
    assert offenders == []


def test_modules_stay_small() -> None:
    big = [f"{p.relative_to(PKG)}: {n}" for p in PKG.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600]
    assert big == []
