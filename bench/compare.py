"""Compare a benchmark run with a stored baseline: ratios to raw DuckDB where a scenario has one."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORSE_BY = 0.20  # a figure more than 20% worse than the baseline is flagged


@dataclass(frozen=True)
class Comparison:
    name: str
    rows: int
    measure: str  # "ratio" (app time / raw DuckDB time) or "app_ms" (no raw equivalent: noisier)
    baseline: float
    now: float

    @property
    def change(self) -> float:
        return self.now / self.baseline - 1 if self.baseline else 0.0

    @property
    def worse(self) -> bool:
        return self.change > WORSE_BY


def _key(result: dict[str, Any]) -> tuple[str, int]:
    """A scenario and its cache's size to two significant digits: a demo that gained a few rows (a new charge
    in the estate) is still the same 1M-row cache."""
    rows = int(result.get("cache_rows") or result.get("rows") or 0)
    return str(result["name"]), round(rows, 2 - len(str(rows))) if rows else 0


def save_baseline(path: Path, results: Iterable[dict[str, Any]]) -> None:
    kept = [{k: r.get(k) for k in ("name", "cache_rows", "rows", "app_ms", "raw_ms", "ratio")} for r in results
            if r.get("app_ms") is not None]
    document = {"taken": dt.date.today().isoformat(), "cores": os.cpu_count(), "results": kept}
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def load_baseline(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        raise ValueError(f"{path}: not a baseline written by `bench/run.py --save-baseline`")
    return results


def compare(baseline: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]]) -> list[Comparison]:
    """Each scenario of `results` that the baseline also has, by ratio when both runs have one."""
    before = {_key(r): r for r in baseline}
    out: list[Comparison] = []
    for result in results:
        old = before.get(_key(result))
        if old is None or result.get("app_ms") is None:
            continue
        name, rows = _key(result)
        if result.get("ratio") is not None and old.get("ratio") is not None:
            out.append(Comparison(name, rows, "ratio", float(old["ratio"]), float(result["ratio"])))
        elif old.get("app_ms") is not None:
            out.append(Comparison(name, rows, "app_ms", float(old["app_ms"]), float(result["app_ms"])))
    return out


def render(comparisons: Sequence[Comparison]) -> str:
    if not comparisons:
        return "no scenario of this run is in the baseline\n"
    lines = [f"{'scenario':<60} {'rows':>12} {'measure':>8} {'baseline':>10} {'now':>10} {'change':>8}"]
    for c in comparisons:
        flag = "  WORSE" if c.worse else ""
        lines.append(f"{c.name[:60]:<60} {c.rows:>12,} {c.measure:>8} {c.baseline:>10.2f} {c.now:>10.2f} "
                     f"{c.change:>+8.0%}{flag}")
    worse = sum(c.worse for c in comparisons)
    lines.append(f"{worse} of {len(comparisons)} figures more than {WORSE_BY:.0%} worse than the baseline"
                 + (" (app_ms rows have no raw equivalent: rerun them on a quiet machine before believing them)"
                    if any(c.worse and c.measure == "app_ms" for c in comparisons) else ""))
    return "\n".join(lines) + "\n"
