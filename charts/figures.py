"""The charts: the funnel, the forecast's intervals, a rep's radar, and the digest's one image.

Each function takes plain numbers and returns PNG bytes. Figures are built with
`matplotlib.figure.Figure` and drawn by the Agg canvas, never through pyplot, so no global
figure state is left behind in a worker that draws many.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.projections.polar import PolarAxes
from matplotlib.ticker import FuncFormatter

from charts.fonts import RC

DPI = 100
BAR_COLOUR = "#3b82f6"
WEAK_COLOUR = "#ef4444"
MEDIAN_COLOUR = "#9ca3af"
ACTUAL_COLOUR = "#111827"

# The charts' own words (titles are the caller's).
CONVERSION_LABEL = "转化 {rate}"
NO_CONVERSION_LABEL = "转化 —"
WEAKEST_LABEL = "（最弱）"
CUSTOMERS_AXIS = "客户数"
REVENUE_AXIS = "金额（元）"
TEN_THOUSANDS = "{value:,.0f}万"  # Chinese reads large sums in 万 (10,000)
INTERVAL_LEGEND = "P10–P90"
P50_LEGEND = "P50"
ACTUAL_LEGEND = "实际"
VALUE_LEGEND = "本人"
MEDIAN_LEGEND = "团队中位数"
NO_SCORE_LABEL = "{}（无数据）"


@dataclass(frozen=True)
class FunnelChart:
    """Stages in order with their counts; `conversions[i]` leads from stage i to stage i + 1
    (None: nobody to convert); `weakest` is the index of the weakest step, if any."""

    stages: Sequence[tuple[str, int]]
    conversions: Sequence[float | None]
    weakest: int | None = None


@dataclass(frozen=True)
class Band:
    label: str
    p10: float
    p50: float
    p90: float


@dataclass(frozen=True)
class BacktestBand:
    band: Band
    actual: float


@dataclass(frozen=True)
class ForecastChart:
    """The windows forecast now (this month's remainder, next month) and, optionally, the
    back-test's past months with what was actually won."""

    windows: Sequence[Band]
    backtest: Sequence[BacktestBand] = ()


def funnel_png(chart: FunnelChart, *, title: str) -> bytes:
    """The funnel as horizontal bars, each step's conversion beside it, the weakest in red."""
    with matplotlib.rc_context(RC):
        figure = Figure(figsize=(6, 4), dpi=DPI)
        _draw_funnel(figure.add_subplot(), chart, title)
        return _png(figure)


def forecast_png(chart: ForecastChart, *, title: str) -> bytes:
    """P10–P90 bars with the P50 marked; back-test months show the actual revenue as a dot."""
    with matplotlib.rc_context(RC):
        figure = Figure(figsize=(7, 4), dpi=DPI)
        _draw_forecast(figure.add_subplot(), chart, title)
        return _png(figure)


def digest_png(funnel: FunnelChart, forecast: ForecastChart, *, titles: tuple[str, str]) -> bytes:
    """The morning digest's one image: the funnel above, the forecast below."""
    with matplotlib.rc_context(RC):
        figure = Figure(figsize=(6, 8), dpi=DPI)
        top, bottom = figure.subplots(2, 1)
        _draw_funnel(top, funnel, titles[0])
        _draw_forecast(bottom, forecast, titles[1])
        return _png(figure)


def radar_png(
    dimensions: Sequence[str],
    values: Sequence[float | None],
    medians: Sequence[float | None],
    *,
    title: str,
) -> bytes:
    """A radar of 0–100 scores, the team's medians drawn beside them. A score not known (None)
    is drawn at 0 and its axis says so; the medians are drawn only when all are known."""
    if not len(dimensions) == len(values) == len(medians) or len(dimensions) < 3:
        raise ValueError("a radar needs at least three dimensions, each with a value and a median")
    angles = [2 * math.pi * i / len(dimensions) for i in range(len(dimensions))]
    closed = [*angles, angles[0]]
    labels = [
        d if v is not None else NO_SCORE_LABEL.format(d)
        for d, v in zip(dimensions, values, strict=True)
    ]
    scores = [v or 0.0 for v in values]
    with matplotlib.rc_context(RC):
        figure = Figure(figsize=(5, 5), dpi=DPI)
        axes = figure.add_subplot(projection="polar")
        assert isinstance(axes, PolarAxes)
        axes.set_theta_offset(math.pi / 2)
        axes.set_theta_direction(-1)
        axes.set_ylim(0, 100)
        axes.set_xticks(angles, labels)
        axes.set_yticks([20, 40, 60, 80, 100])
        legend = []
        if all(m is not None for m in medians):
            known = [float(m or 0) for m in medians]
            axes.plot(closed, [*known, known[0]], color=MEDIAN_COLOUR, linestyle="--")
            legend.append(MEDIAN_LEGEND)
        axes.plot(closed, [*scores, scores[0]], color=BAR_COLOUR, linewidth=2)
        axes.fill(closed, [*scores, scores[0]], color=BAR_COLOUR, alpha=0.25)
        axes.legend([*legend, VALUE_LEGEND], loc="upper right", bbox_to_anchor=(1.15, 1.1))
        axes.set_title(title, pad=20)
        return _png(figure)


def _draw_funnel(axes: Axes, chart: FunnelChart, title: str) -> None:
    names = [name for name, _ in chart.stages]
    counts = [count for _, count in chart.stages]
    rows = range(len(names))
    axes.barh(rows, counts, color=BAR_COLOUR, left=[-c / 2 for c in counts])
    axes.set_yticks(rows, names)
    axes.invert_yaxis()  # the first stage on top
    axes.set_xticks([])
    axes.set_xlabel(CUSTOMERS_AXIS)
    for row, count in zip(rows, counts, strict=True):
        axes.text(0, row, str(count), ha="center", va="center", color="white")
    widest = max(counts, default=0) or 1
    for step, rate in enumerate(chart.conversions):
        label = (
            CONVERSION_LABEL.format(rate=f"{rate:.0%}") if rate is not None else NO_CONVERSION_LABEL
        )
        weak = step == chart.weakest
        axes.text(
            widest / 2 + widest * 0.05,
            step + 0.5,
            label + (WEAKEST_LABEL if weak else ""),
            va="center",
            color=WEAK_COLOUR if weak else ACTUAL_COLOUR,
        )
    axes.set_xlim(-widest / 2 - widest * 0.05, widest / 2 + widest * 0.6)
    axes.set_title(title)


def _draw_forecast(axes: Axes, chart: ForecastChart, title: str) -> None:
    bands = [b.band for b in chart.backtest] + list(chart.windows)
    rows = range(len(bands))
    axes.bar(
        rows,
        [b.p90 - b.p10 for b in bands],
        bottom=[b.p10 for b in bands],
        color=BAR_COLOUR,
        alpha=0.35,
        label=INTERVAL_LEGEND,
    )
    axes.scatter(
        rows, [b.p50 for b in bands], marker="_", s=400, color=BAR_COLOUR, label=P50_LEGEND
    )
    if chart.backtest:
        axes.scatter(
            range(len(chart.backtest)),
            [b.actual for b in chart.backtest],
            color=ACTUAL_COLOUR,
            zorder=3,
            label=ACTUAL_LEGEND,
        )
    axes.set_xticks(rows, [b.label for b in bands], rotation=45 if len(bands) > 4 else 0)
    axes.set_ylim(bottom=0)
    axes.set_ylabel(REVENUE_AXIS)
    axes.yaxis.set_major_formatter(FuncFormatter(_amount))
    axes.legend(loc="lower center", ncols=3)
    axes.set_title(title)


def _amount(value: float, _position: int) -> str:
    return TEN_THOUSANDS.format(value=value / 10_000) if value >= 10_000 else f"{value:,.0f}"


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
