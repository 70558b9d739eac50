"""Charts render Chinese with a real CJK font, read back from the PNG: no empty boxes.

A glyph the font lacks is drawn as the same empty box (tofu) whatever the character, and
matplotlib warns about it; pytest turns warnings into errors (pyproject.toml), and these tests
also say so explicitly. The control test shows the read-back check catches tofu: with a font
that has no CJK glyphs, two different characters give identical pictures.
"""

from __future__ import annotations

import io
import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.image import imread

import charts
from charts import figures, fonts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FUNNEL = charts.FunnelChart(
    stages=[("潜在", 120), ("意向", 60), ("报价", 30), ("成交", 11)],
    conversions=[0.5, 0.5, 0.37],
    weakest=2,
)
FORECAST = charts.ForecastChart(
    windows=[charts.Band("本月剩余", 1e5, 2e5, 3e5), charts.Band("下月", 2e5, 3e5, 4e5)],
    backtest=[charts.BacktestBand(charts.Band("1月", 1e5, 2e5, 3e5), 2.5e5)],
)
RADAR = (["效率", "质量", "成长", "沟通"], [80, 60, 40, 70], [50, 55, 45, 60])


def _pixels(png: bytes) -> np.ndarray:
    return imread(io.BytesIO(png), format="png")


def _single_character(character: str, rc: dict) -> bytes:
    """One character, large, on an otherwise empty figure."""
    with matplotlib.rc_context(rc):
        figure = Figure(figsize=(1, 1), dpi=100)
        FigureCanvasAgg(figure)
        figure.text(0.5, 0.5, character, fontsize=48, ha="center", va="center")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()


def test_the_font_file_comes_from_the_installed_wheel_and_holds_the_charts_characters():
    assert fonts.CJK_FONT_PATH.is_file()
    font = FT2Font(str(fonts.CJK_FONT_PATH))
    labels = [v for k, v in vars(figures).items() if k.endswith(("_LABEL", "_AXIS", "_LEGEND"))]
    text = "".join(labels) + "潜在意向报价成交每日晨报销售漏斗业绩预测本月剩余下月"
    assert len(labels) >= 8
    missing = [c for c in text if font.get_char_index(ord(c)) == 0]
    assert missing == []
    assert font.get_char_index(0xE000) == 0  # the check can fail: a private-use code point


def test_each_chart_is_a_png_drawn_without_a_missing_glyph_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph … missing from font(s)" would raise here
        pictures = [
            charts.funnel_png(FUNNEL, title="销售漏斗"),
            charts.forecast_png(FORECAST, title="业绩预测"),
            charts.radar_png(*RADAR, title="健康度"),
            charts.digest_png(FUNNEL, FORECAST, titles=("销售漏斗", "业绩预测")),
        ]
    for png in pictures:
        assert png.startswith(PNG_SIGNATURE)
        assert _pixels(png).shape[0] > 100


def test_a_character_the_font_lacks_warns_so_the_check_above_can_fail():
    with pytest.warns(UserWarning, match="missing from font"):
        charts.funnel_png(FUNNEL, title="\ue000")


def test_different_chinese_titles_draw_different_pictures_so_they_are_not_boxes():
    for draw in (
        lambda title: charts.funnel_png(FUNNEL, title=title),
        lambda title: charts.radar_png(*RADAR, title=title),
    ):
        first, second = _pixels(draw("漏")), _pixels(draw("斗"))
        assert first.shape == second.shape
        changed = np.argwhere(np.any(first != second, axis=-1))
        assert len(changed) > 20  # the two glyphs differ in many pixels
        assert changed[:, 0].max() < first.shape[0] * 0.15  # and only in the title, at the top


def test_the_charts_font_draws_distinct_glyphs_where_a_latin_font_draws_identical_boxes():
    latin_only = {**fonts.RC, "font.sans-serif": ["DejaVu Sans"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DejaVu Sans warns about the missing glyphs
        boxes = [_pixels(_single_character(c, latin_only)) for c in "漏斗"]
    assert np.array_equal(boxes[0], boxes[1])  # tofu: the method below would catch it
    glyphs = [_pixels(_single_character(c, fonts.RC)) for c in "漏斗"]
    assert not np.array_equal(glyphs[0], glyphs[1])
    assert (glyphs[0] < 1).any()  # something was drawn at all


def test_a_radar_draws_unknown_scores_and_missing_medians_without_a_missing_glyph():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        known = charts.radar_png(["效率", "质量", "成长"], [80, 60, 40], [50, 50, 50], title="x")
        unknown = charts.radar_png(
            ["效率", "质量", "成长"], [80, 60, None], [50, None, 50], title="x"
        )
    assert unknown.startswith(PNG_SIGNATURE)
    assert not np.array_equal(_pixels(known), _pixels(unknown))


def test_a_radar_refuses_mismatched_or_too_few_dimensions():
    with pytest.raises(ValueError):
        charts.radar_png(["效率", "质量"], [1, 2], [1, 2], title="x")
    with pytest.raises(ValueError):
        charts.radar_png(["效率", "质量", "成长"], [1, 2], [1, 2, 3], title="x")
