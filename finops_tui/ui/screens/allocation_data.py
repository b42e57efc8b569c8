"""Allocation screen data: the tree's requests and answers, their queries, and the prefetch that runs ahead."""

from __future__ import annotations

import threading
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import duckdb
from textual.message import Message
from textual.worker import Worker, get_current_worker

from finops_tui.basis.periods import Period
from finops_tui.report import shared_tree, tree
from finops_tui.report.chargeback import Chargeback
from finops_tui.report.tags import folded_keys
from finops_tui.report.tree import Node, resolve_hierarchy
from finops_tui.store import Cache
from finops_tui.store.sources import Freshness
from finops_tui.ui.queries import QueryGate
from finops_tui.ui.screens.cost_view import resolve_view
from finops_tui.ui.widgets.alloc_tree import NodePath

CHILDREN_LIMIT = 200  # children per expansion; the smaller ones fold into one "(N more)" row
PREFETCH_LIMIT = 40  # expansions computed ahead of the user per plan
RESULT_CACHE_SIZE = 512  # expansions kept (a few kB each)

ExpansionKey = tuple[tuple[str, ...], NodePath, Period, str, str, bool]


@dataclass(frozen=True)
class TreeRequest:
    """One query of the tree's top level for a hierarchy and the shared period, metric and currency."""

    generation: int
    data_version: int
    hierarchy: tuple[str, ...]
    period: str
    metric: str
    currency: str | None
    keep_state: bool  # a reload of the same tree: expanded nodes come back
    shared: bool = False  # with shared costs: team figures are direct cost + each pool's share


@dataclass
class TreeLoaded(Message):
    """A worker resolved the period and currency and loaded the top level."""

    request: TreeRequest
    period: Period
    freshness: Freshness
    currencies: list[str]
    currency: str
    nodes: list[Node]
    folded: dict[str, list[str]]  # tag key -> the provider spellings folded into it


@dataclass(frozen=True)
class ExpansionRequest:
    """The children of one node (`path`) for one hierarchy, period, metric and currency."""

    key: ExpansionKey
    data_version: int
    hierarchy: tuple[str, ...]
    path: NodePath
    period: Period
    metric: str
    currency: str
    shared: bool = False


@dataclass
class PoolsChanged(Message):
    """shared.toml changed (a pool saved, moved or deleted) and the cache applied it: every figure may move."""

    text: str  # what changed, for the toast


@dataclass
class ChargebackReady(Message):
    """The chargeback of the month in view was computed for `ctrl+s` (shared costs on)."""

    report: Chargeback


@dataclass
class ChildrenLoaded(Message):
    """A worker loaded one node's children (asked for by the user, or computed ahead of them)."""

    request: ExpansionRequest
    nodes: list[Node]
    prefetched: bool


def expansion_key(hierarchy: Iterable[str], path: NodePath, period: Period, metric: str,
                  currency: str, shared: bool = False) -> ExpansionKey:
    """What an expansion's answer is kept by: the levels down to the children's, the node, period, metric, currency
    and whether shared costs are on."""
    return (tuple(hierarchy)[: len(path) + 1], path, period, metric, currency, shared)


def children(cur: duckdb.DuckDBPyConnection, shared: bool, *args: Any, **kwargs: Any) -> list[Node]:
    """`report.tree.children`, or with shared costs on its drop-in `report.shared_tree.children`."""
    return (shared_tree.children if shared else tree.children)(cur, *args, **kwargs)


def load_tree(cur: duckdb.DuckDBPyConnection, request: TreeRequest, known_folded: Container[str]) -> TreeLoaded:
    """The top level for `request`, with the period and currency resolved and the tag keys not yet folded."""
    period, fresh, codes, currency = resolve_view(cur, request.period, request.metric, request.currency)
    nodes = children(cur, request.shared, request.hierarchy, [], period, request.metric, currency,
                     limit=CHILDREN_LIMIT)
    folded = {
        d.tag_key: folded_keys(cur, d.tag_key) for d in resolve_hierarchy(request.hierarchy)
        if d.tag_key is not None and d.tag_key not in known_folded
    }
    return TreeLoaded(request, period, fresh, codes, currency, nodes, folded)


def expansion_query(request: ExpansionRequest, cur: duckdb.DuckDBPyConnection) -> list[Node]:
    return children(cur, request.shared, request.hierarchy, list(request.path), request.period, request.metric,
                    request.currency, limit=CHILDREN_LIMIT)


def plan_requests(nodes: Iterable[ExpansionRequest | None], roots: Iterable[ExpansionRequest | None],
                  known: Container[ExpansionKey]) -> list[ExpansionRequest]:
    """What to compute ahead, in order: up to PREFETCH_LIMIT nodes' children (given cursor first), then the
    other hierarchies' top levels; never an answer already `known` or one asked twice."""
    requests: list[ExpansionRequest] = []
    seen: set[ExpansionKey] = set()
    for request in nodes:
        if request is None or request.key in seen or request.key in known:
            continue
        seen.add(request.key)
        requests.append(request)
        if len(requests) >= PREFETCH_LIMIT:
            break
    for request in roots:
        if request is not None and request.key not in known and request.key not in seen:
            seen.add(request.key)
            requests.append(request)
    return requests


class PrefetchPlan:
    """Expansions to compute in the background, the node under the cursor first. Shared with the worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[ExpansionRequest] = []
        self._running: ExpansionKey | None = None

    def replace(self, requests: Iterable[ExpansionRequest]) -> None:
        with self._lock:
            self._queue = list(requests)

    def take(self) -> ExpansionRequest | None:
        with self._lock:
            request = self._queue.pop(0) if self._queue else None
            self._running = request.key if request else None
            return request

    def running(self) -> ExpansionKey | None:
        with self._lock:
            return self._running

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def finish(self) -> None:
        with self._lock:
            self._running = None


class Prefetcher:
    """The expansions planned ahead of the user, and the loop one background worker runs over them.

    The screen starts the worker (a Textual worker belongs to a widget) and hands it to `worker`; this object
    holds what the worker works on: the plan, shared with the worker's thread, and the gate whose cursor a
    user's own request interrupts.
    """

    def __init__(self) -> None:
        self.plan = PrefetchPlan()
        self.gate = QueryGate()
        self.worker: Worker[None] | None = None

    def computing(self, key: ExpansionKey) -> bool:
        """The worker is computing exactly `key` now: its answer will fill the node."""
        worker = self.worker
        return self.plan.running() == key and worker is not None and not worker.is_finished

    def running(self) -> bool:
        worker = self.worker
        return worker is not None and not worker.is_finished and not worker.is_cancelled

    def run(self, cache: Cache, answer: Callable[[ChildrenLoaded], object]) -> None:
        """The worker's loop, on its thread: take the next planned request, query it, `answer` with the children."""
        worker = get_current_worker()
        try:
            while not worker.is_cancelled:
                request = self.plan.take()
                if request is None:
                    return
                try:
                    nodes = self.gate.run(cache, partial(expansion_query, request))
                except Exception:  # a failed guess costs nothing: the real request will report the problem
                    self.plan.replace([])
                    return
                if nodes is None:
                    return
                answer(ChildrenLoaded(request, nodes, prefetched=True))
        finally:
            self.plan.finish()
