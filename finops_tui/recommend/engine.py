"""Running the generators, ranking by money, applying dismiss/snooze/note state, and keeping the last run."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb

from finops_tui import clock
from finops_tui.recommend.generators import GENERATORS
from finops_tui.recommend.model import CONFIDENCE_ORDER, Context, Recommendation, decode, encode
from finops_tui.recommend.prepare import drop_prepared
from finops_tui.store import Cache

STATES = ("dismissed", "snoozed", "noted")


@dataclass(frozen=True)
class RecFilter:
    """What the list shows. Dismissed and (still) snoozed findings are hidden unless asked for."""

    kinds: frozenset[str] | None = None
    team: str | None = None
    min_impact: Decimal | None = None
    currency: str | None = None
    include_dismissed: bool = False
    include_snoozed: bool = False


@dataclass(frozen=True)
class RunResult:
    """One run (or the stored last run): visible findings in rank order and what was held back."""

    run_at: dt.datetime
    data_end: dt.date | None
    metric: str
    recommendations: list[Recommendation]
    hidden: int  # dismissed or snoozed, not in `recommendations`
    duration_ms: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)  # per generator, for a fresh run


@dataclass(frozen=True)
class StateRow:
    state: str
    until: dt.date | None
    note: str | None


def rank(recs: Iterable[Recommendation]) -> list[Recommendation]:
    """Most money first; ties by confidence, then kind and id so the order never wobbles between runs."""
    return sorted(
        recs, key=lambda r: (-r.monthly_impact, -CONFIDENCE_ORDER[r.confidence], r.kind, r.id)
    )


def generate(
    cur: duckdb.DuckDBPyConnection,
    ctx: Context,
    *,
    only: Sequence[str] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[list[Recommendation], dict[str, float]]:
    """Every generator (or those named in `only`) over fresh aggregates, ranked, with no state applied.

    `should_stop` is polled between generators (a superseded worker); a running query is cancelled with
    `cur.interrupt()` from the UI thread instead.
    """
    drop_prepared(cur)  # the cache may have changed since this cursor last ran
    found: list[Recommendation] = []
    timings: dict[str, float] = {}
    for name, (generator, _kinds) in GENERATORS.items():
        if only is not None and name not in only:
            continue
        if should_stop is not None and should_stop():
            break
        started = time.perf_counter()
        found.extend(generator(cur, ctx))
        timings[name] = (time.perf_counter() - started) * 1000
    drop_prepared(cur)
    unique: dict[str, Recommendation] = {}
    for rec in rank(found):
        unique.setdefault(rec.id, rec)
    return list(unique.values()), timings


def load_states(cur: duckdb.DuckDBPyConnection) -> dict[str, StateRow]:
    return {
        rec_id: StateRow(state, until, note)
        for rec_id, state, until, note in cur.execute(
            "SELECT rec_id, state, until, note FROM recommendation_state"
        ).fetchall()
    }


def apply_state(
    recs: Iterable[Recommendation], states: dict[str, StateRow], flt: RecFilter, today: dt.date | None = None
) -> tuple[list[Recommendation], int]:
    """Attach state and notes, drop what the filter hides; returns (visible, hidden by state)."""
    today = today or clock.today()
    visible: list[Recommendation] = []
    hidden = 0
    team = flt.team.lower() if flt.team else None
    for rec in recs:
        row = states.get(rec.id)
        if row is not None:
            state: str | None = row.state
            if state == "snoozed" and row.until is not None and row.until <= today:
                state = "noted" if row.note else None  # the snooze ran out
            rec = rec.with_state(state, row.until if state == "snoozed" else None, row.note)
        if (rec.state == "dismissed" and not flt.include_dismissed) or (
            rec.state == "snoozed" and not flt.include_snoozed
        ):
            hidden += 1
            continue
        if flt.kinds is not None and rec.kind not in flt.kinds:
            continue
        if team is not None and (rec.team or "").lower() != team:
            continue
        if flt.min_impact is not None and rec.monthly_impact < flt.min_impact:
            continue
        if flt.currency is not None and rec.currency != flt.currency.upper():
            continue
        visible.append(rec)
    return visible, hidden


def run_all(cur: duckdb.DuckDBPyConnection, ctx: Context, flt: RecFilter | None = None) -> list[Recommendation]:
    """Every finding ranked by monthly impact, with state applied and the filter's hidden ones left out."""
    recs, _ = generate(cur, ctx)
    visible, _hidden = apply_state(recs, load_states(cur), flt or RecFilter())
    return visible


@dataclass(frozen=True)
class Found:
    """Every finding of one fresh run, before the user's states are applied."""

    ctx: Context
    recommendations: list[Recommendation]
    run_at: dt.datetime
    duration_ms: float
    timings_ms: dict[str, float]


def find(cur: duckdb.DuckDBPyConnection, ctx: Context, *, should_stop: Callable[[], bool] | None = None) -> Found:
    """Run every generator on `cur` (a read cursor, which the screen's worker can interrupt)."""
    started = time.perf_counter()
    recs, timings = generate(cur, ctx, should_stop=should_stop)
    return Found(ctx, recs, clock.now(), (time.perf_counter() - started) * 1000, timings)


def present(cur: duckdb.DuckDBPyConnection, found: Found, flt: RecFilter | None = None) -> RunResult:
    """What the list shows of a run: today's states applied and the filter's hidden ones held back."""
    visible, hidden = apply_state(found.recommendations, load_states(cur), flt or RecFilter())
    return RunResult(found.run_at, found.ctx.data_end, found.ctx.metric, visible, hidden, found.duration_ms,
                     found.timings_ms)


def keep(cache: Cache, found: Found) -> None:
    """Store a run as the last one (what the screen shows at once next time)."""
    store_results(cache, found.recommendations, found.ctx, run_at=found.run_at, duration_ms=found.duration_ms)


def refresh(cache: Cache, ctx: Context, flt: RecFilter | None = None) -> RunResult:
    """Run everything, keep it as the last run, and return what the list shows (headless: reports, tests)."""
    with cache.cursor() as cur:
        found = find(cur, ctx)
    keep(cache, found)
    with cache.cursor() as cur:
        return present(cur, found, flt)


def store_results(
    cache: Cache,
    recs: Sequence[Recommendation],
    ctx: Context | None = None,
    *,
    run_at: dt.datetime | None = None,
    duration_ms: float | None = None,
) -> None:
    """Replace the last run with `recs` (in their order) in one write."""
    ordered = list(recs)
    with cache.write() as cur:
        cur.execute("DELETE FROM recommendation_results")
        cur.execute("DELETE FROM recommendation_runs")
        cur.execute(
            "INSERT INTO recommendation_runs VALUES (?, ?, ?, ?, ?)",
            [
                run_at or clock.now(),
                ctx.data_end if ctx else None,
                ctx.metric if ctx else None,
                ctx.currency if ctx else None,
                duration_ms,
            ],
        )
        if ordered:
            # One statement for the whole list: row-by-row inserts cost a round trip each.
            cur.execute(
                """
                INSERT INTO recommendation_results
                SELECT unnest($ids), unnest($positions), unnest($kinds), unnest($teams), unnest($currencies),
                       unnest($impacts), unnest($payloads)
                """,
                {
                    "ids": [r.id for r in ordered],
                    "positions": list(range(1, len(ordered) + 1)),
                    "kinds": [r.kind for r in ordered],
                    "teams": [r.team for r in ordered],
                    "currencies": [r.currency for r in ordered],
                    "impacts": [str(r.monthly_impact) for r in ordered],
                    "payloads": [encode(r) for r in ordered],
                },
            )


def last_results(cur: duckdb.DuckDBPyConnection, flt: RecFilter | None = None) -> RunResult | None:
    """The stored last run with today's state applied, or None when recommendations never ran on this cache."""
    run = cur.execute("SELECT run_at, data_end, metric, duration_ms FROM recommendation_runs LIMIT 1").fetchone()
    if run is None:
        return None
    payloads = cur.execute("SELECT payload FROM recommendation_results ORDER BY position").fetchall()
    recs = [decode(p) for (p,) in payloads]
    visible, hidden = apply_state(recs, load_states(cur), flt or RecFilter())
    return RunResult(run[0], run[1], run[2] or "effective", visible, hidden, run[3])


def _upsert(cur: duckdb.DuckDBPyConnection, rec_id: str, state: str, until: dt.date | None) -> None:
    cur.execute(
        """
        INSERT INTO recommendation_state (rec_id, state, until, note, updated_at) VALUES (?, ?, ?, NULL, ?)
        ON CONFLICT (rec_id) DO UPDATE SET state = excluded.state, until = excluded.until,
                                           updated_at = excluded.updated_at
        """,
        [rec_id, state, until, clock.now()],
    )


def dismiss(cur: duckdb.DuckDBPyConnection, rec_id: str) -> None:
    """Hide a finding for good (its note stays); `restore` brings it back."""
    _upsert(cur, rec_id, "dismissed", None)


def snooze(cur: duckdb.DuckDBPyConnection, rec_id: str, days: int) -> dt.date:
    """Hide a finding for `days` days from today; returns the day it shows again."""
    if days <= 0:
        raise ValueError("snooze for at least one day")
    until = clock.today() + dt.timedelta(days=days)
    _upsert(cur, rec_id, "snoozed", until)
    return until


def note(cur: duckdb.DuckDBPyConnection, rec_id: str, text: str) -> None:
    """Attach a note (an empty text removes it); a note alone does not hide the finding."""
    text = text.strip()
    if text:
        cur.execute(
            """
            INSERT INTO recommendation_state (rec_id, state, until, note, updated_at) VALUES (?, 'noted', NULL, ?, ?)
            ON CONFLICT (rec_id) DO UPDATE SET note = excluded.note, updated_at = excluded.updated_at
            """,
            [rec_id, text, clock.now()],
        )
        return
    cur.execute("DELETE FROM recommendation_state WHERE rec_id = ? AND state = 'noted'", [rec_id])
    cur.execute("UPDATE recommendation_state SET note = NULL, updated_at = ? WHERE rec_id = ?", [clock.now(), rec_id])


def restore(cur: duckdb.DuckDBPyConnection, rec_id: str) -> None:
    """Undo a dismiss or snooze; a note stays attached."""
    cur.execute(
        "UPDATE recommendation_state SET state = 'noted', until = NULL, updated_at = ? "
        "WHERE rec_id = ? AND note IS NOT NULL",
        [clock.now(), rec_id],
    )
    cur.execute("DELETE FROM recommendation_state WHERE rec_id = ? AND note IS NULL", [rec_id])
