"""Views that decide: figures read from the customer book and its history, never written.

- funnel.py: the team funnel (团队漏斗) — stage counts, entries, conversion, dwell time.
- kpi.py: the seed's KPI table (KPI 看板) and the monthly 数据质量奖 ranking.

Every view starts from `customer_scope(actor)` like the customer list, and reads with aggregate
queries over indexed columns rather than walking follow-ups.
"""
