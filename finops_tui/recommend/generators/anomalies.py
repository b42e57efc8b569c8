"""Cost anomalies: spikes and level shifts per service, subscription, resource group and team, against a
weekday-aware robust baseline (median and MAD of the same weekday over the prior weeks), or, when the data
is too short for that (a one-month export), the median and MAD of all prior days."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import duckdb

from finops_tui.basis.money import money
from finops_tui.recommend.levels import (
    LEVEL_BY_GROUPING,
    LEVEL_GROUPING_SETS,
    LEVEL_SQL,
    Event,
    LevelKey,
    collapse,
    dominant_subscriptions,
    dominant_teams,
)
from finops_tui.recommend.model import (
    CONFIDENCE_ORDER,
    Confidence,
    Context,
    DailyPoint,
    EvidenceValue,
    Recommendation,
    stable_id,
)
from finops_tui.recommend.prepare import DAILY, ensure_prepared, floors

KIND_SPIKE = "cost-spike"
KIND_STEP = "cost-step"
_DENSE = "_rec_anomaly_days"
_MAD_TO_SIGMA = 1.4826  # MAD of normal noise × this = its standard deviation
_ELEVATED = 1.1  # a day at least 10 % above expected counts towards a level shift
_SERIES_DAYS = 42
_MIN_WEEKS = 3  # same-weekday points a weekday baseline needs
_MIN_PRIOR_DAYS = 7  # prior days the all-days baseline needs before a day can be judged
_SOLID_PRIOR_DAYS = 14  # prior days that make an all-days baseline worth medium confidence


@dataclass(frozen=True)
class _Baseline:
    """How a day's expected cost is measured, and from which days.

    `weekday`: the median of the same weekday before the detection window (`weeks` of them). Otherwise the
    history before the window is too short for that, and each day is judged against all days before it.
    """

    weekday: bool
    base_start: dt.date
    detect_start: dt.date
    weeks: int

    @property
    def min_points(self) -> int:
        return _MIN_WEEKS if self.weekday else _MIN_PRIOR_DAYS

    def prior_days(self, day: dt.date) -> int:
        return (day - self.base_start).days

    def describe(self, day: dt.date) -> str:
        """What an all-days baseline rested on for a finding starting on `day`."""
        return (f"median of the {self.prior_days(day)} prior days (the data is too short for a same-weekday "
                "baseline)")

    def confidence_cap(self, day: dt.date, full_weeks: int) -> Confidence:
        """The most a finding can claim on this much history."""
        if self.weekday:
            return "high" if self.weeks >= full_weeks else "medium"
        return "medium" if self.prior_days(day) >= _SOLID_PRIOR_DAYS else "low"


def _baseline(ctx: Context) -> _Baseline:
    t = ctx.thresholds
    detect_start = ctx.days_back(t.anomaly_window_days)
    base_start = max(detect_start - dt.timedelta(weeks=t.baseline_weeks), ctx.data_start)
    weeks = (detect_start - base_start).days // 7  # every weekday has at least this many points
    return _Baseline(weeks >= _MIN_WEEKS, base_start, detect_start, weeks)


def _build_days(cur: duckdb.DuckDBPyConnection, ctx: Context, baseline: _Baseline) -> None:
    """Daily cost per group per level, zero-filled, each day with the median and MAD it is judged against:
    its weekday's before the window, or (short history) those of every day before it."""
    base_start, detect_start = baseline.base_start, baseline.detect_start
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _rec_anomaly_levels AS
        SELECT *, dense_rank() OVER (ORDER BY g, currency, sub, rg, service, team) AS kid
        FROM (
            SELECT {LEVEL_SQL} AS g, currency, sub, max(sub_name) AS sub_name, rg, service, team, day,
                   sum(cost) AS cost
            FROM {DAILY} WHERE day >= $base_start AND NOT scheduled
            GROUP BY {LEVEL_GROUPING_SETS}
        )
        -- untagged spend, and charges outside any resource group, are watched through their subscription
        WHERE (g <> 14 OR team IS NOT NULL) AND (g NOT IN (1, 3) OR rg IS NOT NULL)
        """,
        {"base_start": base_start},
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_DENSE} AS
        WITH live AS (
            -- groups with no cost in the window cannot spike or step; skip them before zero-filling
            SELECT kid FROM _rec_anomaly_levels GROUP BY kid HAVING max(day) >= $detect_start
        ), grid AS (
            SELECT live.kid, CAST(d.day AS DATE) AS day
            FROM live CROSS JOIN generate_series(CAST($base_start AS TIMESTAMP), CAST($end AS TIMESTAMP),
                                                  INTERVAL 1 DAY) AS d(day)
        ), days AS (
            SELECT grid.kid, grid.day, isodow(grid.day) AS dow, coalesce(k.cost, 0) AS cost
            FROM grid LEFT JOIN _rec_anomaly_levels k ON k.kid = grid.kid AND k.day = grid.day
        ){_judged_days_sql(baseline)}
        """,
        {"base_start": base_start, "detect_start": detect_start, "end": ctx.data_end},
    )


def _judged_days_sql(baseline: _Baseline) -> str:
    """The end of the dense-days query: each day with `med`, `mad` and `points` (how many days they rest on)."""
    if baseline.weekday:
        return """, base AS (
            SELECT kid, dow, median(cost) AS med, mad(cost) AS mad, count(*) AS points
            FROM days WHERE day < $detect_start GROUP BY kid, dow
        )
        SELECT days.*, base.med, base.mad, base.points FROM days LEFT JOIN base USING (kid, dow)"""
    # The grid has one row per group and day, so the rows before a day are the days before it.
    return """
        SELECT days.*, median(cost) OVER prior AS med, mad(cost) OVER prior AS mad, count(*) OVER prior AS points
        FROM days
        WINDOW prior AS (PARTITION BY kid ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"""


def _events(cur: duckdb.DuckDBPyConnection, ctx: Context, baseline: _Baseline) -> list[tuple]:
    """Level shifts (a trailing run of elevated days) and spikes (islands of outlier days) per group."""
    t = ctx.thresholds
    detect_start = baseline.detect_start
    return cur.execute(
        f"""
        WITH det AS (
            SELECT kid, day, cost, med, mad, cost - med AS excess,
                   cost / nullif(med, 0) AS ratio,
                   (cost - med) / nullif({_MAD_TO_SIGMA} * mad, 0) AS z,
                   cost > med * {_ELEVATED} AND cost > med AS elevated,
                   cost - med > greatest($sigmas * {_MAD_TO_SIGMA} * mad, ($min_ratio - 1) * med, 0) AS outlier
            FROM {_DENSE} WHERE day >= $detect_start AND points >= $min_points
        ), runs AS (
            SELECT kid, coalesce(max(day) FILTER (WHERE NOT elevated) + 1, min(day)) AS run_start
            FROM det GROUP BY kid
        ), steps AS (
            SELECT det.kid, 'step' AS kind, min(det.day) AS first_day, max(det.day) AS last_day,
                   count(*) AS days, median(det.excess) AS size, median(det.ratio) AS ratio,
                   median(det.cost) AS cost, median(det.med) AS expected, max(det.z) AS z
            FROM det JOIN runs USING (kid) WHERE det.day >= runs.run_start
            GROUP BY det.kid
            HAVING count(*) >= $step_days AND (median(det.ratio) >= $step_ratio OR median(det.med) = 0)
        ), spiky AS (
            SELECT det.*, det.day - CAST(row_number() OVER (PARTITION BY det.kid ORDER BY det.day) AS INTEGER)
                       AS island
            FROM det LEFT JOIN steps ON steps.kid = det.kid AND det.day >= steps.first_day
            WHERE det.outlier AND steps.kid IS NULL
        ), spikes AS (
            SELECT kid, 'spike' AS kind, min(day) AS first_day, max(day) AS last_day, count(*) AS days,
                   sum(excess) AS size, max(ratio) AS ratio, sum(cost) AS cost, sum(med) AS expected, max(z) AS z
            FROM spiky GROUP BY kid, island
        )
        SELECT e.*, k.g, k.currency, k.sub, k.sub_name, k.rg, k.service, k.team
        FROM (SELECT * FROM steps UNION ALL SELECT * FROM spikes) e JOIN (
            SELECT kid, any_value(g) AS g, any_value(currency) AS currency, any_value(sub) AS sub,
                   max(sub_name) AS sub_name, any_value(rg) AS rg, any_value(service) AS service,
                   any_value(team) AS team
            FROM _rec_anomaly_levels GROUP BY kid
        ) k USING (kid)
        """,
        {
            "detect_start": detect_start,
            "min_points": baseline.min_points,
            "sigmas": t.anomaly_sigmas,
            "min_ratio": t.anomaly_min_ratio,
            "step_days": t.step_min_days,
            "step_ratio": t.step_min_ratio,
        },
    ).fetchall()


def detect_anomalies(cur: duckdb.DuckDBPyConnection, ctx: Context) -> list[Recommendation]:
    """Spikes (short bursts) and level shifts (sustained steps) in daily cost, most specific level first."""
    ensure_prepared(cur, ctx)
    baseline = _baseline(ctx)
    _build_days(cur, ctx, baseline)
    floor = floors(cur)
    detect_start = baseline.detect_start
    teams = dominant_teams(cur, detect_start)
    homes = dominant_subscriptions(cur, detect_start)
    events: list[Event] = []
    kids: dict[int, int] = {}
    for row in _events(cur, ctx, baseline):
        kid, kind, first_day, last_day, days, size, ratio, cost, expected, z = row[:10]
        g, currency, sub, sub_name, rg, svc, team = row[10:]
        level = LEVEL_BY_GROUPING[g]
        monthly_size = Decimal(size) * Decimal("30.4") if kind == "step" else Decimal(size)
        if monthly_size < floor.get(currency, Decimal(0)):
            continue
        if level in ("rg-service", "resource-group"):
            team = teams.get((currency, sub, rg))
        home = homes.get((currency, team)) if level == "team" else None
        key = LevelKey(level, currency, sub, sub_name, rg, svc, team, home)
        events.append(
            Event(key, kind, monthly_size, first_day, last_day,
                  {"kid": kid, "days": days, "ratio": ratio, "cost": cost, "expected": expected, "z": z})
        )
        kids[id(events[-1])] = kid
    kept = collapse(events)
    series = _series(cur, [kids[id(e)] for e in kept], ctx)
    return [_recommendation(e, series.get(kids[id(e)], ()), ctx, baseline) for e in kept]


def anomaly_days(rec: Recommendation) -> tuple[dt.date, dt.date] | None:
    """The first and last day of a spike or level shift (a shift lasts to its series' last day), read back from the
    evidence `_recommendation` writes; None for other findings."""
    evidence = dict(rec.evidence)
    since, span = evidence.get("Since"), evidence.get("Days")
    if rec.kind == KIND_STEP and isinstance(since, dt.date) and rec.series:
        return since, rec.series[-1].day
    if rec.kind == KIND_SPIKE and isinstance(span, str):
        first, _, last = span.partition(" .. ")
        try:
            return dt.date.fromisoformat(first), dt.date.fromisoformat(last or first)
        except ValueError:
            return None
    return None


def _series(cur: duckdb.DuckDBPyConnection, kids: list[int], ctx: Context) -> dict[int, tuple[DailyPoint, ...]]:
    if not kids:
        return {}
    rows = cur.execute(
        f"SELECT kid, day, cost, med FROM {_DENSE} WHERE kid IN (SELECT unnest($kids)) AND day > $since "
        "ORDER BY kid, day",
        {"kids": kids, "since": ctx.data_end - dt.timedelta(days=_SERIES_DAYS)},
    ).fetchall()
    out: dict[int, list[DailyPoint]] = {}
    for kid, day, cost, med in rows:
        out.setdefault(kid, []).append(DailyPoint(day, Decimal(cost), None if med is None else Decimal(med)))
    return {k: tuple(v) for k, v in out.items()}


def _recommendation(
    event: Event, series: tuple[DailyPoint, ...], ctx: Context, baseline: _Baseline
) -> Recommendation:
    key, data = event.key, event.data
    scope = key.scope()
    currency = key.currency
    ratio = float(data["ratio"]) if data["ratio"] is not None else None
    evidence: list[tuple[str, EvidenceValue]] = []
    confidence: Confidence
    expected_from = ("same weekday, prior weeks" if event.kind == "step" else "same weekdays, prior weeks") \
        if baseline.weekday else "median of prior days"
    if event.kind == "step":
        kind = KIND_STEP
        change = f"+{(ratio - 1) * 100:.0f}%" if ratio is not None else "new spend"
        title = f"Cost level up {change} in {key.label()} since {event.first_day:%Y-%m-%d}"
        evidence += [
            ("Since", event.first_day),
            ("Days elevated", data["days"]),
            (f"Expected per day ({expected_from})", money(Decimal(data["expected"]), currency)),
            ("Typical day now", money(Decimal(data["cost"]), currency)),
            ("Change", change),
        ]
        confidence = "high" if data["days"] >= 14 and (ratio is None or ratio >= 1.3) else "medium"
        action = "Check what changed that day (new resources, a resize, a price change) and whether it should stay."
    else:
        kind = KIND_SPIKE
        span = (
            f"{event.first_day:%Y-%m-%d}"
            if event.first_day == event.last_day
            else f"{event.first_day:%Y-%m-%d} .. {event.last_day:%Y-%m-%d}"
        )
        title = f"Cost spike in {key.label()} ({span})"
        evidence += [
            ("Days", span),
            ("Cost on those days", money(Decimal(data["cost"]), currency)),
            (f"Expected ({expected_from})", money(Decimal(data["expected"]), currency)),
            ("Above expected", money(event.size, currency)),
            ("Peak vs expected", f"{ratio:.1f}×" if ratio is not None else "new spend"),
        ]
        confidence = "high" if ratio is None or ratio >= 2 else "medium"
        action = "Find the resource behind the burst; if it was a mistake or a runaway job, stop it and set an alert."
    cap = baseline.confidence_cap(event.first_day, ctx.thresholds.baseline_weeks)
    confidence = min(confidence, cap, key=CONFIDENCE_ORDER.__getitem__)
    if not baseline.weekday:
        evidence.append(("Baseline", baseline.describe(event.first_day)))
    if event.spread_over:
        evidence.append(("Spread over", f"{event.spread_over} smaller groups"))
    if event.also_at:
        evidence.append(("Also visible at", ", ".join(dict.fromkeys(event.also_at))))
    return Recommendation(
        id=stable_id(kind, scope.type, scope.key, currency, event.first_day.isoformat()),
        kind=kind,
        title=title,
        scope=scope,
        monthly_impact=event.size.quantize(Decimal("0.01")),
        currency=currency,
        confidence=confidence,
        impact_kind="increase",
        action=action,
        evidence=tuple(evidence),
        series=series,
        jump=key.jump(ctx.team_key),
        team=key.team,
    )
