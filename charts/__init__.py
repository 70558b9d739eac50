"""Charts drawn on the server as PNG bytes (matplotlib's Agg backend, no display, no browser).

An edge like speech/: the domain never imports it. Callers hand in plain numbers (charts/figures.py
takes no ORM rows), so the digest job (workers/digest.py) and any API view can draw the same
pictures. Chinese text is set in Noto Sans CJK SC, a font file the `mplfonts` wheel ships: nothing
is downloaded or installed by hand at run time (charts/fonts.py).
"""

from charts.figures import (
    BacktestBand,
    Band,
    ForecastChart,
    FunnelChart,
    digest_png,
    forecast_png,
    funnel_png,
    radar_png,
)

__all__ = [
    "BacktestBand",
    "Band",
    "ForecastChart",
    "FunnelChart",
    "digest_png",
    "forecast_png",
    "funnel_png",
    "radar_png",
]
