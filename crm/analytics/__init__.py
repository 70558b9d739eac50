"""Views that decide: figures read from the customer book and its history, never written.

- funnel.py: the team funnel (团队漏斗) — stage counts, entries, conversion, dwell time.
- forecast.py: the revenue forecast (月度业绩预测) — P10 / P50 / P90 and its back-test.
- kpi.py: the seed's KPI table (KPI 看板) and the monthly 数据质量奖 ranking.
- health.py: the rep health score (销售健康度) — efficiency, quality, growth and team medians.
- scopes.py: whose customers these views read (a manager's team, the boss's company).

Every view starts from `customer_scope(actor)` like the customer list, and reads with aggregate
queries over indexed columns rather than walking follow-ups.
"""
