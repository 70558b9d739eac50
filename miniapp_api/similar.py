"""Similar won deals for a customer, and hints for a described new one (crm/similar.py)."""

from __future__ import annotations

from typing import Any

from crm import similar
from miniapp_api import api
from miniapp_api.context import actor, session
from miniapp_api.routing import operation
from miniapp_api.schemas import HintsIn, HintsOut, SimilarDealsOut, SimilarDealsQuery


@operation(
    api,
    "GET",
    "/customers/{customer_id}/similar-deals",
    summary="相似成交案例：画像与跟进相近的成交客户，及其成交路径（不含联系方式）",
    tag="analytics",
    query=SimilarDealsQuery,
    response=SimilarDealsOut,
)
def similar_deals(customer_id: int, query: SimilarDealsQuery) -> Any:
    deals = similar.similar_deals(
        session(), actor=actor(), customer_id=customer_id, limit=query.limit
    )
    return {"items": deals}


@operation(
    api,
    "POST",
    "/analytics/hints",
    summary="新客户提示：相似成交客户中常见的产品、需求词与关注点",
    tag="analytics",
    body=HintsIn,
    response=HintsOut,
)
def analytics_hints(body: HintsIn) -> Any:
    return similar.hints(session(), actor=actor(), description=body.description)
