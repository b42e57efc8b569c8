"""Issue 11: layers without cycles, the data layer taking its tag policy as an argument, one write path."""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grimp
import pytest

from finops_tui import clock, paths
from finops_tui.allocation.effective import TagPolicy, load_tag_policy
from finops_tui.allocation.journal import apply_tags
from finops_tui.allocation.push import preview, push
from finops_tui.allocation.rules import Rule, load_rules, save_rule
from finops_tui.config import Config
from finops_tui.store import Cache, open_cache
from tests import fake_arm
from tests.allocation_data import END, TODAY, Charge, load, rid
from tests.fake_tags_arm import FakeCredential, FakeTagsArm
from tests.import_helpers import FOCUS_SAMPLE, header_of, read_rows, run_import, write_csv

PACKAGE = Path(__file__).parent.parent / "finops_tui"
# Everything below the commands and the UI: it takes config, rules and pools as arguments.
DATA_LAYER = ("store", "basis", "config.py", "azure.py", "allocation", "ingest", "sync", "report", "recommend")
# The loaders, and where the data layer may call them: their own definitions and rules.toml's read-back check.
LOADERS = {"load_config", "load_config_or_defaults", "load_rules", "load_tag_policy"}
SUB = "6f1c0e7a-0000-4000-8000-00000000000a"  # a push sends only full ARM ids: the subscription is a GUID
LOADER_CALLS_ALLOWED = {("allocation/rules.py", "save_rule"), ("allocation/effective.py", "load_tag_policy"),
                        ("config.py", "load_config_or_defaults")}


def _data_layer_files() -> Iterator[Path]:
    for part in DATA_LAYER:
        path = PACKAGE / part
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


# --- structure ------------------------------------------------------------------------------------


def test_no_import_cycles_outside_the_ui() -> None:
    """Strongly connected modules (imports inside functions included): none in the data layer or the commands."""
    graph = grimp.build_graph("finops_tui")
    modules = {m for m in graph.modules if m.startswith("finops_tui") and not m.startswith("finops_tui.ui")}
    for module in sorted(modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported in modules and graph.chain_exists(imported=module, importer=imported):
                chain = graph.find_shortest_chain(importer=imported, imported=module)
                raise AssertionError(f"{module} -> {imported} closes a cycle: {chain}")


def test_every_cache_write_goes_through_the_writer() -> None:
    """Only store/cache.py opens a transaction (Cache.write and the migrations); nothing else says BEGIN."""
    pattern = re.compile(r"\b(BEGIN|COMMIT|ROLLBACK)\b")
    offenders = [
        str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "store" / "cache.py"
        and any(pattern.search(node.value) for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.Constant) and isinstance(node.value, str))
    ]
    assert offenders == []


def test_the_data_layer_loads_neither_config_nor_rules() -> None:
    """Only the commands and the app call the loaders: the data layer takes Config, rules and policy as arguments."""
    calls = []
    for path in _data_layer_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                    where = (path.relative_to(PACKAGE).as_posix(), function.name)
                    if name in LOADERS and where not in LOADER_CALLS_ALLOWED:
                        calls.append(f"{where[0]}:{node.lineno} {function.name}() calls {name}()")
    assert calls == []


def test_effective_tags_have_no_silent_fallback() -> None:
    """Rules come in the policy, never through an import that could fail quietly and switch them off."""
    source = (PACKAGE / "allocation" / "effective.py").read_text(encoding="utf-8")
    assert "ImportError" not in source


def test_the_commands_and_the_data_layer_never_import_textual() -> None:
    """`finops-tui report`, `tags` and `import` start without the UI toolkit (about 0.2 s, STYLE.md)."""
    code = (
        "import sys\n"
        "import finops_tui.commands.report, finops_tui.commands.tags, finops_tui.commands.imports\n"
        "import finops_tui.commands.sync, finops_tui.commands.demo, finops_tui.cli\n"
        "sys.exit(1 if any(m.split('.')[0] == 'textual' for m in sys.modules) else 0)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- the tag policy as an argument ------------------------------------------------------------------


pytestmark = pytest.mark.today(TODAY)


def _tags(cache: Cache) -> set[tuple[str, str]]:
    with cache.cursor() as cur:
        return {(str(k), str(v)) for k, v in cur.execute("SELECT tag_key, tag_value FROM resource_tags").fetchall()}


def _write_config(text: str) -> None:
    path = paths.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _tagged_focus_file(path: Path) -> Path:
    template = next(r for r in read_rows(FOCUS_SAMPLE) if r["ProviderName"] == "AWS")
    rows = [
        dict(template, ResourceId=f"arn:aws:ec2:us-west-2:1:instance/i-{n}", ResourceName=f"i-{n}",
             Tags=json.dumps(tags))
        for n, tags in enumerate([{"Owner_Team": "payments"}, {"Team": "search"}])
    ]
    return write_csv(path, header_of(FOCUS_SAMPLE), rows)


def _tags_of(cache_path: Path) -> set[tuple[str, str]]:
    with open_cache(cache_path, read_only=True) as cache:
        return _tags(cache)


def test_an_import_applies_the_configured_aliases_and_case_folding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """config.toml's [tags] reaches the import through the command: aliases fold, fold_case = false keeps case."""
    source = _tagged_focus_file(tmp_path / "tagged.csv")
    _write_config('[tags]\naliases = { Owner_Team = "team" }\n')
    assert run_import(capsys, tmp_path / "folded.duckdb", source)[0] == 0
    assert _tags_of(tmp_path / "folded.duckdb") == {("team", "payments"), ("team", "search")}

    _write_config("[tags]\nfold_case = false\n")
    assert run_import(capsys, tmp_path / "cased.duckdb", source)[0] == 0
    assert _tags_of(tmp_path / "cased.duckdb") == {("Owner_Team", "payments"), ("Team", "search")}


def test_the_policy_is_read_by_the_caller_not_by_the_rebuild(tmp_path: Path) -> None:
    """A rule saved to rules.toml changes nothing until a caller passes a policy that holds it."""
    resource = rid("s1", "rg-payments-prod", "api")
    with load(tmp_path / "c.duckdb", [Charge(END - dt.timedelta(days=1), resource, Decimal("1.00"))]) as cache:
        save_rule(Rule({"team": "payments"}, resource_group="rg-payments-*"))
        apply_tags(cache, TagPolicy(), [resource], "env", "prod")  # a policy without the rule
        assert ("team", "payments") not in _tags(cache)
        apply_tags(cache, load_tag_policy(Config()), [resource], "env", "dev")
        assert ("team", "payments") in _tags(cache)
    policy = load_tag_policy(Config(fold_key_case=False, tag_aliases={"owner_team": "team"}))
    assert policy == TagPolicy(fold_case=False, aliases={"owner_team": "team"}, rules=tuple(load_rules()))


def test_a_sync_rebuilds_tags_with_the_policy_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock.pin(fake_arm.TODAY)
    policy = TagPolicy(rules=(Rule({"x_policy": "from-sync"}, index=1),))
    with fake_arm.FakeArm(today=fake_arm.TODAY) as arm, open_cache(tmp_path / "c.duckdb") as cache:
        arm.add_scope(fake_arm.SUB, 2, cost_details=None)
        run = fake_arm.sync(arm, cache, months=1, extras=False, policy=policy)
        assert not run.result.failures
        with cache.cursor() as cur:
            rows = cur.execute(
                "SELECT count(*) FROM resource_tags WHERE tag_key = 'x_policy' AND origin = 'rule'"
            ).fetchone()
        assert rows is not None and rows[0] > 0


# --- the push through the writer --------------------------------------------------------------------


@pytest.fixture
def tags_arm() -> Iterator[FakeTagsArm]:
    with FakeTagsArm() as arm:
        yield arm


def _synced_cache(path: Path) -> Path:
    import duckdb

    charges = [Charge(END - dt.timedelta(days=1), rid(SUB, "rg-pay", name), Decimal("2.00"), rg="rg-pay", name=name)
               for name in ("api", "db")]
    load(path, charges).close()
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE sources SET kind = 'sync-query'")
    finally:
        con.close()
    return path


def test_a_push_records_its_results_on_the_explorers_shared_cache(tmp_path: Path, tags_arm: FakeTagsArm) -> None:
    """The explorer holds its cache read-only between writes: each result is written through Cache.write."""
    path = _synced_cache(tmp_path / "c.duckdb")
    with open_cache(path, shared=True) as cache:
        apply_tags(cache, TagPolicy(), [rid(SUB, "rg-pay", "api"), rid(SUB, "rg-pay", "db")], "team", "payments")
        with cache.cursor() as cur:
            items = preview(cur)
        report = push(cache, items, FakeCredential(), tags_arm.base_url, sleep=lambda s: None)
        assert [r.status for r in report.results] == ["pushed", "pushed"]
        with cache.cursor() as cur:
            statuses = {r[0] for r in cur.execute("SELECT push_status FROM tag_edits").fetchall()}
        assert statuses == {"pushed"}


def test_a_push_holds_no_cursor_while_it_waits(tmp_path: Path, tags_arm: FakeTagsArm) -> None:
    """During a throttling wait the same thread can write: the push returned its cursor before waiting."""
    path = _synced_cache(tmp_path / "c.duckdb")
    api = rid(SUB, "rg-pay", "api")
    tags_arm.responses[api] = [(429, {"Retry-After": "1"}, {})]
    written: list[int] = []

    def wait(seconds: float) -> None:
        with cache.write() as cur:  # raises RuntimeError if this thread still held a cursor
            cur.execute("UPDATE tag_edits SET push_error = 'waiting' WHERE push_status = 'pending'")
            written.append(1)

    with open_cache(path) as cache:
        apply_tags(cache, TagPolicy(), [api], "team", "payments")
        with cache.cursor() as cur:
            items = preview(cur)
        report = push(cache, items, FakeCredential(), tags_arm.base_url, sleep=wait)
    assert written == [1] and [r.status for r in report.results] == ["pushed"]
