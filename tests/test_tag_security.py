"""Tag write-back safety: ARM ids checked where they enter, Azure's tag limits, and what may be pushed at all."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finops_tui import clock
from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.journal import apply_tags, list_edits
from finops_tui.allocation.push import preview, push, tags_url
from finops_tui.allocation.rules import load_rules
from finops_tui.allocation.tag_limits import TagLimitError, check_tag, tag_problem
from finops_tui.basis.arm_ids import (
    InvalidResourceId,
    ResourceId,
    invalid_resource_id_sql,
    parse_resource_id,
    resource_id_problem,
)
from finops_tui.cli import main
from finops_tui.errors import UserError
from finops_tui.store import Cache, open_cache
from tests import ui_fixtures
from tests.allocation_data import END, TODAY, Charge, load
from tests.fake_tags_arm import FakeCredential, FakeTagsArm
from tests.import_helpers import EA_ACTUAL, FOCUS_SAMPLE, checksum, query, run_import

SUB = "6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c"
DAY = END - dt.timedelta(days=1)


def vm(name: str, rg: str = "rg-pay", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.compute/virtualmachines/{name}"


API = vm("api")
DB = vm("db")
# The crafted id: a normalising client or server would PATCH the subscription's tags.
CRAFTED = vm("vm-innocent") + "/../../../../../.."
CRAFTED_SUFFIX = "/providers/microsoft.resources/tags/default"


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture
def tags_arm() -> Iterator[FakeTagsArm]:
    with FakeTagsArm() as fake:
        yield fake


def _cache(path: Path, kind: str, charges: list[Charge]) -> Path:
    """A cache whose rows came from `kind` (sync-query, focus-file, demo)."""
    load(path, charges).close()
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE sources SET kind = ?", [kind])
    finally:
        con.close()
    return path


def _charges() -> list[Charge]:
    return [
        Charge(DAY, API, Decimal("5.00"), rg="rg-pay", name="api", tags={"Team": "old"}),
        Charge(DAY, DB, Decimal("3.00"), rg="rg-pay", name="db"),
    ]


@pytest.fixture(scope="module")
def _synced_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _cache(tmp_path_factory.mktemp("synced") / "cache.duckdb", "sync-query", _charges())


@pytest.fixture
def synced_path(_synced_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "cache.duckdb"
    shutil.copyfile(_synced_template, path)
    return path


@pytest.fixture
def synced(synced_path: Path) -> Iterator[Cache]:
    with open_cache(synced_path) as opened:
        yield opened


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


# --- ARM ids -------------------------------------------------------------------------------------


def test_a_full_resource_id_parses_with_its_parts() -> None:
    text = f"/subscriptions/{SUB}/resourceGroups/RG-Pay/providers/Microsoft.Sql/servers/sql1/databases/Orders"
    parsed = parse_resource_id(text)
    assert parsed == ResourceId(SUB, "RG-Pay", "Microsoft.Sql", ("servers", "databases"), ("sql1", "Orders"))
    assert (parsed.name, parsed.resource_type, str(parsed)) == ("Orders", "Microsoft.Sql/servers/databases", text)
    # Names may hold dots (DNS zones), and odd characters are encoded within their segment.
    zone = parse_resource_id(f"/subscriptions/{SUB}/resourceGroups/dns/providers/Microsoft.Network/dnszones/a.b.com")
    assert zone.name == "a.b.com"
    odd = ResourceId(SUB, "rg", "Microsoft.Insights", ("metricalerts",), ("cpu high?#%",))
    assert odd.url_path().endswith("/providers/Microsoft.Insights/metricalerts/cpu%20high%3F%23%25")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (CRAFTED, "'..' path segment"),
        (vm("a") + "/./b", "'.' path segment"),
        (vm("a").replace("/resourcegroups/", "/resourcegroups//"), "empty path segment"),
        (vm("a") + "/", "empty path segment"),
        (vm("a") + "\n", "control character '\\n'"),
        (vm("a\x1b[31m"), "control character '\\x1b'"),
        (vm("a\u2066b"), "control character '\\u2066'"),
        (vm("a", sub="s1"), "'s1' is not a GUID"),
        (f"/subscriptions/{SUB}", "names no resource group"),
        (f"/subscriptions/{SUB}/resourceGroups/rg", "names a resource group, not a resource"),
        (f"/subscriptions/{SUB}/resourceGroups/rg/providers/x/r1", "namespace is 'x'"),
        (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines", "do not pair up"),
        (vm("a") + "/providers/Microsoft.Insights/diagnosticSettings/d", "extension resource"),
        ("/providers/Microsoft.Capacity/reservationOrders/x/reservations/y", "does not start with /subscriptions/"),
        ("virtualmachines/vm1", "does not start with /subscriptions/"),
        (" " + vm("a"), "does not start with /subscriptions/"),
    ],
)
def test_anything_but_a_full_resource_id_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidResourceId) as raised:
        parse_resource_id(text)
    assert isinstance(raised.value, ValueError)
    assert reason in str(raised.value)


LOOSE_CASES = [
    # Legitimate ids of every provider, from real exports: accepted where ids enter the cache.
    (vm("a"), None),
    ("/providers/Microsoft.Capacity/reservationOrders/49ed0e4d/reservations/", None),  # Azure's own, trailing /
    ("/subscriptions/1caaa5a3-2b66-438e-8ab4-bce37d518c5d", None),
    ("arn:aws:elasticloadbalancing:us-east-2:961082193871:loadbalancer/net/tm-x/488f6a3e", None),
    ("//compute.googleapis.com/projects/p1/zones/us-central1-a/instances/123", None),
    ("i-037929a54982e113l", None),
    ("/subscriptions/x/resourcegroups/dns/providers/microsoft.network/dnszones/a.b.com", None),
    ("/subscriptions/x/resourcegroups/rg/providers/microsoft.web/sites/.well", None),
    # What no provider writes.
    (CRAFTED, "'.' or '..' path segment"),
    ("../etc/passwd", "'.' or '..' path segment"),
    ("/subscriptions/x/./y", "'.' or '..' path segment"),
    ("/subscriptions//resourcegroups/rg", "empty path segment"),
    ("/subscriptions/x//", "empty path segment"),
    ("/", "empty path segment"),
    ("/subscriptions/x\r\n/y", "control character"),
    ("vm\x1b]52;c;aGk=\x07", "control character"),
    ("vm\u2028x", "control character"),
    ("vm\x85x", "control character"),
    ("/subscriptions/x/vm-\u202egnp.exe", "control character"),  # a right-to-left override
]


@pytest.mark.parametrize(("text", "problem"), LOOSE_CASES)
def test_the_entry_check_refuses_only_what_no_provider_writes(text: str, problem: str | None) -> None:
    found = resource_id_problem(text)
    assert (found is None) == (problem is None), found
    if problem is not None:
        assert found is not None and problem in found


def test_the_sql_entry_check_agrees_with_python() -> None:
    con = duckdb.connect()
    texts = [text for text, _ in LOOSE_CASES] + ["", "//", "a/../b", "x/.", "./x", "/.", "a//b"]
    rows = con.execute(
        f"SELECT t, {invalid_resource_id_sql('t')} FROM unnest(?::VARCHAR[]) u(t)", [texts]
    ).fetchall()
    assert {t: bool(bad) for t, bad in rows} == {t: resource_id_problem(t) is not None for t in texts}
    assert con.execute(f"SELECT {invalid_resource_id_sql('NULL::VARCHAR')}").fetchone() == (None,)


# --- import and sync ---------------------------------------------------------------------------------


def _focus_with_crafted_id(tmp_path: Path) -> tuple[Path, int]:
    """20 good rows of the FOCUS sample, the third one's ResourceId turned into the crafted id: (file, row)."""
    with FOCUS_SAMPLE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    column = rows[0].index("ResourceId")
    good = [row for row in rows[1:] if row[column].startswith("arn:")][:20]  # the sample's AWS rows are clean
    good[2][column] = CRAFTED
    path = tmp_path / "crafted.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([rows[0], *good])
    return path, 3


def test_import_refuses_a_crafted_focus_resource_id_naming_row_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache.duckdb"
    assert run_import(capsys, cache, EA_ACTUAL)[0] == 0
    before = checksum(cache)
    crafted, row = _focus_with_crafted_id(tmp_path)
    code, out, err = run_import(capsys, cache, crafted)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert f"crafted.csv: row {row}, ResourceId: expected a resource id without '.', '..'" in err
    assert checksum(cache) == before
    code, out, err = run_import(capsys, cache, crafted, skip=True)
    assert code == 0 and "skipped 1 bad rows (ResourceId 1)" in err
    assert query(cache, "SELECT count(*) FROM charges WHERE ResourceId LIKE '%/..%'") == [(0,)]


def test_import_refuses_a_crafted_id_in_an_azure_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EA_ACTUAL.read_text(encoding="utf-8-sig")
    old = "/providers/Microsoft.Storage/storageAccounts/dbstoragewp6hglwvvrad2"
    assert old in text
    path = tmp_path / "ea.csv"
    path.write_text(text.replace(old, old + "/..", 1), encoding="utf-8")
    code, _, err = run_import(capsys, tmp_path / "cache.duckdb", path)
    assert code == 1 and "ea.csv: row 2, ResourceId: expected a resource id without" in err


def test_sync_refuses_a_window_holding_a_crafted_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import fake_arm

    clock.pin(fake_arm.TODAY)
    with fake_arm.FakeArm(today=fake_arm.TODAY) as arm, open_cache(tmp_path / "c.duckdb") as cache:
        estate = arm.add_scope(fake_arm.SUB, 3, cost_details=None)
        first = estate.resources[0]
        estate.resources[0] = replace(first, resource_id=first.resource_id + "/../../../..")
        run = fake_arm.sync(arm, cache, months=1, extras=False)
        assert run.result.failures and all("'..' path segment" in f.error for f in run.result.failures)
        with cache.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM charges").fetchone() == (0,)


# --- Azure's tag limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("team", "payments", None),
        ("k" * 512, "v" * 256, None),
        ("cost center", "it's ours", None),
        ("k" * 513, "x", "at most 512"),
        ("team", "v" * 257, "at most 256"),
        ("team/x", "x", "cannot contain"),
        ("a<b>c", "x", "holds < >"),
        ("50%", "x", "cannot contain"),
        ("a&b", "x", "cannot contain"),
        ("a\\b", "x", "cannot contain"),
        ("why?", "x", "cannot contain"),
        ("team\n", "x", "control character"),
        ("team", "pay\nments", "control character"),
        ("team", "\x1b[31mred", "control character"),
        ("microsoft.owner", "x", "reserved"),
        ("Azure-team", "x", "reserved"),
        ("windowsversion", "x", "reserved"),
    ],
)
def test_tag_limits(key: str, value: str, problem: str | None) -> None:
    found = tag_problem(key, value)
    assert (found is None) == (problem is None), found
    if problem is not None:
        assert found is not None and problem in found
        with pytest.raises(TagLimitError, match=r"^tag '"):
            check_tag(key, value)


def test_the_journal_refuses_what_azure_would_and_stays_unchanged(synced: Cache) -> None:
    for key, value in [("k" * 5000, "x"), ("team", "v" * 10_000), ("a<b", "x"), ("team", "a\nb"),
                       ("microsoftx", "y")]:
        with pytest.raises(TagLimitError):
            apply_tags(synced, TagPolicy(), [DB], key, value)
    with synced.cursor() as cur:
        assert list_edits(cur) == []


def test_at_most_50_tags_per_resource(synced: Cache) -> None:
    for i in range(48):  # api has one provider tag (Team): 49 keys
        apply_tags(synced, TagPolicy(), [API], f"k{i:02d}", "v")
    apply_tags(synced, TagPolicy(), [API], "k48", "v")  # the 50th
    apply_tags(synced, TagPolicy(), [API], "team", "new")  # changing a key it has is fine
    with pytest.raises(TagLimitError, match="51 tags; Azure allows at most 50"):
        apply_tags(synced, TagPolicy(), [API, DB], "k49", "v")
    apply_tags(synced, TagPolicy(), [DB], "k49", "v")  # db has room
    apply_tags(synced, TagPolicy(), [API], "k50", "v", push=False)  # a local-only edit is never sent: no limit


def test_tags_set_refuses_with_one_line(capsys: pytest.CaptureFixture[str], synced_path: Path) -> None:
    code = main(["tags", "--cache", str(synced_path), "set", "--resource", DB, "a/b=x"])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines() == [
        "finops-tui: tag 'a/b': the key holds /; Azure tag names cannot contain any of < > % & \\ ? /"]


def test_rules_break_azures_limits_with_one_line_naming_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\nresource_group = "rg-a"\nset = { team = "a" }\n\n'
                    '[[rule]]\nname = "web"\nresource_group = "rg-web*"\nset = { "team?" = "web" }\n',
                    encoding="utf-8")
    with pytest.raises(UserError) as raised:
        load_rules(path)
    message = str(raised.value)
    assert message == (f"{path}: rule 2 (web): tag 'team?': the key holds ?; Azure tag names cannot contain "
                       "any of < > % & \\ ? /")
    path.write_text('[[rule]]\nresource_group = "rg-a"\nset = { team = "' + "v" * 300 + '" }\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"rule 1: tag 'team': the value is 300 characters long"):
        load_rules(path)


# --- what may be pushed ----------------------------------------------------------------------------


def _insert_crafted(cache: Cache) -> None:
    """A crafted id already in a synced cache (from before ids were checked): a push must never send it."""
    with cache.write() as cur:
        cur.execute(
            "INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, ResourceName, "
            "SubAccountId, x_ResourceGroupName, BillingCurrency, EffectiveCost, BilledCost, ChargeCategory, "
            "source_id) SELECT ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ?, 'vm-innocent', SubAccountId, "
            "x_ResourceGroupName, BillingCurrency, 1, 1, 'Usage', source_id FROM charges LIMIT 1",
            [CRAFTED],
        )
        from finops_tui.allocation.effective import refresh_derived

        refresh_derived(cur, TagPolicy())


def test_a_crafted_id_is_never_sent(synced: Cache, tags_arm: FakeTagsArm) -> None:
    _insert_crafted(synced)
    apply_tags(synced, TagPolicy(), [CRAFTED, DB], "team", "payments")
    with synced.cursor() as cur:
        items = preview(cur)
    refused = {i.resource_id: i.refusal for i in items}
    assert refused[DB] is None
    crafted_refusal = refused[CRAFTED]
    assert crafted_refusal is not None and "'..' path segment" in crafted_refusal
    with pytest.raises(UserError, match=r"not sent: .*'\.\.' path segment"):
        push(synced, items, FakeCredential(), tags_arm.base_url, sleep=_no_sleep)
    assert tags_arm.requests == []  # refused before anything was sent
    report = push(synced, [i for i in items if i.refusal is None], FakeCredential(), tags_arm.base_url,
                  sleep=_no_sleep)
    assert [r.status for r in report.results] == ["pushed"]
    assert [r.path.lower() for r in tags_arm.requests] == [DB + CRAFTED_SUFFIX]


def test_the_cli_push_skips_a_crafted_id_and_export_leaves_it_out(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, synced_path: Path, tags_arm: FakeTagsArm
) -> None:
    import finops_tui.azure as azure

    monkeypatch.setattr(azure, "make_credential", lambda *a, **k: FakeCredential())
    with open_cache(synced_path) as cache:
        _insert_crafted(cache)
        apply_tags(cache, TagPolicy(), [CRAFTED, DB], "team", "payments")
    assert main(["tags", "--cache", str(synced_path), "export", "--format", "az"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"az tag update --resource-id {DB.replace('resourcegroups', 'resourceGroups')} " \
        "--operation Merge --tags Team=payments\n"
    assert captured.err.startswith("finops-tui: not exported: ") and "'..' path segment" in captured.err
    code = main(["tags", "--cache", str(synced_path), "push", "--arm-endpoint", tags_arm.base_url, "--apply", "--yes"])
    out = capsys.readouterr().out
    assert code == 0 and "pushed 1, failed 0" in out
    assert "1 resource(s) not sent" in out and "'..' path segment" in out
    assert [r.path.lower() for r in tags_arm.requests] == [DB + CRAFTED_SUFFIX]


def test_a_push_url_is_built_from_the_parsed_id() -> None:
    parsed = parse_resource_id(vm("api"))
    assert tags_url("https://management.azure.com/", parsed) == (
        f"https://management.azure.com/subscriptions/{SUB}/resourceGroups/rg-pay/providers/microsoft.compute/"
        "virtualmachines/api/providers/Microsoft.Resources/tags/default?api-version=2021-04-01")


def test_tags_past_the_limits_in_an_old_journal_are_never_sent(synced: Cache, tags_arm: FakeTagsArm) -> None:
    apply_tags(synced, TagPolicy(), [DB], "team", "payments")
    with synced.cursor() as cur:  # written before the limits were enforced
        cur.execute("UPDATE tag_edits SET new_value = ?", ["x" * 300])
        items = preview(cur)
    assert items[0].refusal is not None and "at most 256" in items[0].refusal
    with pytest.raises(UserError, match="not sent"):
        push(synced, items, FakeCredential(), tags_arm.base_url, sleep=_no_sleep)
    assert tags_arm.requests == []


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("demo", "this is the demo estate"),
        ("focus-file", "came from imported files, not from a sync of Azure"),
        ("azure-export", "came from imported files, not from a sync of Azure"),
    ],
)
def test_push_is_refused_unless_the_resources_came_from_a_sync(
    kind: str, reason: str, tmp_path: Path, tags_arm: FakeTagsArm, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import finops_tui.azure as azure

    credential = FakeCredential()
    monkeypatch.setattr(azure, "make_credential", lambda *a, **k: credential)
    path = _cache(tmp_path / "cache.duckdb", kind, _charges())
    with open_cache(path) as cache:
        apply_tags(cache, TagPolicy(), [API, DB], "team", "payments")
        with cache.cursor() as cur:
            items = preview(cur)
        assert all(i.refusal is not None and reason in i.refusal for i in items)
        with pytest.raises(UserError, match=reason):
            push(cache, items, credential, tags_arm.base_url, sleep=_no_sleep)
    for extra in ([], ["--apply", "--yes"]):
        code = main(["tags", "--cache", str(path), "push", "--arm-endpoint", tags_arm.base_url, *extra])
        captured = capsys.readouterr()
        assert code == 1 and captured.out == ""
        [line] = captured.err.strip().splitlines()
        assert line.startswith("finops-tui: nothing can be pushed: ") and reason in line
    assert tags_arm.requests == [] and credential.scopes == []
    # The edits stay in the journal, and `tags export` still writes them for the user's own pipeline.
    assert main(["tags", "--cache", str(path), "export", "--format", "csv"]) == 0
    assert capsys.readouterr().out.count("payments") == 2


def test_a_mixed_cache_pushes_only_the_synced_resources(tmp_path: Path, tags_arm: FakeTagsArm) -> None:
    path = _cache(tmp_path / "cache.duckdb", "sync-query", _charges())
    imported = vm("imported", rg="rg-files")
    with open_cache(path) as cache:
        with cache.write() as cur:
            cur.execute(
                "INSERT INTO sources (kind, scope, metric, imported_at) VALUES ('focus-file', 'x', 'focus', now())")
            cur.execute(
                "INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, ResourceName, "
                "BillingCurrency, EffectiveCost, BilledCost, ChargeCategory, source_id) "
                "SELECT ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ?, 'imported', 'USD', 1, 1, 'Usage', "
                "(SELECT max(source_id) FROM sources) FROM charges LIMIT 1",
                [imported],
            )
            from finops_tui.allocation.effective import refresh_derived

            refresh_derived(cur, TagPolicy())
        apply_tags(cache, TagPolicy(), [API, imported], "team", "payments")
        with cache.cursor() as cur:
            items = {i.resource_id: i for i in preview(cur)}
        assert items[API].refusal is None
        refusal = items[imported].refusal
        assert refusal is not None and "imported files" in refusal
        report = push(cache, [items[API]], FakeCredential(), tags_arm.base_url, sleep=_no_sleep)
    assert [r.status for r in report.results] == ["pushed"] and len(tags_arm.requests) == 1


def test_a_resource_from_a_real_sync_is_pushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               tags_arm: FakeTagsArm) -> None:
    """End to end: sync from the fake Cost Management, tag, push to the fake Tags API."""
    from tests import fake_arm

    clock.pin(fake_arm.TODAY)
    with fake_arm.FakeArm(today=fake_arm.TODAY) as arm, open_cache(tmp_path / "c.duckdb") as cache:
        estate = arm.add_scope(fake_arm.SUB, 2, cost_details=None)
        run = fake_arm.sync(arm, cache, months=1, extras=False)
        assert not run.result.failures
        target = estate.resources[0].resource_id.lower()
        apply_tags(cache, TagPolicy(), [target], "owner", "me")
        with cache.cursor() as cur:
            items = preview(cur)
        assert [i.refusal for i in items] == [None]
        report = push(cache, items, FakeCredential(), tags_arm.base_url, sleep=_no_sleep)
    assert [r.status for r in report.results] == ["pushed"]
    assert [r.path.lower() for r in tags_arm.requests] == [target + CRAFTED_SUFFIX]


def test_push_refusals_print_without_terminal_escapes(synced: Cache) -> None:
    evil = vm("x\x1b]52;c;agk=\x07")
    with synced.write() as cur:
        # A row whose id changes loses its resource key, as a window write would give it a new one.
        cur.execute("UPDATE charges SET ResourceId = ?, x_ResourceKey = NULL WHERE ResourceId = ?", [evil, DB])
        from finops_tui.allocation.effective import refresh_derived

        refresh_derived(cur, TagPolicy())
    apply_tags(synced, TagPolicy(), [evil], "team", "x")
    with synced.cursor() as cur:
        [item] = preview(cur)
    assert item.refusal is not None and "\x1b" not in item.refusal and "\\x1b" in item.refusal


# --- the explorer ------------------------------------------------------------------------------------


@ui_fixtures.async_test
async def test_the_tag_dialog_checks_azures_limits_as_you_type(tmp_path: Path) -> None:
    from textual.widgets import Button, Input, Label

    from finops_tui.ui.dialogs.tag_dialog import RuleDialog, TagChoice, TagDialog

    path = tmp_path / "usd.duckdb"
    shutil.copyfile(ui_fixtures.usd_cache_path(), path)
    chosen: list[TagChoice | None] = []
    with ui_fixtures.opened(path) as cache:
        app = ui_fixtures.make_app(cache)
        async with app.run_test(size=(100, 30)) as pilot:
            await ui_fixtures.settle(pilot)
            await app.push_screen(TagDialog(key="team", resources=2, cost="$1.00", values=["payments"]),
                                  chosen.append)
            await pilot.pause()
            dialog = app.screen
            error, apply = dialog.query_one("#error", Label), dialog.query_one("#apply", Button)
            assert apply.disabled and str(error.render()) == ""  # nothing typed yet: not ready, no complaint
            await pilot.press(*"pay")
            assert not apply.disabled
            dialog.query_one("#key", Input).value = "team/owner"
            await pilot.pause()
            assert apply.disabled and "Azure would refuse this tag: the key holds /" in str(error.render())
            await pilot.press("enter")  # refused: the dialog stays
            assert app.screen is dialog and chosen == []
            dialog.query_one("#key", Input).value = "team"
            dialog.query_one("#value", Input).value = "v" * 257
            await pilot.pause()
            assert apply.disabled and "at most 256" in str(error.render())
            dialog.query_one("#value", Input).value = "payments"
            await pilot.pause()
            assert not apply.disabled and str(error.render()) == ""
            await pilot.press("enter")
            await pilot.pause()
            assert chosen == [TagChoice("team", "payments")]

            await app.push_screen(RuleDialog(pattern="rg-*", key="team", value="x", values=[], examples=[]))
            await pilot.pause()
            rule_dialog = app.screen
            rule_dialog.query_one("#key", Input).value = "azure-owner"
            await pilot.pause()
            assert rule_dialog.query_one("#save", Button).disabled
            assert "reserved" in str(rule_dialog.query_one("#error", Label).render())


@ui_fixtures.async_test
async def test_p_on_imported_files_says_why_nothing_is_pushed(tmp_path: Path, tags_arm: FakeTagsArm) -> None:
    from finops_tui.config import Config
    from finops_tui.ui.dialogs.push_preview import PushPreviewDialog

    path = tmp_path / "old.duckdb"
    shutil.copyfile(ui_fixtures.old_data_cache_path(), path)  # a cache of imported files
    with ui_fixtures.opened(path) as cache:
        with cache.cursor() as cur:
            [(resource,)] = cur.execute("SELECT min(ResourceId) FROM resources").fetchall()
        apply_tags(cache, TagPolicy(), [resource], "owner", "me")
        app = ui_fixtures.make_app(cache, config=Config(arm_endpoint=tags_arm.base_url))
        async with app.run_test(size=(120, 40)) as pilot:
            await ui_fixtures.settle(pilot)
            await pilot.press("4")
            await ui_fixtures.settle(pilot)
            await pilot.press("P")
            await ui_fixtures.settle(pilot)
            assert not isinstance(app.screen, PushPreviewDialog)
            [note] = [n.message for n in app._notifications if n.title == "Push"]
            assert note.startswith("Nothing can be pushed: ") and "came from imported files" in note
    assert tags_arm.requests == []
