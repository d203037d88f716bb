"""The `/` site filter: every word must match a site's name, id, wilaya, region, tag or state.

A word that names a state in English or French (`down`, `panne`, `injoignable`...) selects sites in that
state; any other word is matched, ignoring case and accents, at the start of a word of the site's id,
French and Arabic names, wilaya code and name, region id and name, kind and tags. Plain functions.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bibnet_ops.model import Region, Site, SiteStatus
from bibnet_ops.tui.i18n import CATALOGUES

__all__ = ["SiteFilter", "fold", "load_wilaya_names"]


def fold(text: str) -> str:
    """Lower-case and strip accents so `Béjaïa`, `bejaia` and `BEJAIA` compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _state_words() -> dict[str, SiteStatus]:
    words: dict[str, SiteStatus] = {}
    for status in SiteStatus:
        words[fold(status.value)] = status
        for catalogue in CATALOGUES.values():
            name = fold(catalogue[f"site.{status.value}"])
            words[name] = status
            words[name.replace(" ", "")] = status
            # "en panne" -> "panne", "en service" -> "service": the word people type.
            words[name.split()[-1]] = status
    words.update({"warn": SiteStatus.DEGRADED, "unreach": SiteStatus.UNREACHABLE, "maint": SiteStatus.MAINTENANCE})
    return words


_STATES = _state_words()
_PHRASES = sorted((w for w in (fold(c[f"site.{s.value}"]) for c in CATALOGUES.values() for s in SiteStatus)
                   if " " in w), key=len, reverse=True)


def load_wilaya_names(root: Path | None) -> dict[int, str]:
    """Wilaya names by code from `<config>/data/wilayas.csv` when the inventory ships it, else empty."""
    if root is None:
        return {}
    path = root / "data" / "wilayas.csv"
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return {int(row["code"]): f"{row['name_fr']} {row.get('name_ar', '')}" for row in csv.DictReader(fh)}
    except (OSError, KeyError, ValueError):
        return {}


@dataclass(frozen=True)
class SiteFilter:
    """A parsed filter: state words and text words, all of which must match."""

    text: str
    states: frozenset[SiteStatus]
    words: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> SiteFilter:
        """Parse what the user typed after `/` (a leading `/` is ignored)."""
        states: set[SiteStatus] = set()
        words: list[str] = []
        folded = fold(text.strip().lstrip("/"))
        # Multi-word state names ("en panne") are one state, not two words.
        for phrase in _PHRASES:
            folded = folded.replace(phrase, phrase.replace(" ", ""))
        for word in folded.split():
            if word in _STATES:
                states.add(_STATES[word])
            else:
                words.append(word)
        return cls(text.strip(), frozenset(states), tuple(words))

    @property
    def empty(self) -> bool:
        return not self.states and not self.words

    def matches(
        self,
        site: Site,
        status: SiteStatus | None,
        regions: Mapping[str, Region] | None = None,
        wilayas: Mapping[int, str] | None = None,
    ) -> bool:
        """True if the site passes every state and word of the filter."""
        if self.states and status not in self.states:
            return False
        if not self.words:
            return True
        hay = _haystack(site, regions or {}, wilayas or {})
        return all(_word_matches(word, site, hay) for word in self.words)

    def select(
        self,
        sites: Iterable[Site],
        status_of: Callable[[str], SiteStatus | None],
        regions: Mapping[str, Region] | None = None,
        wilayas: Mapping[int, str] | None = None,
    ) -> list[Site]:
        """The sites that pass the filter, in the order given."""
        if self.empty:
            return list(sites)
        return [s for s in sites if self.matches(s, status_of(s.id), regions, wilayas)]


def _word_matches(word: str, site: Site, hay: str) -> bool:
    if word.isdigit():
        # A number is a wilaya code (`/31`) or part of an id (`bplp-31`).
        return int(word) == site.wilaya or word in fold(site.id)
    # Words match at the start of a word of the site's description: `est` finds the Est region, not Ouest.
    return word in hay and re.search(r"(?<!\w)" + re.escape(word), hay) is not None


# Folded descriptions by site and names: folding every site's text again on each keystroke of `/` cost
# half a key press's time at 2,000 sites.
_HAYSTACKS: dict[tuple[str, ...], str] = {}
_HAYSTACKS_MAX = 50_000


def _haystack(site: Site, regions: Mapping[str, Region], wilayas: Mapping[int, str]) -> str:
    region = regions.get(site.region)
    # every text that goes into the description is the key, so an edited site or region is folded anew
    key = (
        site.id,
        site.name_fr,
        site.name_ar,
        site.region,
        site.kind,
        *site.tags,
        wilayas.get(site.wilaya, ""),
        region.name_fr if region else "",
        region.name_ar if region else "",
    )
    hay = _HAYSTACKS.get(key)
    if hay is None:
        hay = fold(" ".join(key))
        if len(_HAYSTACKS) >= _HAYSTACKS_MAX:
            _HAYSTACKS.clear()
        _HAYSTACKS[key] = hay
    return hay
