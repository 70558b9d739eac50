"""The morning digest job: the schedule runs it every minute; it acts once the configured Beijing
time has come (crm/analytics/digest.py decides what is due and what the digest says).

Per recipient: the numbers are read in a plain session, the picture (the funnel above the
forecast, charts/) drawn outside any transaction and stored in the FileStore, and the two
messages queued in one short write — the outbox sender uploads the picture when it sends. Two
runs racing draw the same picture twice; the outbox's dedupe key keeps one pair of messages, and
the loser's file, referenced by nothing, goes with the orphan purge.
"""

from __future__ import annotations

import logging

import charts
from crm.analytics import digest
from crm.analytics.digest import Digest
from crm.analytics.funnel import FUNNEL
from workers import context

log = logging.getLogger(__name__)


def send_digests() -> int:
    """Queue today's digest to each recipient not yet served, once it is due; returns how many."""
    rt = context.runtime()
    now = rt.clock()
    if not digest.is_due(now, rt.settings.digest_time):
        return 0
    with rt.db.session() as session:
        recipients = digest.recipients_due(session, now=now)
    queued = 0
    for recipient_id in recipients:
        with rt.db.session() as session:
            report = digest.build(session, recipient_id=recipient_id, now=now)
        key, _ = rt.store.save(picture(report), suffix=".png")
        with rt.db.session(lock_for_write=True) as session:
            queued += bool(digest.queue(session, digest=report, image_key=key, now=now))
            session.commit()
    if queued:
        log.info("queued the morning digest to %d recipients", queued)
    return queued


def picture(report: Digest) -> bytes:
    """The digest's one image, as PNG bytes: the customers entering each stage in the last
    `FUNNEL_DAYS` days with the conversions between them, and the forecast's intervals."""
    figures = report.funnel
    counts = {s.stage: s.entered for s in figures.stages}
    steps = figures.steps
    weakest = figures.weakest_step
    funnel_chart = charts.FunnelChart(
        stages=[(stage.value, counts.get(stage, 0)) for stage in FUNNEL],
        conversions=[step.rate for step in steps],
        weakest=steps.index(weakest) if weakest is not None else None,
    )
    windows = (
        (digest.THIS_MONTH_LABEL, report.forecast.this_month_remaining),
        (digest.NEXT_MONTH_LABEL, report.forecast.next_month),
    )
    forecast_chart = charts.ForecastChart(
        windows=[
            charts.Band(label, w.revenue.p10, w.revenue.p50, w.revenue.p90) for label, w in windows
        ]
    )
    return charts.digest_png(
        funnel_chart,
        forecast_chart,
        titles=(
            digest.FUNNEL_CHART_TITLE.format(days=digest.FUNNEL_DAYS),
            digest.FORECAST_CHART_TITLE,
        ),
    )
