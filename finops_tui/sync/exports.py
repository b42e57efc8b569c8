"""Cost Management exports in Azure Storage → cache: find runs by manifest.json, fetch new or changed ones, import each.

A run is one folder holding a `manifest.json` and the part files it lists, as Cost Management writes them
(`<prefix>/<export>/<yyyymmdd-yyyymmdd>/<runId>/`, or without the runId folder for exports that overwrite).
The listing alone tells which runs changed (their blobs' ETags), so a sync with nothing new downloads
nothing. A changed run's parts are downloaded (bounded parallel, each pinned to its listed ETag) into a
private spool folder, then imported through the importer inside one write transaction that also records
the run: its scope × period window is replaced atomically, and the newest run of a period wins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

import duckdb

from finops_tui import clock
from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.errors import AzureError, UserError
from finops_tui.store.cache import Cache
from finops_tui.sync.engine import SyncProgress, SyncResult, WindowFailure
from finops_tui.sync.spool import remove_stale_spools, spool_folder
from finops_tui.sync.windows import MonthWindow, Scope, record_done, record_failed
from finops_tui.textsafe import control_character

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

EXPORT_KIND = "sync-export"
MANIFEST_NAME = "manifest.json"
SOURCE_PREFIX = "export:"
DEFAULT_PARALLEL = 4
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_STORAGE_HOST = re.compile(r"^(?P<account>[^.]+)\.(?P<service>blob|dfs)\.(?P<suffix>.+)$", re.I)
_SIG = re.compile(r"(?i)([?&]?sig=)[^&\s]+")
_MB = 1024 * 1024
# A FinOps hub's `ingestion` container: `<dataset>/<yyyy>/<mm>/<scope-path>/<ingestion-id>__<file>.parquet` beside an
# empty manifest.json, the hub's trigger written once the folder is complete (finops-toolkit, hubs data processing).
_INGESTION_RUN = re.compile(
    r"(?:^|/)(?P<dataset>[^/]+)/(?P<year>(?:19|20|21)\d\d)/(?P<month>0[1-9]|1[0-2])/(?P<scope>[^/].*)/manifest\.json$")
HUB_COST_DATASET = "Costs"  # the hub's other datasets (Prices, Recommendations, Transactions, ...) hold no cost rows
_INGESTION_ID_SEPARATOR = "__"


class ImportedWindow(Protocol):
    """What the importer reports of one window it loaded."""

    rows: int
    source_id: int | None


class RunImporter(Protocol):
    """The importer (finops_tui.ingest.importer.import_in_transaction), passed in by the commands and the explorer:
    sync and ingest are sibling layers that never import each other."""

    def __call__(self, cur: duckdb.DuckDBPyConnection, policy: TagPolicy, paths: Sequence[Path], *,
                 derive: bool = ...) -> Sequence[ImportedWindow]: ...


class SyncCancelled(Exception):
    """The cancel event was set; raised between parts."""


@dataclass(frozen=True)
class ExportLocation:
    """A container path holding exports. The SAS (if any) is kept apart: never printed, logged or stored."""

    account: str
    container: str
    prefix: str  # without leading or trailing slash; "" for the whole container
    account_url: str  # https://ACCOUNT.blob.SUFFIX, or http://127.0.0.1:PORT/ACCOUNT (an emulator on loopback)
    sas: str | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """How the cache and `--list-sources` name this source."""
        return f"{SOURCE_PREFIX}{self.account}/{self.container}/{self.prefix}".rstrip("/")

    @property
    def shown(self) -> str:
        """The URL for people: without the SAS."""
        return f"{self.account_url}/{self.container}/{self.prefix}".rstrip("/")

    @property
    def list_prefix(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""


def parse_export_url(text: str, *, origin: str = "--export") -> ExportLocation:
    """Validate a blob or ADLS URL; one line naming `origin` (the option or config key) when it is not one.

    Accepted: `https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX[?SAS]`, the same with `.dfs.`,
    `abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX`, and plain http only on loopback (an emulator,
    path-style: `http://127.0.0.1:PORT/ACCOUNT/CONTAINER/PREFIX`).
    """
    from finops_tui.azure import is_loopback_host

    raw = text.strip()
    parts = urlsplit(raw)
    shown = _without_sas(raw)
    expected = (
        "expected https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX] (optionally with a SAS token) or "
        "abfss://CONTAINER@ACCOUNT.dfs.core.windows.net[/PREFIX]"
    )
    if control_character(raw, bidi=True) is not None:
        raise UserError(f"{origin} {shown!r}: holds control characters; {expected}")
    if parts.fragment:
        raise UserError(f"{origin} {shown}: a storage URL has no #fragment; {expected}")
    host = parts.hostname or ""
    path = [segment for segment in parts.path.split("/") if segment]
    if parts.scheme == "abfss":
        container, _, account_host = parts.netloc.partition("@")
        match = _STORAGE_HOST.match(account_host)
        if not container or match is None:
            raise UserError(f"{origin} {shown}: {expected}")
        account, suffix = match["account"].lower(), match["suffix"]
        account_url = f"https://{account}.blob.{suffix}"
    elif parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host)):
        match = _STORAGE_HOST.match(host)
        if match is not None and parts.scheme == "https":
            account, suffix = match["account"].lower(), match["suffix"]
            # ADLS (dfs) paths are the same blobs: the blob endpoint serves them.
            account_url = f"https://{account}.blob.{suffix}" + (f":{parts.port}" if parts.port else "")
        elif is_loopback_host(host) and path:
            account = path.pop(0)
            account_url = f"{parts.scheme}://{parts.netloc}/{account}"
        else:
            raise UserError(f"{origin} {shown}: not a storage account URL; {expected}")
        if not path:
            raise UserError(f"{origin} {shown}: the URL names no container; {expected}")
        container = path.pop(0)
    elif parts.scheme == "http":
        raise UserError(f"{origin} {shown}: plain http is accepted only for loopback addresses (an emulator); "
                        "use https")
    else:
        raise UserError(f"{origin} {shown}: {expected}")
    if parts.scheme == "abfss":
        pass  # the container came from the netloc; the whole path is the prefix
    if not _ACCOUNT.match(account):
        raise UserError(f"{origin} {shown}: {account!r} is not a storage account name (3-24 lowercase letters, digits)")
    if not _CONTAINER.match(container):
        raise UserError(
            f"{origin} {shown}: {container!r} is not a container name (3-63 lowercase letters, digits and hyphens)"
        )
    if any(segment in (".", "..") for segment in path):
        raise UserError(f"{origin} {shown}: the path holds `.` or `..` segments; name the export folder itself")
    sas = None
    if parts.query:
        if parts.scheme == "abfss" or "sig" not in parse_qs(parts.query):
            raise UserError(f"{origin} {shown}: the query string is not a SAS token (no sig=); {expected}")
        sas = parts.query
    return ExportLocation(account, container, "/".join(path), account_url, sas)


def _without_sas(text: str) -> str:
    """Any SAS signature cut out of a text (URLs and server messages), for messages and logs."""
    return _SIG.sub(r"\1<redacted>", text)


@dataclass
class ExportOptions:
    """What to fetch and how; everything but `urls` has a default."""

    urls: list[str]
    importer: RunImporter | None = None  # required unless dry_run
    credential_mode: str = "auto"
    parallel: int = DEFAULT_PARALLEL  # part downloads at a time
    dry_run: bool = False
    work_dir: Path | None = None  # spool parent; default: the system temp dir
    credential: Any = None  # an azure-identity TokenCredential, injected by tests or the explorer
    connection_string: str | None = None  # default: $AZURE_STORAGE_CONNECTION_STRING
    origin: str = "--export"  # how messages name where the URLs came from
    retries: int = 3


@dataclass
class ExportSyncResult(SyncResult):
    """A sync's result plus what the export path moved."""

    bytes_downloaded: int = 0
    blobs_downloaded: int = 0
    planned: list[str] = field(default_factory=list)  # --dry-run: one line per run that would be fetched


@dataclass(frozen=True)
class _Blob:
    name: str
    etag: str
    size: int
    last_modified: dt.datetime | None


@dataclass
class _Run:
    """A run folder as listed; `manifest` is filled once its manifest.json is downloaded."""

    location: ExportLocation
    manifest_blob: _Blob
    folder_blobs: list[_Blob]
    manifest: dict[str, Any] | None = None
    parts: list[tuple[_Blob, int | None]] = field(default_factory=list)  # (blob, manifest byteCount)
    ingestion: re.Match[str] | None = None  # set when the folder is a FinOps hub ingestion folder

    @property
    def folder(self) -> str:
        return str(PurePosixPath(self.manifest_blob.name).parent)

    @property
    def signature(self) -> str:
        pairs = sorted((b.name, b.etag) for b in self.folder_blobs)
        return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()

    @property
    def shown(self) -> str:
        return f"{self.location.account_url}/{self.location.container}/{self.folder}"

    def info(self, key: str) -> Any:
        if self.manifest is None:
            return None
        section = self.manifest.get("runInfo") if key in ("runId", "submittedTime", "startDate", "endDate") \
            else self.manifest.get("exportConfig")
        return section.get(key) if isinstance(section, dict) else None

    @property
    def submitted(self) -> dt.datetime | None:
        return _timestamp(self.info("submittedTime")) or self.manifest_blob.last_modified

    @property
    def period(self) -> tuple[dt.date | None, dt.date | None]:
        start = _timestamp(self.info("startDate"))
        last = _timestamp(self.info("endDate"))
        return (start.date() if start else None, last.date() + dt.timedelta(days=1) if last else None)

    @property
    def group(self) -> tuple[str, str, dt.date | None, dt.date | None]:
        """Runs of one export dataset and period: only the newest is kept."""
        resource = str(self.info("resourceId") or self.folder).lower()
        return (resource, str(self.info("type") or ""), *self.period)


class _RunRefused(Exception):
    """A run that cannot be imported now (incomplete, changed while downloading, corrupt): retried next sync."""


def _timestamp(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return clock.as_utc(parsed).replace(tzinfo=None)


class _ExportSync:
    """State of one sync_exports call."""

    def __init__(
        self, cache: Cache, options: ExportOptions, policy: TagPolicy,
        progress: Callable[[SyncProgress], None], cancel: threading.Event,
    ) -> None:
        self.cache = cache
        self.options = options
        self.policy = policy
        self.progress = progress
        self.cancel = cancel
        self.result = ExportSyncResult()
        self.runs_total = 0
        self.wrote_any = False

    def emit(self, location: ExportLocation, state: str, *, period: dt.date | None = None, rows: int = 0,
             dataset: str | None = None) -> None:
        self.progress(SyncProgress(
            scope=location.shown, metric=dataset, window=period, rows=rows, state=state,
            windows_done=self.result.windows_done + len(self.result.failures), windows_total=self.runs_total,
            api_path="export",
        ))

    def run(self) -> ExportSyncResult:
        started = time.perf_counter()
        locations = list({loc.key: loc for loc in (
            parse_export_url(url, origin=self.options.origin) for url in self.options.urls)}.values())
        if not locations:
            raise UserError("no export to sync: pass --export URL or set [sync] exports in config.toml")
        if not self.options.dry_run:
            if self.options.importer is None:
                raise AssertionError("ExportOptions.importer is required to import runs")
            remove_stale_spools(self.options.work_dir)
        try:
            for location in locations:
                if self.cancel.is_set():
                    raise SyncCancelled()
                self._sync_location(location)
        except SyncCancelled:
            self.result.cancelled = True
        finally:
            if self.wrote_any:
                with self.cache.write() as cur:
                    refresh_derived(cur, self.policy)
            self.result.elapsed_seconds = time.perf_counter() - started
        return self.result

    # one container path ------------------------------------------------------------------------------------
    def _sync_location(self, location: ExportLocation) -> None:
        self.emit(location, "listing export runs")
        container = container_client(location, self.options)
        try:
            blobs = self._list(container, location)
        except Exception as exc:
            raise _storage_error(location, exc) from None
        runs = _runs(location, blobs)
        known = self._known_runs(location)
        changed = [run for run in runs if known.get(run.manifest_blob.name) != run.signature]
        self.result.windows_skipped += len(runs) - len(changed)
        if self.options.dry_run:
            for run in changed:
                size = sum(b.size for b in run.folder_blobs)
                self.result.planned.append(
                    f"{run.shown}: {len(run.folder_blobs) - 1} part(s), {size / _MB:,.1f} MB")
            return
        if not changed:
            return
        self.runs_total += len(changed)
        self._read_manifests(container, changed)
        for run in self._newest_first(location, changed):
            if self.cancel.is_set():
                raise SyncCancelled()
            self._sync_run(container, run)

    def _list(self, container: ContainerClient, location: ExportLocation) -> list[_Blob]:
        self.result.api_calls += 1
        return [
            _Blob(b.name, str(b.etag), int(b.size or 0), clock.as_utc(b.last_modified).replace(tzinfo=None)
                  if b.last_modified else None)
            for b in container.list_blobs(name_starts_with=location.list_prefix or None)
        ]

    def _known_runs(self, location: ExportLocation) -> dict[str, str]:
        """Runs synced before (done or superseded) by manifest path → signature; failed runs are retried."""
        with self.cache.cursor() as cur:
            rows = cur.execute(
                "SELECT run_path, signature FROM storage_runs "
                "WHERE source_key = ? AND status IN ('done', 'superseded')",
                [location.key],
            ).fetchall()
        return {str(path): str(signature) for path, signature in rows}

    def _read_manifests(self, container: ContainerClient, runs: list[_Run]) -> None:
        # A hub ingestion folder's manifest.json is an empty trigger: the listing says all there is to know.
        for run in runs:
            if run.ingestion is not None:
                run.manifest = _ingestion_manifest(run, run.ingestion)
        runs = [run for run in runs if run.ingestion is None]

        def fetch(run: _Run) -> None:
            try:
                data = container.download_blob(
                    run.manifest_blob.name, etag=run.manifest_blob.etag, match_condition=_if_not_modified()
                ).readall()
                document = json.loads(data.decode("utf-8-sig"))
            except (ValueError, UnicodeDecodeError):
                run.manifest = {"_error": "manifest.json is not JSON"}
                return
            except Exception as exc:
                run.manifest = {"_error": _describe(exc)}
                return
            run.manifest = document if isinstance(document, dict) else {"_error": "manifest.json is not an object"}

        with ThreadPoolExecutor(max_workers=max(1, self.options.parallel)) as pool:
            list(pool.map(fetch, runs))
        self.result.api_calls += len(runs)
        self.result.blobs_downloaded += len(runs)
        self.result.bytes_downloaded += sum(r.manifest_blob.size for r in runs)

    def _newest_first(self, location: ExportLocation, runs: list[_Run]) -> Iterator[_Run]:
        """Newest period first; of several runs of one period only the newest is imported, and only when
        no newer run of it is in the cache already (the others are recorded as superseded)."""
        newest: dict[tuple[Any, ...], _Run] = {}
        for run in runs:
            current = newest.get(run.group)
            if current is None or (run.submitted or dt.datetime.min) > (current.submitted or dt.datetime.min):
                newest[run.group] = run
        for run in runs:
            if newest[run.group] is not run:
                self._record(location, run, "superseded", None)
                self.runs_total -= 1
                self.result.windows_skipped += 1
        ordered = sorted(newest.values(), key=lambda r: (r.period[0] or dt.date.min), reverse=True)
        for run in ordered:
            if self._newer_in_cache(location, run):
                self._record(location, run, "superseded", None)
                self.runs_total -= 1
                self.result.windows_skipped += 1
                continue
            yield run

    def _newer_in_cache(self, location: ExportLocation, run: _Run) -> bool:
        start, end = run.period
        submitted = run.submitted
        if submitted is None or start is None:
            return False
        resource, dataset = run.group[0], run.group[1]
        with self.cache.cursor() as cur:
            row = cur.execute(
                """
                SELECT count(*) FROM storage_runs
                WHERE source_key = ? AND status = 'done' AND run_path <> ? AND lower(coalesce(scope, '')) = ?
                  AND coalesce(dataset, '') = ? AND period_start = ? AND period_end IS NOT DISTINCT FROM ?
                  AND submitted_at > ?
                """,
                [location.key, run.manifest_blob.name, _scope_of(resource), dataset, start, end, submitted],
            ).fetchone()
        return bool(row and row[0])

    # one run ----------------------------------------------------------------------------------------------
    def _sync_run(self, container: ContainerClient, run: _Run) -> None:
        location = run.location
        start = run.period[0]
        dataset = str(run.info("type") or "") or None
        self.emit(location, f"{run.folder}: checking", period=start, dataset=dataset)
        try:
            self._plan_parts(run)
            with spool_folder(self.options.work_dir) as spool:
                folder = spool / (re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(run.folder).name)[:80] or "run")
                folder.mkdir()
                self._download(container, run, folder)
                self.emit(location, "writing", period=start, dataset=dataset)
                self._import(run, folder, spool)
        except SyncCancelled:
            self.emit(location, "cancelled", period=start, dataset=dataset)
            raise
        except (_RunRefused, UserError) as exc:
            error = _without_sas(str(exc))
            self._record(location, run, "failed", error)
            self.result.failures.append(WindowFailure(run.shown, dataset or "export", start or dt.date.min, error))
            self.emit(location, f"failed: {error}", period=start, dataset=dataset)

    def _plan_parts(self, run: _Run) -> None:
        manifest = run.manifest or {}
        if "_error" in manifest:
            raise _RunRefused(f"{manifest['_error']}; retried next sync")
        blobs = manifest.get("blobs")
        if not isinstance(blobs, list) or not blobs:
            raise _RunRefused('manifest.json has no "blobs" list; not a Cost Management export run')
        by_name = {b.name: b for b in run.folder_blobs}
        by_base = {PurePosixPath(b.name).name: b for b in run.folder_blobs}
        run.parts = []
        for index, entry in enumerate(blobs):
            name = entry.get("blobName") if isinstance(entry, dict) else None
            if not isinstance(name, str) or PurePosixPath(name).name in ("", ".", "..", MANIFEST_NAME):
                raise _RunRefused(f"manifest.json blobs[{index}].blobName is not a part file's name")
            blob = by_name.get(name.lstrip("/")) or by_base.get(PurePosixPath(name).name)
            if blob is None:
                raise _RunRefused(
                    f"part {PurePosixPath(name).name} listed in manifest.json is not in storage (yet): the run is "
                    "incomplete; retried next sync")
            expected = entry.get("byteCount")
            expected_bytes = int(expected) if isinstance(expected, int | float) and not isinstance(expected, bool) \
                else None
            if expected_bytes is not None and expected_bytes != blob.size:
                raise _RunRefused(
                    f"part {PurePosixPath(blob.name).name} is {blob.size:,} bytes, manifest.json says "
                    f"{expected_bytes:,}: the run is incomplete or still being written; retried next sync")
            run.parts.append((blob, expected_bytes))
        names = [PurePosixPath(b.name).name for b, _ in run.parts]
        if len(set(names)) != len(names):
            raise _RunRefused("manifest.json lists two parts of the same name; not a Cost Management export run")

    def _download(self, container: ContainerClient, run: _Run, folder: Path) -> None:
        """Every part (and the manifest), at most `parallel` at a time; a part is never started after a cancel."""
        (folder / MANIFEST_NAME).write_text(json.dumps(run.manifest), encoding="utf-8")
        total = sum(b.size for b, _ in run.parts)
        done_bytes = 0
        done_parts = 0
        lock = threading.Lock()
        start = run.period[0]

        def fetch(blob: _Blob) -> int:
            if self.cancel.is_set():
                raise SyncCancelled()
            target = folder / PurePosixPath(blob.name).name
            try:
                stream = container.download_blob(blob.name, etag=blob.etag, match_condition=_if_not_modified(),
                                                  max_concurrency=1)
                with open(target, "wb") as handle:
                    size = stream.readinto(handle)
            except Exception as exc:
                if _is_modified(exc):
                    raise _RunRefused(
                        f"part {PurePosixPath(blob.name).name} changed while downloading (the export is being "
                        "rewritten); retried next sync") from None
                raise _RunRefused(f"part {PurePosixPath(blob.name).name}: {_describe(exc)}; retried next sync") \
                    from None
            if size != blob.size:
                raise _RunRefused(f"part {PurePosixPath(blob.name).name} arrived with {size:,} of {blob.size:,} "
                                  "bytes; retried next sync")
            return size

        with ThreadPoolExecutor(max_workers=max(1, self.options.parallel)) as pool:
            futures = [pool.submit(fetch, blob) for blob, _ in run.parts]
            try:
                for future in _as_done(futures):
                    size = future.result()
                    with lock:
                        done_bytes += size
                        done_parts += 1
                    self.result.bytes_downloaded += size
                    self.result.blobs_downloaded += 1
                    self.result.api_calls += 1
                    self.emit(run.location, f"downloaded {done_parts}/{len(run.parts)} parts, "
                              f"{done_bytes / _MB:,.1f} of {total / _MB:,.1f} MB", period=start,
                              dataset=str(run.info("type") or "") or None)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _import(self, run: _Run, folder: Path, spool: Path) -> None:
        location = run.location
        try:
            with self.cache.write() as cur:
                assert self.options.importer is not None
                # Resources and effective tags are rebuilt once after the last run (run()), not after each:
                # per run that rebuild was a quarter of a 13-run sync.
                results = self.options.importer(cur, self.policy, [folder], derive=False)
                rows = sum(r.rows for r in results)
                source_ids = [r.source_id for r in results if r.source_id is not None]
                if source_ids:
                    cur.execute(
                        f"UPDATE sources SET kind = ?, path = ? "
                        f"WHERE source_id IN ({', '.join('?' * len(source_ids))})",
                        [EXPORT_KIND, run.shown, *source_ids],
                    )
                self._record_in(cur, location, run, "done", None, rows=rows,
                                source_id=source_ids[0] if source_ids else None)
                self._supersede_older(cur, location, run)
                start, end = run.period
                if start and end:
                    window = MonthWindow(Scope(location.key, "export"), _metric_of(run), start, end)
                    record_done(cur, window, rows, "export", 0.0)
        except UserError as exc:
            # The importer names the spool folder: the run's URL says where the data really is.
            raise UserError(str(exc).replace(str(folder), run.shown).replace(str(spool), run.shown)) from None
        except duckdb.Error as exc:
            raise UserError(f"{run.shown}: cannot import ({str(exc).splitlines()[0]})") from None
        self.wrote_any = True
        self.result.windows_done += 1
        self.result.rows += rows
        self.emit(location, "written", period=run.period[0], rows=rows, dataset=str(run.info("type") or "") or None)

    # bookkeeping ------------------------------------------------------------------------------------------
    def _record(self, location: ExportLocation, run: _Run, status: str, error: str | None) -> None:
        with self.cache.write() as cur:
            self._record_in(cur, location, run, status, error)
            start, end = run.period
            if status == "failed" and start and end:
                window = MonthWindow(Scope(location.key, "export"), _metric_of(run), start, end)
                record_failed(cur, window, error or "", "export", 0.0)

    def _record_in(self, cur: duckdb.DuckDBPyConnection, location: ExportLocation, run: _Run, status: str,
                   error: str | None, *, rows: int | None = None, source_id: int | None = None) -> None:
        start, end = run.period
        run_id = run.info("runId")
        cur.execute(
            """
            INSERT INTO storage_runs (source_key, run_path, run_id, manifest_etag, signature, parts, bytes, rows, scope,
                                      dataset, period_start, period_end, submitted_at, status, last_error,
                                      synced_at, source_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (source_key, run_path) DO UPDATE SET
                run_id = excluded.run_id, manifest_etag = excluded.manifest_etag, signature = excluded.signature,
                parts = excluded.parts, bytes = excluded.bytes, rows = excluded.rows, scope = excluded.scope,
                dataset = excluded.dataset, period_start = excluded.period_start, period_end = excluded.period_end,
                submitted_at = excluded.submitted_at, status = excluded.status, last_error = excluded.last_error,
                synced_at = excluded.synced_at, source_id = excluded.source_id
            """,
            [
                location.key, run.manifest_blob.name, str(run_id) if isinstance(run_id, str) else None,
                run.manifest_blob.etag, run.signature, len(run.parts) or None,
                sum(b.size for b in run.folder_blobs), rows, _scope_of(run.group[0]),
                str(run.info("type")) if isinstance(run.info("type"), str) else None, start, end, run.submitted,
                status, error, clock.now(), source_id,
            ],
        )

    def _supersede_older(self, cur: duckdb.DuckDBPyConnection, location: ExportLocation, run: _Run) -> None:
        start, end = run.period
        cur.execute(
            """
            UPDATE storage_runs SET status = 'superseded', source_id = NULL
            WHERE source_key = ? AND run_path <> ? AND status = 'done' AND coalesce(scope, '') = ?
              AND coalesce(dataset, '') = ? AND period_start IS NOT DISTINCT FROM ?
              AND period_end IS NOT DISTINCT FROM ?
            """,
            [location.key, run.manifest_blob.name, _scope_of(run.group[0]), run.group[1], start, end],
        )


def _metric_of(run: _Run) -> str:
    dataset = str(run.info("type") or "").lower()
    if "amortized" in dataset:
        return "amortized"
    if "actual" in dataset or "usage" in dataset:
        return "actual"
    return "focus"


def _scope_of(resource_id: str) -> str:
    return re.sub(r"/providers/microsoft\.costmanagement/exports/[^/]+/?$", "", resource_id.lower())


def _ingestion_manifest(run: _Run, match: re.Match[str]) -> dict[str, Any]:
    """A Cost Management-shaped manifest for a hub ingestion folder, from its listing: the month from its path, the
    scope from its scope path, the Parquet parts of its newest ingestion id (files an older ingestion left behind
    are not part of it: the hub replaces a folder's data by ingestion id)."""
    folder = run.folder
    parquet = [b for b in run.folder_blobs
               if str(PurePosixPath(b.name).parent) == folder and b.name.lower().endswith(".parquet")]
    if not parquet:
        return {"_error": "no Parquet part beside manifest.json in this hub ingestion folder"}

    def ingestion_id(blob: _Blob) -> str:
        name = PurePosixPath(blob.name).name
        return name.split(_INGESTION_ID_SEPARATOR, 1)[0] if _INGESTION_ID_SEPARATOR in name else ""

    newest = max(parquet, key=lambda b: (b.last_modified or dt.datetime.min, ingestion_id(b)))
    parts = [b for b in parquet if ingestion_id(b) == ingestion_id(newest)]
    year, month = int(match["year"]), int(match["month"])
    start = dt.date(year, month, 1)
    last = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    submitted = max((b.last_modified for b in [*parts, run.manifest_blob] if b.last_modified), default=None)
    return {
        "exportConfig": {"exportName": "hub-ingestion", "resourceId": "/" + match["scope"], "type": "FocusCost"},
        "runInfo": {
            "runId": ingestion_id(newest) or None,
            "submittedTime": submitted.isoformat() if submitted else None,
            "startDate": f"{start.isoformat()}T00:00:00",
            "endDate": f"{last.isoformat()}T00:00:00",
        },
        "blobs": [{"blobName": b.name, "byteCount": b.size} for b in parts],
    }


def _runs(location: ExportLocation, blobs: list[_Blob]) -> list[_Run]:
    """Every folder under the prefix with a manifest.json, with the blobs directly in it or below it."""
    manifests = [b for b in blobs if PurePosixPath(b.name).name == MANIFEST_NAME]
    runs = []
    for manifest in manifests:
        folder = str(PurePosixPath(manifest.name).parent)
        inside = folder + "/" if folder != "." else ""
        # Blobs below a deeper manifest belong to that run, not to this one.
        deeper = [str(PurePosixPath(m.name).parent) + "/" for m in manifests
                  if m is not manifest and m.name.startswith(inside)]
        members = [b for b in blobs if b.name.startswith(inside) and not any(b.name.startswith(d) for d in deeper)]
        runs.append(_Run(location, manifest, members, ingestion=_INGESTION_RUN.search(manifest.name)))
    # Hub datasets other than Costs (price sheets, recommendations, ...) are not cost rows: not runs at all.
    return [run for run in runs if run.ingestion is None or run.ingestion["dataset"] == HUB_COST_DATASET]


def _as_done(futures: list[Any]) -> Iterator[Any]:
    """Futures as they finish; the first failure stops the wait (the caller cancels the rest)."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, return_when=FIRST_EXCEPTION)
        yield from done


def _if_not_modified() -> Any:
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


def _is_modified(exc: Exception) -> bool:
    from azure.core.exceptions import ResourceModifiedError

    return isinstance(exc, ResourceModifiedError) or getattr(exc, "status_code", None) == 412


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None)
    message = str(getattr(exc, "message", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
    words = " ".join(str(w) for w in (status, code) if w)
    return _without_sas(f"{words}: {message}" if words else message)[:300]


def _storage_error(location: ExportLocation, exc: Exception) -> UserError:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    status = getattr(exc, "status_code", None)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        how = "the SAS token (expired? needs read and list)" if location.sas else \
            f"the credential (${CONNECTION_STRING_ENV} or `az login` with Storage Blob Data Reader)"
        return AzureError(f"{location.shown}: storage refused {how}: {_describe(exc)}")
    if status == 404:
        return AzureError(f"{location.shown}: no such container ({_describe(exc)}); check the URL")
    if isinstance(exc, ServiceRequestError):
        return AzureError(f"{location.shown}: cannot reach the storage account ({_describe(exc)})")
    if isinstance(exc, HttpResponseError):
        return AzureError(f"{location.shown}: storage answered {_describe(exc)}")
    return AzureError(f"{location.shown}: {_describe(exc)}")


def container_client(location: ExportLocation, options: ExportOptions) -> ContainerClient:
    """A client for the location: its SAS, else the connection string, else the azure-identity credential."""
    from azure.storage.blob import BlobServiceClient, ContainerClient

    from finops_tui import azure

    retry: dict[str, Any] = {"retry_total": options.retries, "retry_backoff_factor": 0.5, "connection_timeout": 20}
    if location.sas:
        return ContainerClient(location.account_url, location.container, credential=location.sas, **retry)
    connection_string = options.connection_string or os.environ.get(CONNECTION_STRING_ENV)
    if connection_string:
        try:
            service = BlobServiceClient.from_connection_string(connection_string, **retry)
        except ValueError:
            raise UserError(f"${CONNECTION_STRING_ENV} is not a storage connection string; fix or unset it") from None
        if (service.account_name or "").lower() != location.account:
            raise UserError(
                f"{location.shown}: ${CONNECTION_STRING_ENV} is for account {service.account_name!r}, not "
                f"{location.account!r}; put a SAS in the URL or unset the variable to sign in with azure-identity")
        return service.get_container_client(location.container)
    if location.account_url.startswith("http://"):
        raise UserError(f"{location.shown}: sign-in tokens are never sent over plain http; use a SAS or "
                        f"${CONNECTION_STRING_ENV} for an emulator")
    credential = options.credential or azure.make_credential(options.credential_mode)
    return ContainerClient(location.account_url, location.container, credential=credential, **retry)


def sync_exports(
    cache: Cache,
    options: ExportOptions,
    policy: TagPolicy,
    progress: Callable[[SyncProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> ExportSyncResult:
    """Fetch and import every new or changed export run under each URL; safe in a worker thread.

    A run that cannot be imported (parts missing, sizes or row counts that disagree with its manifest, a
    corrupt part, a part rewritten while downloading) is recorded as failed with one line and retried by the
    next sync; the cache keeps what it had for that period. Raises AzureError when storage refuses access.
    """
    return _ExportSync(cache, options, policy, progress or (lambda _p: None), cancel or threading.Event()).run()


@dataclass(frozen=True)
class SourceRun:
    """A line of `sync --list-sources`: one source's last run."""

    key: str
    runs: int
    failed: int
    rows: int
    last_success: dt.datetime | None
    last_error: str | None


def export_runs_summary(cur: duckdb.DuckDBPyConnection, key: str) -> SourceRun:
    row = cur.execute(
        """
        SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed'),
               coalesce(sum(rows) FILTER (WHERE status = 'done'), 0),
               max(synced_at) FILTER (WHERE status = 'done'),
               arg_max(last_error, synced_at) FILTER (WHERE status = 'failed')
        FROM storage_runs WHERE source_key = ?
        """,
        [key],
    ).fetchone()
    assert row is not None
    return SourceRun(key, int(row[0]), int(row[1]), int(row[2]), row[3], row[4])
