"""/analytics: the views that decide; the figures are computed in crm/analytics."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response

import charts
from crm.analytics import forecast, funnel, health, kpi
from crm.errors import Invalid
from miniapp_api import api, messages
from miniapp_api.context import actor, now, session
from miniapp_api.routing import operation
from miniapp_api.schemas import (
    DataQualityOut,
    DataQualityQuery,
    ForecastOut,
    ForecastQuery,
    FunnelOut,
    FunnelQuery,
    HealthOut,
    HealthQuery,
    KpiOut,
    KpiQuery,
    RadarQuery,
)

RADAR_TITLE = "{name} {month} 健康度"


@operation(
    api,
    "GET",
    "/analytics/funnel",
    summary="团队漏斗：各阶段客户数、转化率、停留时长与最弱环节，可两期对比",
    tag="analytics",
    query=FunnelQuery,
    response=FunnelOut,
)
def team_funnel(query: FunnelQuery) -> Any:
    periods = _periods(query.start, query.end, query.compare_start, query.compare_end)
    filters = funnel.FunnelFilters(
        region=query.region, source=query.source, category=query.category, grade=query.grade
    )
    reports = [
        funnel.team_funnel(
            session(), actor=actor(), period=p, filters=filters, team_id=query.team_id
        )
        for p in periods
    ]
    return {"period": reports[0], "compare": reports[1] if len(reports) > 1 else None}


@operation(
    api,
    "GET",
    "/analytics/kpi",
    summary="KPI 看板：成单率、跟进及时率、新人上手周期等八项指标及口径，可两期对比",
    tag="analytics",
    query=KpiQuery,
    response=KpiOut,
)
def kpi_panel(query: KpiQuery) -> Any:
    periods = _periods(query.start, query.end, query.compare_start, query.compare_end)
    reports = [
        kpi.kpi_panel(session(), actor=actor(), period=p, now=now(), team_id=query.team_id)
        for p in periods
    ]
    return {"period": reports[0], "compare": reports[1] if len(reports) > 1 else None}


@operation(
    api,
    "GET",
    "/analytics/data-quality",
    summary="数据质量奖：当月新建客户的资料完整度按销售排名，以及当月得主",
    tag="analytics",
    query=DataQualityQuery,
    response=DataQualityOut,
)
def data_quality(query: DataQualityQuery) -> Any:
    return kpi.data_quality(
        session(), actor=actor(), month=_month(query.month), team_id=query.team_id
    )


@operation(
    api,
    "GET",
    "/analytics/health",
    summary="销售健康度：每位销售当月的效率、质量、成长得分（0–100）与同组中位数，附企业微信联系客户统计",
    tag="analytics",
    query=HealthQuery,
    response=HealthOut,
)
def rep_health(query: HealthQuery) -> Any:
    return health.rep_health(
        session(), actor=actor(), month=_month(query.month), now=now(), team_id=query.team_id
    )


@operation(
    api,
    "GET",
    "/analytics/health/radar.png",
    summary="销售健康度雷达图（PNG）：本人三个维度的得分与同组中位数",
    tag="analytics",
    query=RadarQuery,
    file_response=("image/png",),
)
def rep_radar(query: RadarQuery) -> Response:
    user_id = query.user_id or actor().user_id
    name, radar = health.rep_radar(
        session(), actor=actor(), month=_month(query.month), now=now(), user_id=user_id
    )
    picture = charts.radar_png(
        radar.dimensions,
        radar.values,
        radar.team_medians,
        title=RADAR_TITLE.format(name=name, month=query.month),
    )
    return Response(picture, mimetype="image/png")


def _month(text: str) -> date:
    """The first day of a month given as YYYY-MM (the query's pattern checked the form)."""
    year, month = (int(part) for part in text.split("-"))
    return date(year, month, 1)


def _periods(
    start: date, end: date, compare_start: date | None, compare_end: date | None
) -> list[funnel.Period]:
    periods = [funnel.Period.of(start, end)]
    if compare_start is not None or compare_end is not None:
        periods.append(_compare_period(compare_start, compare_end))
    return periods


def _compare_period(start: date | None, end: date | None) -> funnel.Period:
    if start is None or end is None:
        missing = "compare_start" if start is None else "compare_end"
        raise Invalid(messages.COMPARE_PERIOD_INCOMPLETE, code="compare_incomplete", field=missing)
    return funnel.Period.of(start, end, field_prefix="compare_")


@operation(
    api,
    "GET",
    "/analytics/forecast",
    summary="月度业绩预测：本月剩余与下月成交金额的 P10 / P50 / P90，附过去各月的回测",
    tag="analytics",
    query=ForecastQuery,
    response=ForecastOut,
)
def revenue_forecast(query: ForecastQuery) -> Any:
    return forecast.revenue_forecast(
        session(),
        actor=actor(),
        now=now(),
        team_id=query.team_id,
        backtest_months=query.backtest_months,
    )
