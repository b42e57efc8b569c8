"""Cost levels findings are measured at (resource group × service up to team), and collapsing duplicate findings.

A move in one resource group shows at its subscription, its service and its team too; measuring every level
keeps opposite moves from cancelling, and `collapse` then keeps one finding per move: the most specific level
that explains most of it, or the broad level when the move is spread thin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from finops_tui.recommend.model import JumpTarget, Scope
from finops_tui.recommend.prepare import DAILY

# grouping(sub, rg, service, team) bitmask for each grouping set in `LEVEL_GROUPING_SETS`.
LEVEL_BY_GROUPING = {1: "rg-service", 3: "resource-group", 7: "subscription", 13: "service", 14: "team"}
# Finer levels rank lower. A team sits between resource group and subscription: when most of a team's cost is
# in one subscription, its findings are read as part of that subscription's.
LEVEL_RANK = {"rg-service": 0.0, "resource-group": 1.0, "team": 1.5, "subscription": 2.0, "service": 2.0}
LEVEL_GROUPING_SETS = (
    "GROUPING SETS ((currency, day, sub, rg, service), (currency, day, sub, rg), (currency, day, sub), "
    "(currency, day, service), (currency, day, team))"
)
LEVEL_SQL = "grouping(sub, rg, service, team)"
NO_NAME = "(none)"


@dataclass
class LevelKey:
    """One group at one level; unset parts are None."""

    level: str
    currency: str
    sub: str | None = None
    sub_name: str | None = None
    rg: str | None = None
    service: str | None = None
    team: str | None = None  # the group's team, or the dominant team of a resource group
    # For a team: the subscription holding most of its cost (`sub` stays None so labels and jumps ignore it).
    home_sub: str | None = None

    def parts(self) -> dict[str, str]:
        """The (dimension, value) facts this group pins down, used to decide which group contains which."""
        out: dict[str, str] = {}
        if self.sub is not None or self.home_sub is not None:
            out["subscription"] = self.sub or self.home_sub or ""
        if self.rg is not None:
            out["resource-group"] = self.rg
        if self.service is not None:
            out["service"] = self.service
        if self.team is not None:
            out["team"] = self.team
        return out

    def label(self) -> str:
        sub = self.sub_name or self.sub or NO_NAME
        if self.level == "rg-service":
            return f"{self.rg or NO_NAME} › {self.service or NO_NAME}"
        if self.level == "resource-group":
            return f"{self.rg or NO_NAME} ({sub})"
        if self.level == "subscription":
            return f"subscription {sub}"
        if self.level == "service":
            return self.service or NO_NAME
        return f"team {self.team or NO_NAME}"

    def scope(self) -> Scope:
        sub = self.sub or ""
        if self.level == "rg-service":
            return Scope("resource-group", f"{sub}/{self.rg}/{self.service}".lower(), self.label(), sub, self.rg)
        if self.level == "resource-group":
            return Scope("resource-group", f"{sub}/{self.rg}".lower(), self.label(), sub, self.rg)
        if self.level == "subscription":
            return Scope("subscription", sub.lower(), self.sub_name or sub, sub)
        if self.level == "service":
            return Scope("service", (self.service or "").lower(), self.service or NO_NAME)
        return Scope("team", (self.team or "").lower(), self.team or NO_NAME)

    def jump(self, team_key: str) -> JumpTarget:
        path: list[tuple[str, str]] = []
        if self.level in ("rg-service", "resource-group", "subscription"):
            path.append(("subscription", self.sub or ""))
        if self.level in ("rg-service", "resource-group"):
            path.append(("resource-group", self.rg or ""))
        if self.level in ("rg-service", "service"):
            path.append(("service", self.service or ""))
        if self.level == "team":
            path.append((f"tag:{team_key}", self.team or ""))
        return JumpTarget("allocation", tuple(path))

    @property
    def rank(self) -> float:
        return LEVEL_RANK[self.level]


@dataclass
class Event:
    """A finding at one level before it becomes a Recommendation: `size` is the money compared across levels."""

    key: LevelKey
    kind: str
    size: Decimal
    first_day: Any
    last_day: Any
    data: dict[str, Any] = field(default_factory=dict)
    also_at: list[str] = field(default_factory=list)
    spread_over: int = 0  # finer findings folded into this broad one

    def contains(self, other: Event) -> bool:
        """Same kind, same currency, overlapping days, and `other` is a finer group inside this one."""
        if other is self or other.kind != self.kind or other.key.currency != self.key.currency:
            return False
        if other.key.rank >= self.key.rank:
            return False
        if other.last_day < self.first_day or other.first_day > self.last_day:
            return False
        mine, theirs = self.key.parts(), other.key.parts()
        return all(theirs.get(dim) == value for dim, value in mine.items())


def collapse(
    events: Sequence[Event], *, dominant_share: Decimal = Decimal("0.5"), max_parts: int = 3
) -> list[Event]:
    """One finding per move: drop a group explained by one finer group, fold finer ones into a broad move.

    1. A coarse finding with a finer finding inside it worth at least half of it is that finer finding
       seen from above: keep the finer one and remember where else it shows.
    2. A coarse finding left after step 1 that up to `max_parts` finer findings explain (half or more) is
       those findings; otherwise it is a broad move and the finer findings inside it are folded into it.
    3. Across cuts (subscription vs service vs team), two findings that share most of their finest parts
       are one move: keep the larger.
    """
    alive = list(events)
    # 1. specific causes
    for coarse in sorted(alive, key=lambda e: -e.key.rank):
        inner = [e for e in alive if coarse.contains(e)]
        if not inner:
            continue
        best = max(inner, key=lambda e: e.size)
        if coarse.size > 0 and best.size >= dominant_share * coarse.size:
            best.also_at.append(coarse.key.label())
            best.also_at.extend(coarse.also_at)
            alive.remove(coarse)
    # 2. a few parts that explain the move replace it; many parts make it a broad move that replaces them
    for coarse in sorted(alive, key=lambda e: -e.key.rank):
        if coarse not in alive:
            continue
        inner = [e for e in alive if coarse.contains(e)]
        if not inner:
            continue
        parts = [e for e in inner if not any(o.contains(e) for o in inner)]
        explained = sum((e.size for e in parts), Decimal(0))
        if len(parts) <= max_parts and explained >= dominant_share * coarse.size:
            for part in parts:
                part.also_at.append(coarse.key.label())
            alive.remove(coarse)
            continue
        for part in inner:
            alive.remove(part)
        coarse.spread_over += len(parts)
    # 3. the same move seen through different cuts
    finest = [e for e in events if e.key.rank == 0]
    result: list[Event] = []
    for event in sorted(alive, key=lambda e: (-e.size, e.key.rank)):
        mine = {id(a) for a in finest if a is event or event.contains(a)}
        duplicate = False
        for kept in result:
            theirs = {id(a) for a in finest if a is kept or kept.contains(a)}
            shared = sum((a.size for a in finest if id(a) in mine & theirs), Decimal(0))
            if event.size > 0 and shared >= dominant_share * event.size:
                kept.also_at.append(event.key.label())
                duplicate = True
                break
        if not duplicate:
            result.append(event)
    return result


def dominant_teams(cur: duckdb.DuckDBPyConnection, since: dt.date) -> dict[tuple[str, str | None, str | None], str]:
    """(currency, subscription, resource group) → the team holding most of its cost, when one holds over half."""
    rows = cur.execute(
        f"""
        WITH by_team AS (
            SELECT currency, sub, rg, team, sum(cost) AS cost FROM {DAILY} WHERE day >= ? GROUP BY ALL
        )
        SELECT currency, sub, rg, arg_max(team, cost), max(cost) / nullif(sum(cost), 0)
        FROM by_team GROUP BY ALL
        """,
        [since],
    ).fetchall()
    return {(r[0], r[1], r[2]): r[3] for r in rows if r[3] is not None and r[4] is not None and r[4] > 0.5}


def dominant_subscriptions(cur: duckdb.DuckDBPyConnection, since: dt.date) -> dict[tuple[str, str], str]:
    """(currency, team) → the subscription holding most of the team's cost, when one holds over half."""
    rows = cur.execute(
        f"""
        WITH by_sub AS (
            SELECT currency, team, sub, sum(cost) AS cost FROM {DAILY}
            WHERE day >= ? AND team IS NOT NULL GROUP BY ALL
        )
        SELECT currency, team, arg_max(sub, cost), max(cost) / nullif(sum(cost), 0)
        FROM by_sub GROUP BY ALL
        """,
        [since],
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows if r[2] is not None and r[3] is not None and r[3] > 0.5}
