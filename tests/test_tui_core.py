"""The dashboard's non-UI logic: map projection and rasterising, filters, i18n, Arabic display, state, problems."""

from __future__ import annotations

import re
import string

import pytest
from rich.cells import cell_len
from test_tui_support import FROZEN_NOW, fixed_events, fixed_inventory

from bibnet_ops.events import Sample, SiteStatusChange, StateChange
from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.tui.arabic import display_text, display_width, has_rtl
from bibnet_ops.tui.filters import SiteFilter, fold
from bibnet_ops.tui.fmt import age, short_site_name, value_with_unit
from bibnet_ops.tui.geo import ALGERIA_BBOX, BrailleCanvas, Projection, load_outline, outline_rows
from bibnet_ops.tui.headerdata import HeaderData, header_lines
from bibnet_ops.tui.i18n import CATALOGUES, detect_language, site_state_name, tr, use_language
from bibnet_ops.tui.keys import REGISTRY, display_keys
from bibnet_ops.tui.mapmodel import MapModel
from bibnet_ops.tui.netstate import NetworkState
from bibnet_ops.tui.problems import problem_rows
from bibnet_ops.tui.source import EventBuffer, PollHealth
from bibnet_ops.tui.status import SITE_GLYPH


@pytest.fixture(autouse=True)
def _english() -> None:
    use_language("en")


def _state() -> NetworkState:
    state = NetworkState(fixed_inventory())
    state.apply_many(fixed_events())
    return state


# Map.


def test_outline_is_packaged_closed_ring() -> None:
    ring = load_outline()
    assert len(ring) > 300 and ring[0] == ring[-1]
    lons = [p[0] for p in ring]
    assert min(lons) == pytest.approx(ALGERIA_BBOX[0]) and max(lons) == pytest.approx(ALGERIA_BBOX[2])


def test_projection_keeps_country_inside_grid_and_north_up() -> None:
    proj = Projection(40, 20)
    lon0, lat0, lon1, lat1 = ALGERIA_BBOX
    for lon, lat in [(lon0, lat0), (lon1, lat1), (lon0, lat1), (lon1, lat0)]:
        x, y = proj.to_dot(lon, lat)
        assert -0.5 <= x <= 2 * 40 and -0.5 <= y <= 4 * 20
    assert proj.to_cell(3.06, 36.75)[1] < proj.to_cell(5.52, 22.79)[1]  # Algiers above Tamanrasset
    assert proj.to_cell(-0.63, 35.69)[0] < proj.to_cell(6.6, 36.35)[0]  # Oran west of Constantine


def test_braille_canvas_sets_the_right_dots() -> None:
    canvas = BrailleCanvas(2, 1)
    canvas.set(0, 0)
    canvas.set(3, 3)
    canvas.set(99, 99)  # outside: ignored
    assert canvas.rows_text() == ["\u2801\u2880"]


def test_outline_rows_fill_the_requested_size() -> None:
    for cols, rows in [(30, 15), (70, 33)]:
        lines = outline_rows(cols, rows)
        assert len(lines) == rows and all(len(line) == cols for line in lines)
        assert sum(ch != " " for line in lines for ch in line) > rows  # something is drawn on most rows


def test_map_marker_shows_worst_status_and_selected_label() -> None:
    inv = fixed_inventory()
    model = MapModel(40, 18, inv.sites.values())
    status = {"bplp-25": SiteStatus.DOWN, "bm-25-01": SiteStatus.UNREACHABLE}
    row = model.cell_of["bplp-25"][1]
    text = "".join(t for t, _ in model.row_segments(row, status.get))
    assert SITE_GLYPH[SiteStatus.DOWN] in text
    # Selecting Oran draws its label on its row and only that row depends on it.
    oran_row = model.cell_of["bplp-31"][1]
    segs = model.row_segments(oran_row, status.get, "bplp-31", "bplp-31 Oran")
    assert any(style == "selected" for _, style in segs)
    assert "bplp-31 Oran" in "".join(t for t, _ in segs)
    assert sum(cell_len(t) for t, _ in segs) == 40
    assert model.rows_of(["bplp-31"]) == {oran_row}


# Filters.


def test_filter_by_state_words_in_both_languages() -> None:
    state = _state()
    inv = state.inventory
    for text in ("down", "/down", "panne", "EN PANNE"):
        sites = SiteFilter.parse(text).select(inv.sites.values(), state.site_status, inv.regions)
        assert [s.id for s in sites] == ["bplp-25"], text
    unreachable = SiteFilter.parse("injoignable").select(inv.sites.values(), state.site_status, inv.regions)
    assert {s.id for s in unreachable} == {"bm-25-01", "bplp-23"}


def test_filter_by_name_wilaya_region_tag_and_accents() -> None:
    state = _state()
    inv = state.inventory

    def ids(text: str) -> set[str]:
        return {s.id for s in SiteFilter.parse(text).select(inv.sites.values(), state.site_status, inv.regions,
                                                             {31: "Oran وهران"})}

    assert ids("oran") == {"bplp-31", "bm-31-01"}  # bm-31-01 through its wilaya name
    assert ids("31") == {"bplp-31", "bm-31-01"}
    assert ids("béchar") == ids("BECHAR") == {"bplp-08"}
    assert ids("sud-ouest") == {"bplp-08", "bplp-01"}
    assert ids("municipal est") == {"bm-25-01"}
    assert ids("") == set(inv.sites)
    assert ids("وهران") == {"bplp-31", "bm-31-01"}
    assert fold("Béjaïa") == "bejaia"


# i18n and Arabic.


def test_catalogues_have_same_keys_and_placeholders() -> None:
    en, fr = CATALOGUES["en"], CATALOGUES["fr"]
    assert set(en) == set(fr)
    fields = string.Formatter()
    for key in en:
        assert {f for _, f, _, _ in fields.parse(en[key]) if f} == {f for _, f, _, _ in fields.parse(fr[key]) if f}, key


def test_every_binding_and_state_has_a_translation() -> None:
    for spec in REGISTRY:
        assert spec.label in CATALOGUES["en"]
    for status in SiteStatus:
        assert f"site.{status.value}" in CATALOGUES["fr"]
    use_language("fr")
    assert site_state_name(SiteStatus.DOWN) == "EN PANNE"
    assert tr("key.quit") == "Quitter"


def test_no_user_visible_literal_strings_in_widgets() -> None:
    """Widgets take their words from the catalogue: no quoted sentence in a notify/update/Label call."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "bibnet_ops" / "tui"
    pattern = re.compile(r"(notify|Label|border_title|placeholder=)\(?\s*[\"'][A-Za-zÀ-ÿ ]{4,}[\"']")
    offenders = [f"{p.name}: {m.group(0)}" for p in [*root.glob("screens/*.py"), *root.glob("widgets/*.py")]
                 for m in pattern.finditer(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_detect_language_from_locale() -> None:
    assert detect_language({"LANG": "fr_DZ.UTF-8"}) == "fr"
    assert detect_language({"LC_ALL": "en_GB.UTF-8", "LANG": "fr_FR"}) == "en"
    assert detect_language({}) == "en"


def test_arabic_is_shaped_and_visually_ordered() -> None:
    name = "مكتبة وهران"
    shaped = display_text(name, "shaped")
    assert shaped != name and has_rtl(shaped)
    # Presentation forms: no base Arabic letters remain, and the first logical word is now on the right.
    assert all(not ("\u0621" <= ch <= "\u064a") for ch in shaped)
    assert shaped.index(display_text("وهران")) < shaped.index(display_text("مكتبة"))
    assert display_text(name, "raw") == name
    assert display_text("Oran", "shaped") == "Oran"
    assert display_width(name, "shaped") == cell_len(shaped) <= cell_len(name)


# State, feed, throughput, problems.


def test_state_counts_throughput_and_pages_today() -> None:
    state = _state()
    counts = state.counts()
    assert counts[SiteStatus.DOWN] == 1 and counts[SiteStatus.UNREACHABLE] == 2 and counts[SiteStatus.UP] == 8
    assert state.throughput() == pytest.approx(13 * 130.0)
    assert state.pages_today() == 13 * 25 * 11
    assert state.feed[0].time >= state.feed[-1].time  # newest first


def test_state_tracks_dirty_sites_and_checks() -> None:
    state = _state()
    state.take_dirty()
    state.apply(StateChange("bplp-31/catalogue/opac", "bplp-31", FROZEN_NOW, CheckStatus.OK, CheckStatus.WARNING,
                            False, "slow", 1, 3))
    sites, checks = state.take_dirty()
    assert sites == {"bplp-31"} and checks == {"bplp-31/catalogue/opac"}
    assert state.take_dirty() == (set(), set())
    view = state.checks["bplp-31/catalogue/opac"]
    assert (view.status, view.hard, view.attempt, view.max_attempts) == (CheckStatus.WARNING, False, 1, 3)


def test_pages_today_survives_counter_reset() -> None:
    state = NetworkState(fixed_inventory())
    cid = "bplp-31/scanner-1/pages"
    for total, t in [(1000, FROZEN_NOW - 300), (1100, FROZEN_NOW - 200), (20, FROZEN_NOW - 100), (70, FROZEN_NOW)]:
        state.apply(Sample(cid, CheckStatus.OK, value=50.0, values={"total": total}, time=t))
    assert state.pages_today() == 100 + 50


def test_problems_sorted_and_unreachable_folded_under_root_cause() -> None:
    state = _state()
    rows = problem_rows(state)
    keys = [r.key for r in rows]
    # CRITICAL first (oldest first), each followed by the fold of sites behind it, then WARNINGs.
    assert keys[:2] == ["bplp-25/catalogue/opac", "fold:bplp-25"]
    assert rows[1].folded == ("bm-25-01", "bplp-23")
    assert [r.status for r in rows if not r.folded] == sorted(
        (r.status for r in rows if not r.folded), key=lambda s: {"CRITICAL": 0, "WARNING": 1, "UNKNOWN": 2}[s])
    assert not any(r.site_id in ("bm-25-01", "bplp-23") and not r.folded for r in rows)
    assert "bplp-11" not in {r.site_id for r in rows}  # maintenance is not a problem


def test_event_buffer_drains_in_order() -> None:
    buf = EventBuffer(limit=3, health=lambda: PollHealth(1.0, 0.0, 2.0), poll_now=lambda p: p == "x")
    for i in range(5):
        buf(SiteStatusChange(str(i), 0.0, SiteStatus.UP, SiteStatus.DOWN))
    assert [e.site_id for e in buf.drain()] == ["2", "3", "4"]  # type: ignore[attr-defined]
    assert buf.drain() == [] and buf.poll_now("x") and not buf.poll_now("y")
    assert buf.poll_health() == PollHealth(1.0, 0.0, 2.0)
    assert buf.events_dropped() == 2 and buf.collector_stopped() is None


def test_event_buffer_asks_for_every_state_again_after_dropping() -> None:
    asked: list[int] = []
    buf = EventBuffer(limit=2, resync=lambda: asked.append(len(asked)))
    buf(SiteStatusChange("a", 0.0, SiteStatus.UP, SiteStatus.DOWN))
    buf.drain()
    assert asked == []  # nothing lost, nothing to resend
    for i in range(3):
        buf(SiteStatusChange(str(i), 0.0, SiteStatus.UP, SiteStatus.DOWN))
    buf.drain()
    buf.drain()
    assert asked == [0] and buf.events_dropped() == 1  # once per episode of drops


# Formatting and header.


def test_formatting() -> None:
    assert age(42) == "42s" and age(3600 * 5) == "5h" and age(None) == "never"
    assert value_with_unit(0.123, "s") == "123 ms" and value_with_unit(None, "s") == "—"
    assert short_site_name("Bibliothèque principale de lecture publique de Laghouat") == "BPLP Laghouat"
    assert short_site_name("Bibliothèque municipale d'Es Senia") == "BM Es Senia"


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("width", [80, 160])
def test_header_fits_and_never_relies_on_colour(lang: str, width: int) -> None:
    use_language(lang)
    state = _state()
    data = HeaderData(counts=state.counts(), total_sites=13, throughput=1690, pages_today=3575,
                      health=PollHealth(12.5, 0.2, 1.0), cpu=12, memory=41, clock="10:30:00", paused=True)
    top, bottom = header_lines(data, width - 2)
    top_text = "".join(t for t, _ in top)
    assert cell_len(top_text) <= width - 2 and cell_len("".join(t for t, _ in bottom)) <= width - 2
    assert tr("header.paused") in top_text and "10:30:00" in top_text
    for status in (SiteStatus.DOWN, SiteStatus.UNREACHABLE):
        assert SITE_GLYPH[status] in top_text


def test_key_registry_ids_unique_and_displayable() -> None:
    ids = [spec.id for spec in REGISTRY]
    assert len(ids) == len(set(ids))
    assert display_keys("question_mark,f1") == "? / F1"
    # Every action a person needs has a key that survives tmux (a plain printable key).
    for action in ("quit", "help", "command_palette", "toggle_pause", "faster", "slower", "filter", "refresh_now"):
        keys = [k for spec in REGISTRY if spec.action == action for k in spec.keys.split(",")]
        assert any(len(k) == 1 or k in ("question_mark", "colon", "slash", "plus", "minus", "equals_sign")
                   for k in keys), action


def test_tile_labels_keep_what_tells_annexes_apart() -> None:
    from bibnet_ops.tui.widgets.tiles import tile_label

    labels = {tile_label(f"bplp-01-a{n:02d}", 9) for n in range(1, 13)}
    assert len(labels) == 12 and all(len(label) == 9 for label in labels)
    assert tile_label("bna", 9) == "bna      "
