"""`finops-tui mcp`: an MCP client session lists and calls every tool; figures equal `report … --format json`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from finops_tui import cli
from finops_tui.allocation.effective import TagPolicy
from finops_tui.commands.mcp_server import build_server
from finops_tui.config import Config
from finops_tui.ingest.demo import build_demo
from finops_tui.store import open_cache
from tests.allocation_data import fresh_copy

TODAY = dt.date(2026, 11, 27)
pytestmark = pytest.mark.today(TODAY)
READ_TOOLS = {"overview", "allocation", "recommendations", "unallocated", "resource", "search_resources"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "demo.duckdb"
    build_demo(path, TagPolicy(), end=TODAY - dt.timedelta(days=1), months=2, rows=4000)
    return path


def report_json(cache: Path, *args: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["report", *args, "--cache", str(cache), "--format", "json"]) == 0
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def session(cache_path: Path, body: Callable[[Client], Awaitable[None]], *, allow_tagging: bool = False) -> None:
    """Run `body` against the server in process, on the cache opened as `finops-tui mcp` opens it."""
    async def run() -> None:
        with (open_cache(cache_path, shared=True) if allow_tagging else open_cache(cache_path, read_only=True)) as c:
            async with Client(build_server(c, Config(), allow_tagging=allow_tagging)) as client:
                await body(client)

    asyncio.run(run())


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    document: dict[str, Any] = result.structured_content
    assert "freshness" in document and document["freshness"]["data_end"] == str(TODAY - dt.timedelta(days=1))
    return document


def without_freshness(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "freshness"}


def test_tools_answer_the_reports_figures(template: Path) -> None:
    found: dict[str, Any] = {}

    async def body(client: Client) -> None:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        found["tools"] = listed
        found["overview"] = await call(client, "overview", period="last-month", metric="billed")
        found["allocation"] = await call(client, "allocation", by="tag:team,subscription", period="last-month",
                                         depth=2)
        found["recommendations"] = await call(client, "recommendations")
        found["payments"] = await call(client, "allocation", by="tag:team,subscription", period="last-month",
                                       path=["payments"])
        found["unallocated"] = await call(client, "unallocated", key="team", top=5, period="last-month")
        found["search"] = await call(client, "search_resources", text="payments")
        first = found["search"]["resources"][0]
        found["resource"] = await call(client, "resource", resource=first["resource_id"], period="last-month")
        if "explain" in listed:
            found["explain"] = await call(client, "explain", period="last-month")
        if "commitments" in listed:
            found["commitments"] = await call(client, "commitments", period="last-month")

    session(template, body)
    tools = found["tools"]
    assert set(tools) >= READ_TOOLS and "set_tags" not in tools
    for tool in tools.values():
        assert tool.description and tool.input_schema["type"] == "object"
    assert tools["allocation"].input_schema["properties"]["depth"]
    assert without_freshness(found["overview"]) == report_json(
        template, "overview", "--period", "last-month", "--metric", "billed")
    assert without_freshness(found["allocation"]) == report_json(
        template, "allocation", "--by", "tag:team,subscription", "--period", "last-month", "--depth", "2")
    assert without_freshness(found["recommendations"]) == report_json(template, "recommendations")
    if "explain" in found:
        assert without_freshness(found["explain"]) == report_json(template, "explain", "--period", "last-month")
    if "commitments" in found:
        assert without_freshness(found["commitments"]) == report_json(
            template, "commitments", "--period", "last-month")
    # last month's cost by team: the explorer's figure for payments
    full = report_json(template, "allocation", "--by", "tag:team,subscription", "--period", "last-month")
    payments = [n for n in full["currencies"][0]["children"] if n["label"] == "payments"]
    assert found["payments"]["currencies"][0]["children"] == payments
    unallocated = found["unallocated"]
    assert len(unallocated["items"]) <= 5 and unallocated["resources"] >= len(unallocated["items"])
    resource = found["resource"]
    assert resource["resource_id"] == found["search"]["resources"][0]["resource_id"]
    assert resource["daily"] and {t["origin"] for t in resource["tags"]} <= {"provider", "rule", "manual"}


def test_bad_arguments_are_tool_errors_with_the_cli_line(template: Path) -> None:
    errors: dict[str, str] = {}

    async def body(client: Client) -> None:
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("period", "overview", {"period": "bogus"}),
            ("resource", "resource", {"resource": "no-such-vm"}),
            ("type", "allocation", {"depth": "deep"}),
            ("metric", "overview", {"metric": "list"}),
            ("currency", "overview", {"currency": "XYZ"}),
            ("level", "allocation", {"by": "tag:"}),
            ("path", "allocation", {"path": ["no-such-team"]}),
            ("search", "search_resources", {"text": "  "}),
            ("unknown", "set_tags", {"tags": {"team": "x"}, "resource": "vm"}),
        ]
        for name, tool, arguments in cases:
            result = await client.call_tool(tool, arguments)
            assert result.is_error
            errors[name] = result.content[0].text  # type: ignore[union-attr]

    session(template, body)
    assert "--period bogus: expected mtd" in errors["period"]
    assert "'no-such-vm': no resource with that name in the cache" in errors["resource"]
    assert "depth" in errors["type"] and "metric" in errors["metric"]
    assert "the cache holds no cost in XYZ" in errors["currency"]
    assert "no-such-team" in errors["path"] and "give some text" in errors["search"]
    assert "set_tags" in errors["unknown"]
    assert all("Traceback" not in e for e in errors.values())


def test_set_tags_is_journaled_with_the_flag(template: Path, tmp_path: Path) -> None:
    path = fresh_copy(template, tmp_path)
    answers: dict[str, Any] = {}

    async def body(client: Client) -> None:
        assert "set_tags" in {t.name for t in (await client.list_tools()).tools}
        found = await call(client, "search_resources", text="vm-", limit=1)
        rid = found["resources"][0]["resource_id"]
        answers["rid"] = rid
        answers["set"] = await call(client, "set_tags", resource=rid, tags={"team": "mcp-team"})
        answers["after"] = await call(client, "resource", resource=rid)
        bad = await client.call_tool("set_tags", {"resource": rid, "tags": {"team": "a\x1bb"}})
        answers["bad"] = bad.content[0].text if bad.is_error else None  # type: ignore[union-attr]

    session(path, body, allow_tagging=True)
    assert answers["set"]["pushed"] is False and answers["set"]["batches"]
    assert {"key": "team", "value": "mcp-team", "origin": "manual", "provider_key": None, "rule": None} in answers[
        "after"]["tags"]
    assert answers["bad"] and "control" in answers["bad"].lower()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["tags", "list", "--cache", str(path)]) == 0
    assert "mcp-team" in out.getvalue() and "pending" in out.getvalue()


def test_stdio_server_serves_while_the_explorer_holds_the_cache(template: Path, tmp_path: Path) -> None:
    """Over stdio, as a client config starts it, with another process holding the cache read-only."""
    path = fresh_copy(template, tmp_path)
    holder = open_cache(path, shared=True)  # the explorer's way of holding the file
    got: dict[str, Any] = {}

    async def run() -> None:
        env = {**os.environ, "FINOPS_TUI_TODAY": TODAY.isoformat()}
        params = StdioServerParameters(command=sys.executable, args=["-m", "finops_tui", "mcp", "--cache", str(path)],
                                       env=env)
        async with Client(params) as client:
            got["tools"] = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("allocation", {"by": "tag:team", "period": "all", "depth": 1})
            got["allocation"] = result.structured_content

    try:
        asyncio.run(run())
    finally:
        holder.close()
    assert got["tools"] >= READ_TOOLS and "set_tags" not in got["tools"]
    assert without_freshness(got["allocation"]) == report_json(
        path, "allocation", "--by", "tag:team", "--period", "all", "--depth", "1")
