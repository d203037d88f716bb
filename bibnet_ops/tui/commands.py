"""The command palette's provider: every action of the key registry that applies on the current screen."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from bibnet_ops.tui.keys import KeySpec, display_keys, registry

__all__ = ["RegistryCommands"]


class RegistryCommands(Provider):
    """Commands generated from the key registry (app actions plus those of the screen it was opened on)."""

    def _specs(self) -> list[KeySpec]:
        scope = getattr(self.screen, "SCOPE", "")
        read_only = bool(getattr(self.app, "read_only", False))
        seen: set[str] = set()
        out = []
        for spec in registry():
            if not spec.palette or spec.scope not in ("app", scope) or spec.action in seen:
                continue
            if read_only and spec.change:  # a read-only console offers no change
                continue
            if spec.action == "command_palette":
                continue
            seen.add(spec.action)
            out.append(spec)
        return out

    async def _run(self, spec: KeySpec) -> None:
        target = "app" if spec.scope == "app" else "screen"
        await self.app.run_action(f"{target}.{spec.action}")

    async def discover(self) -> Hits:
        for spec in self._specs():
            yield DiscoveryHit(spec.description, partial(self._run, spec), help=display_keys(spec.keys))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec in self._specs():
            score = matcher.match(spec.description)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(spec.description), partial(self._run, spec), help=display_keys(spec.keys)
                )
