"""Steady growth: weekly cost rising week after week per team, subscription and service, with
the monthly increase the trend projects.

The trend is the median week-on-week change, not a fitted line: one level shift (a step, reported as an
anomaly) in the same weeks neither creates a trend nor hides one, and a step alone rises in one week only.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb

from finops_tui.basis.money import money
from finops_tui.recommend.levels import (
    LEVEL_BY_GROUPING,
    Event,
    LevelKey,
    collapse,
    dominant_subscriptions,
)
from finops_tui.recommend.model import Context, DailyPoint, EvidenceValue, Recommendation, stable_id
from finops_tui.recommend.prepare import DAILY, ensure_prepared, floors

KIND = "steady-growth"
_MIN_UP_SHARE = 0.7  # most weeks cost more than the week before ...
_MIN_RISE = 0.10  # ... and the typical weekly rise adds up to at least 10 % over the period
_WEEKS_PER_MONTH = Decimal("30.4") / Decimal(7)


def steady_growth(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Groups whose weekly cost fits a rising line over the last complete weeks, most specific level first."""
    ensure_prepared(cur, ctx)
    floor = floors(cur)
    t = ctx.thresholds
    complete_weeks = ((ctx.data_end - ctx.data_start).days + 1) // 7
    weeks = min(t.growth_weeks, complete_weeks)
    if weeks < t.growth_min_weeks:
        return []
    since = ctx.data_end - dt.timedelta(days=weeks * 7 - 1)
    rows = cur.execute(
        f"""
        WITH weekly AS (
            -- the same level codes as levels.LEVEL_BY_GROUPING, which counts the resource group too
            SELECT CASE grouping(sub, service, team) WHEN 3 THEN 7 WHEN 5 THEN 13 ELSE 14 END AS g,
                   currency, sub, max(sub_name) AS sub_name, CAST(NULL AS VARCHAR) AS rg, service, team, w,
                   sum(cost) AS cost
            FROM (SELECT *, datediff('day', day, $end) // 7 AS w FROM {DAILY} WHERE day >= $since)
            -- Teams, not resource groups: growth is a question for the owner, and a team growing across
            -- several groups is one finding, not several.
            GROUP BY GROUPING SETS ((currency, w, sub), (currency, w, service), (currency, w, team))
        ), moves AS (
            SELECT *, cost - lag(cost) OVER (PARTITION BY g, currency, sub, rg, service, team ORDER BY w DESC)
                          AS delta
            FROM weekly WHERE g <> 14 OR team IS NOT NULL
        )
        SELECT g, currency, sub, max(sub_name), rg, service, team, count(*) AS n,
               median(delta) AS slope, regr_r2(cost, -w) AS r2,
               arg_max(cost, w) AS first_week, arg_min(cost, w) AS last_week,
               count(*) FILTER (WHERE delta > 0) AS ups, max(delta) AS max_jump,
               list(cost ORDER BY w DESC) AS weeks
        FROM moves GROUP BY g, currency, sub, rg, service, team
        HAVING count(*) = $weeks AND arg_max(cost, w) > 0 AND median(delta) > 0
           AND count(*) FILTER (WHERE delta > 0) >= $up_share * ($weeks - 1)
           AND median(delta) * ($weeks - 1) >= $rise * arg_max(cost, w)
        """,
        {"end": ctx.data_end, "since": since, "weeks": weeks, "up_share": _MIN_UP_SHARE, "rise": _MIN_RISE},
    ).fetchall()
    homes = dominant_subscriptions(cur, since)
    events = []
    for g, currency, sub, sub_name, rg, service, team, _n, slope, r2, first, last, ups, _jump, series in rows:
        # Weekly cost added per week, carried a month ahead: a month later each week costs slope × 4.3 more,
        # and a month holds 4.3 weeks.
        increase = (Decimal(slope) * _WEEKS_PER_MONTH * _WEEKS_PER_MONTH).quantize(Decimal("0.01"))
        if increase < floor.get(currency, Decimal(0)):
            continue
        level = LEVEL_BY_GROUPING[g]
        home = homes.get((currency, team)) if level == "team" else None
        key = LevelKey(level, currency, sub, sub_name, rg, service, team, home)
        events.append(
            Event(key, KIND, increase, since, ctx.data_end,
                  {"slope": slope, "r2": r2, "first": first, "last": last, "ups": ups, "weeks": series})
        )
    # A subscription whose growth a handful of teams explain is those teams' growth.
    return [_recommendation(e, ctx, weeks, since) for e in collapse(events, max_parts=6)]


def _recommendation(event: Event, ctx: Context, weeks: int, since: dt.date) -> Recommendation:
    key, data = event.key, event.data
    scope = key.scope()
    currency = key.currency
    first, last = Decimal(data["first"]), Decimal(data["last"])
    rise = (last - first) / first * 100  # as observed, steps included
    evidence: list[tuple[str, EvidenceValue]] = [
        ("Weeks fitted", weeks),
        ("First week", money(first, currency)),
        ("Last week", money(last, currency)),
        ("Rise over the period", f"+{rise:.0f}%"),
        ("Typical rise per week", money(Decimal(data["slope"]), currency)),
        ("Weeks up on the week before", f"{data['ups']} of {weeks - 1}"),
        ("Straight-line fit (R²)", f"{data['r2']:.2f}" if data["r2"] is not None else "—"),
    ]
    if event.spread_over:
        evidence.append(("Spread over", f"{event.spread_over} smaller groups"))
    if event.also_at:
        evidence.append(("Also visible at", ", ".join(dict.fromkeys(event.also_at))))
    # One point per week (on its first day) keeps the chart honest about what was fitted.
    series = tuple(
        DailyPoint(since + dt.timedelta(weeks=i), Decimal(cost)) for i, cost in enumerate(data["weeks"])
    )
    return Recommendation(
        id=stable_id(KIND, scope.type, scope.key, currency),
        kind=KIND,
        title=f"Steady growth in {key.label()}: +{rise:.0f}% over {weeks} weeks",
        scope=scope,
        monthly_impact=event.size,
        currency=currency,
        confidence="high" if data["ups"] >= weeks - 2 and weeks >= 8 else "medium",
        impact_kind="increase",
        action="Check the growth is planned (traffic, data, new customers); if not, find what keeps being added.",
        evidence=tuple(evidence),
        series=series,
        jump=key.jump(ctx.team_key),
        team=key.team,
        estimate=True,
    )
