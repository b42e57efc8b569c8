"""Recommendation records, their stable ids, and the context every generator runs in."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

import duckdb

from finops_tui import clock
from finops_tui.store.sources import freshness

Confidence = Literal["low", "medium", "high"]
CONFIDENCE_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2}

# What a scope names: the screen picks an icon and the tree level from it.
ScopeType = Literal[
    "resource", "resource-group", "subscription", "team", "service", "commitment", "tag-key", "tag-value", "budget"
]

# What the monthly figure means, so the screen can say "saves", "wastes", "unallocated", ...
ImpactKind = Literal["savings", "waste", "increase", "unallocated", "affected", "overrun"]

EvidenceValue = str | int | float | Decimal | dt.date


@dataclass(frozen=True)
class Scope:
    """What a recommendation is about. `key` is stable across syncs (ids, lower-cased names); `label` is for people."""

    type: ScopeType
    key: str
    label: str
    subscription_id: str | None = None
    resource_group: str | None = None


@dataclass(frozen=True)
class JumpTarget:
    """Where `enter` goes: the allocation tree at a dimension path, or the tagging queue for a key.

    `path` pairs dimension names (as in `basis.dimensions`) with the key at that level, e.g.
    (("subscription", "0000-…"), ("resource-group", "rg-web")). For `screen == "tagging"` the path
    narrows the unallocated queue and `tag_key` names the key to fill.
    """

    screen: Literal["allocation", "tagging"]
    path: tuple[tuple[str, str], ...]
    tag_key: str | None = None


@dataclass(frozen=True)
class DailyPoint:
    """One day of the evidence chart: cost and, for anomalies, the expected cost."""

    day: dt.date
    cost: Decimal
    baseline: Decimal | None = None


@dataclass(frozen=True)
class Recommendation:
    """One finding, ranked by `monthly_impact` (in `currency`; never added across currencies)."""

    id: str
    kind: str
    title: str
    scope: Scope
    monthly_impact: Decimal
    currency: str
    confidence: Confidence
    impact_kind: ImpactKind
    action: str  # what to do about it, one sentence
    evidence: tuple[tuple[str, EvidenceValue], ...] = ()
    series: tuple[DailyPoint, ...] = ()
    jump: JumpTarget | None = None
    team: str | None = None  # the team the scope belongs to, when one team holds most of it
    estimate: bool = False  # True when the figure is a rule-of-thumb estimate, not measured waste
    # Filled from recommendation_state when listed:
    state: str | None = None  # dismissed | snoozed | noted
    snoozed_until: dt.date | None = None
    note: str | None = None

    def with_state(self, state: str | None, until: dt.date | None, note: str | None) -> Recommendation:
        return replace(self, state=state, snoozed_until=until, note=note)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able shape (Decimals and dates stay typed; `commands.render.to_json` writes them exactly)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "scope": {
                "type": self.scope.type,
                "key": self.scope.key,
                "label": self.scope.label,
                "subscription_id": self.scope.subscription_id,
                "resource_group": self.scope.resource_group,
            },
            "monthly_impact": self.monthly_impact,
            "currency": self.currency,
            "impact_kind": self.impact_kind,
            "confidence": self.confidence,
            "estimate": self.estimate,
            "action": self.action,
            "team": self.team,
            "evidence": [{"label": label, "value": value} for label, value in self.evidence],
            "series": [{"day": p.day, "cost": p.cost, "baseline": p.baseline} for p in self.series],
            "jump": None
            if self.jump is None
            else {
                "screen": self.jump.screen,
                "path": [[dim, key] for dim, key in self.jump.path],
                "tag_key": self.jump.tag_key,
            },
            "state": self.state,
            "snoozed_until": self.snoozed_until,
            "note": self.note,
        }


def stable_id(kind: str, scope_type: str, scope_key: str, currency: str, discriminator: str = "") -> str:
    """Same finding, same id across syncs and re-imports: a hash of what it is about, never of its figures."""
    text = "|".join((kind, scope_type, scope_key.lower(), currency.upper(), discriminator))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Thresholds:
    """Knobs shared by the generators; defaults suit estates from a few hundred to millions a month."""

    min_monthly: Decimal = Decimal(20)  # absolute floor, in any currency, below which nothing is worth a line
    relative_floor: Decimal = Decimal("0.0005")  # ... and at least this share of the currency's monthly spend
    lookback_days: int = 120  # how far back the shared daily aggregate reaches
    anomaly_window_days: int = 28  # recent days inspected for spikes and level shifts
    baseline_weeks: int = 8  # same-weekday history before that window
    anomaly_sigmas: float = 3.5  # robust z-score (MAD) a day must exceed to be a spike
    anomaly_min_ratio: float = 1.5  # ... and at least this multiple of its expected cost
    step_min_ratio: float = 1.2  # median recent/expected ratio that makes a level shift
    step_min_days: int = 7  # trailing elevated days that make a level shift rather than a spike
    new_sku_days: int = 14  # a meter first seen on a resource this recently is "new"
    growth_weeks: int = 12  # complete weeks the growth trend is measured over
    growth_min_weeks: int = 6
    idle_days: int = 14  # no compute in a resource group for this long makes its storage idle
    stable_days: int = 30  # window for commitment eligibility
    stable_max_cv: float = 0.15  # coefficient of variation of daily on-demand cost that counts as steady
    reservation_savings: Decimal = Decimal("0.35")  # midpoint of the usual 30-40 % for a 1-year reservation


@dataclass(frozen=True)
class Context:
    """What every generator needs: where the data ends (never the wall clock), the metric and the team key."""

    data_start: dt.date
    data_end: dt.date  # last day with cost rows; every window counts back from here
    metric: Literal["effective", "billed"] = "effective"
    team_key: str = "team"
    currency: str | None = None  # only this billing currency, when set
    tag_keys: tuple[str, ...] = ("team", "env", "costcenter")
    today: dt.date = field(default_factory=clock.today)  # only for budgets' periods and snoozes
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def cost_column(self) -> str:
        # Actual and amortized syncs land as separate rows with the other column NULL, so each metric sums
        # its own column and never mixes the two.
        return "EffectiveCost" if self.metric == "effective" else "BilledCost"

    def days_back(self, days: int) -> dt.date:
        """First day of the `days`-day window ending on (and including) the data end."""
        return self.data_end - dt.timedelta(days=days - 1)

    @classmethod
    def from_cache(
        cls,
        cur: duckdb.DuckDBPyConnection,
        *,
        metric: Literal["effective", "billed"] = "effective",
        team_key: str | None = None,
        currency: str | None = None,
        tag_keys: tuple[str, ...] | None = None,
        thresholds: Thresholds | None = None,
    ) -> Context | None:
        """The context for the cache's latest data; None when the cache holds no cost rows."""
        fresh = freshness(cur)
        if fresh.data_end is None or fresh.data_start is None:
            return None
        key = (team_key or "team").lower()
        keys = tuple(dict.fromkeys([key, *(k.lower() for k in (tag_keys or ("team", "env", "costcenter")))]))
        return cls(
            data_start=fresh.data_start,
            data_end=fresh.data_end,
            metric=metric,
            team_key=key,
            currency=currency.upper() if currency else None,
            tag_keys=keys,
            thresholds=thresholds or Thresholds(),
        )


def _encode_value(value: EvidenceValue) -> list[str | int | float]:
    if isinstance(value, Decimal):
        return ["decimal", str(value)]
    if isinstance(value, dt.date):
        return ["date", value.isoformat()]
    if isinstance(value, bool | int):
        return ["int", int(value)]
    if isinstance(value, float):
        return ["float", value]
    return ["str", str(value)]


def _decode_value(tagged: list[Any]) -> EvidenceValue:
    kind, value = tagged
    if kind == "decimal":
        return Decimal(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def encode(rec: Recommendation) -> str:
    """Lossless JSON for the results table (exact decimals, typed evidence); state is not stored with it."""
    doc = {
        "id": rec.id,
        "kind": rec.kind,
        "title": rec.title,
        "scope": [rec.scope.type, rec.scope.key, rec.scope.label, rec.scope.subscription_id, rec.scope.resource_group],
        "impact": str(rec.monthly_impact),
        "currency": rec.currency,
        "confidence": rec.confidence,
        "impact_kind": rec.impact_kind,
        "action": rec.action,
        "evidence": [[label, _encode_value(value)] for label, value in rec.evidence],
        "series": [[p.day.isoformat(), str(p.cost), None if p.baseline is None else str(p.baseline)]
                   for p in rec.series],
        "jump": None
        if rec.jump is None
        else [rec.jump.screen, [list(step) for step in rec.jump.path], rec.jump.tag_key],
        "team": rec.team,
        "estimate": rec.estimate,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def decode(text: str) -> Recommendation:
    doc = json.loads(text)
    stype, skey, slabel, ssub, srg = doc["scope"]
    jump = doc["jump"]
    return Recommendation(
        id=doc["id"],
        kind=doc["kind"],
        title=doc["title"],
        scope=Scope(stype, skey, slabel, ssub, srg),
        monthly_impact=Decimal(doc["impact"]),
        currency=doc["currency"],
        confidence=doc["confidence"],
        impact_kind=doc["impact_kind"],
        action=doc["action"],
        evidence=tuple((label, _decode_value(value)) for label, value in doc["evidence"]),
        series=tuple(
            DailyPoint(dt.date.fromisoformat(d), Decimal(c), None if b is None else Decimal(b))
            for d, c, b in doc["series"]
        ),
        jump=None if jump is None else JumpTarget(jump[0], tuple((d, k) for d, k in jump[1]), jump[2]),
        team=doc["team"],
        estimate=doc["estimate"],
    )
