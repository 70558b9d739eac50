"""/analytics: the views that decide; the figures are computed in crm/analytics."""

from __future__ import annotations

from datetime import date
from typing import Any

from crm.analytics import funnel
from crm.errors import Invalid
from miniapp_api import api, messages
from miniapp_api.context import actor, session
from miniapp_api.routing import operation
from miniapp_api.schemas import FunnelOut, FunnelQuery


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
    periods = [funnel.Period.of(query.start, query.end)]
    if query.compare_start is not None or query.compare_end is not None:
        periods.append(_compare_period(query.compare_start, query.compare_end))
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


def _compare_period(start: date | None, end: date | None) -> funnel.Period:
    if start is None or end is None:
        missing = "compare_start" if start is None else "compare_end"
        raise Invalid(messages.COMPARE_PERIOD_INCOMPLETE, code="compare_incomplete", field=missing)
    return funnel.Period.of(start, end, field_prefix="compare_")
