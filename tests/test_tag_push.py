"""Tag push: the real ARMPipelineClient against a fake ARM on 127.0.0.1; preview, confirmation, failures, 429."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.journal import apply_tags, list_edits, undo
from finops_tui.allocation.push import PushItem, preview, push
from finops_tui.cli import main
from finops_tui.errors import AzureError, UserError
from finops_tui.store import Cache, open_cache
from tests.allocation_data import END, TODAY, Charge, fresh_copy, load, rid
from tests.fake_tags_arm import FakeCredential, FakeTagsArm

DAY = END - dt.timedelta(days=1)
# Subscriptions are GUIDs: a push sends only full ARM resource ids.
S1 = "11111111-1111-4111-8111-111111111111"
S2 = "22222222-2222-4222-8222-222222222222"
API = rid(S1, "rg-Pay", "api")
DB = rid(S1, "rg-Pay", "db")
GONE = rid(S1, "rg-Pay", "gone")
LOCKED = rid(S2, "rg-locked", "vault")
ARM_API = f"/subscriptions/{S1}/resourceGroups/rg-Pay/providers/microsoft.compute/virtualmachines/API"


pytestmark = pytest.mark.today(TODAY)


@pytest.fixture
def tags_arm() -> Iterator[FakeTagsArm]:
    with FakeTagsArm() as fake:
        yield fake


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "cache.duckdb"
    load(path, [
        Charge(DAY, API, Decimal("5.00"), rg="rg-Pay", name="API", tags={"Team": "old", "env": "prod"}),
        Charge(DAY, DB, Decimal("3.00"), rg="rg-Pay", name="db"),
        Charge(DAY, GONE, Decimal("2.00"), rg="rg-Pay", name="gone"),
        Charge(DAY, LOCKED, Decimal("1.00"), rg="rg-locked", name="vault", tags={"Team": "sec"}),
    ]).close()
    with open_cache(path) as cache, cache.write() as cur:
        cur.execute("UPDATE sources SET kind = 'sync-query'")  # only synced resources are pushed
    return path


@pytest.fixture
def cache_path(_template: Path, tmp_path: Path) -> Path:
    return fresh_copy(_template, tmp_path)


@pytest.fixture
def cache(cache_path: Path) -> Iterator[Cache]:
    with open_cache(cache_path) as opened:
        yield opened


def _statuses(cache: Cache) -> dict[tuple[str, str], tuple[str, str | None]]:
    with cache.cursor() as cur:
        return {(e.resource_id, e.tag_key): (e.status, e.push_error) for e in list_edits(cur)}


def test_preview_merges_the_latest_value_per_key_and_sends_nothing(cache: Cache, tags_arm: FakeTagsArm) -> None:
    apply_tags(cache, TagPolicy(), [API, DB], "team", "payments")
    apply_tags(cache, TagPolicy(), [DB], "team", "checkout")  # supersedes the first value for db
    apply_tags(cache, TagPolicy(), [DB], "env", "dev")
    apply_tags(cache, TagPolicy(), [API], "owner", "me", push=False)  # local only
    apply_tags(cache, TagPolicy(), [API], "costcenter", "cc-1")
    undo(cache, TagPolicy())  # the costcenter edit is undone: not sent
    with cache.cursor() as cur:
        items = preview(cur)
    assert [(i.arm_id, i.tags) for i in items] == [
        (ARM_API, {"Team": "payments"}),  # spelled as the resource already spells it in Azure
        (ARM_API.replace("API", "db"), {"env": "dev", "Team": "checkout"}),  # the estate's usual spelling
    ]
    assert len(items[1].edit_ids) == 3  # both team edits and the env edit settle with one merge
    assert tags_arm.requests == []


def test_push_sends_exact_merge_requests_and_records_results(cache: Cache, tags_arm: FakeTagsArm) -> None:
    apply_tags(cache, TagPolicy(), [API, DB], "team", "payments")
    credential = FakeCredential()
    report = push(cache, _preview(cache), credential, tags_arm.base_url, sleep=_no_sleep)
    assert [r.status for r in report.results] == ["pushed", "pushed"]
    first = tags_arm.requests[0]
    assert first.method == "PATCH"
    assert first.path == ARM_API + "/providers/Microsoft.Resources/tags/default"
    assert first.query == {"api-version": ["2021-04-01"]}
    assert first.body == {"operation": "Merge", "properties": {"tags": {"Team": "payments"}}}
    assert first.headers["Authorization"] == "Bearer fake-token"
    assert credential.scopes[0] == (f"{tags_arm.base_url}/.default",)
    assert len(tags_arm.requests) == 2
    assert tags_arm.tags[API] == {"Team": "payments"}
    assert set(_statuses(cache).values()) == {("pushed", None)}
    with cache.cursor() as cur:
        assert preview(cur) == []
        unstamped = cur.execute("SELECT count(*) FROM tag_edits WHERE pushed_at IS NULL").fetchone()
    assert unstamped == (0,)


def test_partial_failures_stay_pending_and_a_rerun_sends_only_them(cache: Cache, tags_arm: FakeTagsArm) -> None:
    apply_tags(cache, TagPolicy(), [API, GONE, LOCKED], "team", "payments")
    tags_arm.missing.add(GONE)
    tags_arm.forbidden.add(LOCKED)
    report = push(cache, _preview(cache), FakeCredential(), tags_arm.base_url, sleep=_no_sleep)
    assert [(r.item.resource_id, r.status, r.http_status) for r in report.results] == [
        (API, "pushed", 200), (GONE, "failed", 404), (LOCKED, "failed", 403)]
    statuses = _statuses(cache)
    assert statuses[(API, "team")] == ("pushed", None)
    status, error = statuses[(GONE, "team")]
    assert status == "failed" and error is not None and error.startswith("resource not found: deleted or moved?")
    status, error = statuses[(LOCKED, "team")]
    assert status == "failed" and error is not None and "no permission" in error and "AuthorizationFailed" in error
    with cache.cursor() as cur:
        again = preview(cur)
    assert [i.resource_id for i in again] == [GONE, LOCKED]
    assert again[0].last_error is not None and "404" in again[0].last_error
    # The permission is granted and the deleted resource is dropped from the journal by hand: re-run.
    tags_arm.forbidden.clear()
    sent_before = len(tags_arm.requests)
    push(cache, [i for i in again if i.resource_id == LOCKED], FakeCredential(), tags_arm.base_url,
         sleep=_no_sleep)
    assert [r.path.lower() for r in tags_arm.requests[sent_before:]] == [
        LOCKED + "/providers/microsoft.resources/tags/default"]
    assert _statuses(cache)[(LOCKED, "team")] == ("pushed", None)


def test_429_waits_for_retry_after_then_succeeds(cache: Cache, tags_arm: FakeTagsArm) -> None:
    apply_tags(cache, TagPolicy(), [API], "team", "payments")
    busy = (429, {"Retry-After": "7"}, {"error": {"code": "TooManyRequests", "message": "slow down"}})
    tags_arm.responses[API] = [busy, busy]
    slept: list[float] = []
    waits: list[float] = []
    report = push(cache, _preview(cache), FakeCredential(), tags_arm.base_url, sleep=slept.append,
                  on_wait=lambda item, seconds, reason: waits.append(seconds))
    assert slept == [7.0, 7.0] and waits == [7.0, 7.0]
    assert report.results[0].status == "pushed" and report.results[0].attempts == 3
    assert len(tags_arm.requests) == 3


def test_throttling_is_bounded(cache: Cache, tags_arm: FakeTagsArm) -> None:
    apply_tags(cache, TagPolicy(), [API, DB], "team", "payments")
    tags_arm.responses[API] = [(429, {"Retry-After": "3600"}, {"error": {"code": "TooManyRequests"}})]
    tags_arm.responses[DB] = [(429, {"Retry-After": "1"}, {})] * 10
    slept: list[float] = []
    report = push(cache, _preview(cache), FakeCredential(), tags_arm.base_url, sleep=slept.append, max_attempts=3)
    assert [r.status for r in report.results] == ["failed", "failed"]
    assert slept == [1.0, 1.0]  # an hour-long Retry-After is not waited out
    assert report.results[0].error == "throttled by Azure (429); retry in 3600 s"
    assert _statuses(cache)[(DB, "team")][0] == "failed"


def test_a_cancelled_push_stops_between_resources(cache: Cache, tags_arm: FakeTagsArm) -> None:
    apply_tags(cache, TagPolicy(), [API, DB, GONE], "team", "payments")
    tags_arm.responses[DB] = [(429, {"Retry-After": "5"}, {})]
    stop = threading.Event()
    report = push(cache, _preview(cache), FakeCredential(), tags_arm.base_url, sleep=lambda s: stop.set(),
                  cancelled=stop.is_set)
    assert [r.item.resource_id for r in report.results] == [API]
    assert len(tags_arm.requests) == 2  # api, then db answered 429 and the wait was cut short
    statuses = _statuses(cache)
    assert statuses[(API, "team")][0] == "pushed"
    assert statuses[(DB, "team")] == ("pending", None) and statuses[(GONE, "team")] == ("pending", None)


def test_auth_failure_stops_with_one_line(cache: Cache, tags_arm: FakeTagsArm) -> None:
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import ClientAuthenticationError

    class NoLogin(FakeCredential):
        def get_token(self, *scopes: str, **_: Any) -> AccessToken:
            raise ClientAuthenticationError("Please run 'az login' to set up an account")

    apply_tags(cache, TagPolicy(), [API], "team", "payments")
    with pytest.raises(AzureError, match="az login"):
        push(cache, _preview(cache), NoLogin(), tags_arm.base_url, sleep=_no_sleep)
    assert tags_arm.requests == []
    assert _statuses(cache)[(API, "team")] == ("pending", None)


def test_plain_http_only_for_loopback(cache: Cache) -> None:
    apply_tags(cache, TagPolicy(), [API], "team", "payments")
    with pytest.raises(UserError, match="plain http"):
        push(cache, _preview(cache), FakeCredential(), "http://management.example.com", sleep=_no_sleep)


def _preview(cache: Cache) -> list[PushItem]:
    with cache.cursor() as cur:
        return preview(cur)


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep({seconds})")


# --- `finops-tui tags push` ---------------------------------------------------------------------


class _Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def cli_credential(monkeypatch: pytest.MonkeyPatch) -> FakeCredential:
    import finops_tui.azure as azure

    credential = FakeCredential()
    monkeypatch.setattr(azure, "make_credential", lambda *a, **k: credential)
    return credential


def _push_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cache_path: Path,
              arm: FakeTagsArm, *args: str, stdin: str = "", tty: bool = False) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", _Stdin(stdin, tty))
    code = main(["tags", "--cache", str(cache_path), "push", "--arm-endpoint", arm.base_url, *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _tag(cache_path: Path, *ids: str) -> None:
    with open_cache(cache_path) as cache:
        apply_tags(cache, TagPolicy(), list(ids), "team", "payments")


def test_cli_preview_sends_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                   cache_path: Path, tags_arm: FakeTagsArm, cli_credential: FakeCredential) -> None:
    code, out = _push_cli(capsys, monkeypatch, cache_path, tags_arm)
    assert (code, out) == (0, "nothing to push: no pending tag edits\n")
    _tag(cache_path, API, DB)
    code, out = _push_cli(capsys, monkeypatch, cache_path, tags_arm)
    assert code == 0
    assert ARM_API in out and "Team=payments" in out
    assert "nothing sent; run with --apply" in out
    assert tags_arm.requests == [] and cli_credential.scopes == []


def test_cli_apply_without_a_terminal_or_yes_refuses(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, cache_path: Path,
                                                     tags_arm: FakeTagsArm, cli_credential: FakeCredential) -> None:
    _tag(cache_path, API)
    code, out = _push_cli(capsys, monkeypatch, cache_path, tags_arm, "--apply", stdin="y\n", tty=False)
    assert code == 1 and "stdin is not a terminal; add --yes" in out
    assert tags_arm.requests == []


def test_cli_apply_asks_and_a_no_sends_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                               cache_path: Path, tags_arm: FakeTagsArm,
                                               cli_credential: FakeCredential) -> None:
    _tag(cache_path, API, DB)
    code, out = _push_cli(capsys, monkeypatch, cache_path, tags_arm, "--apply", stdin="n\n", tty=True)
    assert code == 1 and "Send 2 tag merges to Azure? [y/N]" in out and "cancelled: nothing sent" in out
    assert tags_arm.requests == []
    code, out = _push_cli(capsys, monkeypatch, cache_path, tags_arm, "--apply", stdin="y\n", tty=True)
    assert code == 0 and "pushed 2, failed 0" in out
    assert len(tags_arm.requests) == 2


def test_cli_apply_yes_reports_failures_and_reruns_only_pending(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cache_path: Path, tags_arm: FakeTagsArm,
    cli_credential: FakeCredential,
) -> None:
    _tag(cache_path, API, GONE)
    tags_arm.missing.add(GONE)
    code, out = _push_cli(capsys, monkeypatch, cache_path, tags_arm, "--apply", "--yes")
    assert code == 3
    assert "pushed 1, failed 1" in out and "FAILED" in out and "resource not found" in out
    tags_arm.missing.clear()
    code, out = _push_cli(capsys, monkeypatch, cache_path, tags_arm, "--apply", "--yes")
    assert code == 0 and "pushed 1, failed 0" in out
    suffix = "/providers/microsoft.resources/tags/default"
    assert [r.path.lower().removesuffix(suffix) for r in tags_arm.requests] == [API, GONE, GONE]
    assert main(["tags", "--cache", str(cache_path), "list"]) == 0
    assert "failed" not in capsys.readouterr().out


def test_the_data_layer_imports_neither_azure_nor_textual() -> None:
    """Tagging, rules, the queue and the tree load fast: the Azure SDK only when a push really starts."""
    code = (
        "import sys\n"
        "import finops_tui.allocation.push, finops_tui.allocation.journal, finops_tui.allocation.queue\n"
        "import finops_tui.allocation.rules, finops_tui.commands.tags, finops_tui.report.tree\n"
        "import finops_tui.report.resource, finops_tui.report.tags, finops_tui.sync, finops_tui.commands.report\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('azure', 'textual')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
