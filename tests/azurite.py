"""Azurite (Microsoft's storage emulator, npm `azurite`) for the export sync tests: install, start on loopback, stop.

The package is installed once into tests/.azurite (gitignored; .ci/run installs it before the tests). Without
npm on the machine the tests that need it are skipped with the reason; in CI they run.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

AZURITE_DIR = Path(__file__).parent / ".azurite"
AZURITE_BIN = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
# The well-known development key every Azurite and storage emulator accepts (published by Microsoft).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteUnavailable(Exception):
    """npm is missing or the install failed: the caller skips with this reason."""


def ensure_installed() -> Path:
    """The azurite-blob launcher, installing the npm package into tests/.azurite the first time."""
    if AZURITE_BIN.exists():
        return AZURITE_BIN
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteUnavailable("npm is not installed: Azurite (npm package `azurite`) cannot be set up here")
    AZURITE_DIR.mkdir(exist_ok=True)
    # xdist workers share the folder: one installs, the others wait for it.
    with open(AZURITE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if AZURITE_BIN.exists():
            return AZURITE_BIN
        done = subprocess.run(
            [npm, "install", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund", "azurite@3"],
            capture_output=True, text=True, timeout=600, check=False,
        )
    if done.returncode != 0 or not AZURITE_BIN.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AzuriteUnavailable(f"`npm install azurite@3` failed: {tail[0]}")
    return AZURITE_BIN


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Azurite:
    port: int

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.account_url};"
        )

    def service(self):  # type: ignore[no-untyped-def]
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def container_sas(self, container: str, *, hours: float = 2.0) -> str:
        """A read + list SAS for one container, signed with the development key."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        return generate_container_sas(
            ACCOUNT, container, account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions(read=True, list=True),
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours),
        )


@contextmanager
def running_azurite() -> Iterator[Azurite]:
    """Azurite's blob service on 127.0.0.1 and a free port, data in a temporary folder; stopped afterwards.

    AzuriteUnavailable only when it cannot be installed (no npm); a failed start is an error, never a skip."""
    launcher = ensure_installed()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="azurite-") as location:
        process = subprocess.Popen(
            [str(launcher), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", location,
             "--skipApiVersionCheck", "--loose", "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "NO_UPDATE_NOTIFIER": "1"},
        )
        try:
            _wait_until_listening(port, process)
            yield Azurite(port)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = (process.stderr.read() if process.stderr else b"").decode(errors="replace").strip()
            raise RuntimeError(f"Azurite exited at start: {error[-300:] or process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("Azurite did not listen within 30 s")


# Exports laid out as Cost Management writes them -----------------------------------------------------------------
SCHEMAS = Path(__file__).parent / "fixtures" / "azure-exports" / "schemas"
SUBSCRIPTION = "00000000-0000-0000-0000-0000000000a1"
EXPORT_SCOPE = f"/subscriptions/{SUBSCRIPTION}"


def focus_columns(version: str) -> list[str]:
    """The columns of Microsoft's FocusCost export of that version (1.0, 1.0r2, 1.2-preview), in its order."""
    import json

    schema = json.loads((SCHEMAS / f"focuscost_{version}.json").read_text())
    return [m["source"]["name"] for m in schema["translator"]["mappings"]]


def write_focus_part(
    target: Path, month: dt.date, rows: int, *, version: str = "1.0", fmt: str = "parquet", seed: int = 1,
    offset: int = 0,
) -> dict[str, tuple[Decimal, Decimal]]:
    """A FOCUS part of `rows` Azure charges in `month` (CSV, CSV.GZ or Parquet); returns the file's own totals
    per currency (sum BilledCost, sum EffectiveCost), computed from the file as written."""
    import duckdb

    next_month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    days = (next_month - month).days
    values = {
        "BilledCost": f"CAST(((i * 7919 + {seed}) % 100000) * 0.000123 AS DECIMAL(18,6))",
        "EffectiveCost": f"CAST(((i * 104729 + {seed}) % 100000) * 0.000117 AS DECIMAL(18,6))",
        "ListCost": f"CAST(((i * 7919 + {seed}) % 100000) * 0.00015 AS DECIMAL(18,6))",
        "ContractedCost": f"CAST(((i * 7919 + {seed}) % 100000) * 0.00013 AS DECIMAL(18,6))",
        "BillingCurrency": "CASE WHEN i % 10 = 0 THEN 'EUR' ELSE 'USD' END",
        "BillingAccountId": "'/providers/Microsoft.Billing/billingAccounts/8611537'",
        "BillingAccountName": "'Contoso'",
        "BillingPeriodStart": f"TIMESTAMP '{month} 00:00:00'",
        "BillingPeriodEnd": f"TIMESTAMP '{next_month} 00:00:00'",
        "ChargePeriodStart": f"TIMESTAMP '{month} 00:00:00' + to_days(CAST(i % {days} AS INTEGER))",
        "ChargePeriodEnd": f"TIMESTAMP '{month} 00:00:00' + to_days(CAST(i % {days} AS INTEGER) + 1)",
        "ChargeCategory": "'Usage'",
        "ChargeFrequency": "'Usage-Based'",
        "ChargeDescription": "'Compute hours'",
        "PricingCategory": "'Standard'",
        "PricingQuantity": "1.0",
        "PricingUnit": "'Hours'",
        "ConsumedQuantity": "1.0",
        "ConsumedUnit": "'Hours'",
        "ProviderName": "'Microsoft'",
        "PublisherName": "'Microsoft'",
        "InvoiceIssuerName": "'Microsoft'",
        "RegionId": "'westeurope'",
        "RegionName": "'West Europe'",
        "ResourceId": f"'/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-' || (i % 7) || "
                      "'/providers/Microsoft.Compute/virtualMachines/vm-' || (i % 301)",
        "ResourceName": "'vm-' || (i % 301)",
        "ResourceType": "'Virtual machine'",
        "ServiceName": "'Virtual Machines'",
        "ServiceCategory": "'Compute'",
        "SubAccountId": f"'/subscriptions/{SUBSCRIPTION}'",
        "SubAccountName": "'prod'",
        "SkuId": "'DZH318Z0BQ4P'",
        "Tags": "'{\"team\":\"team-' || (i % 5) || '\"}'",
        "x_ResourceGroupName": "'rg-' || (i % 7)",
        "x_SkuMeterCategory": "'Virtual Machines'",
    }
    items = [f'{values.get(c, "NULL")} AS "{c}"' for c in focus_columns(version)]
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TABLE part AS SELECT {', '.join(items)} FROM range({offset}, {offset + rows}) t(i)")
        if fmt == "parquet":
            con.execute(f"COPY part TO '{target}' (FORMAT parquet)")
        else:
            compression = ", COMPRESSION gzip" if fmt == "csv.gz" else ""
            con.execute(f"COPY part TO '{target}' (HEADER, DELIMITER ','{compression})")
        totals = con.execute(
            "SELECT BillingCurrency, sum(BilledCost), sum(EffectiveCost) FROM part GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    return {str(c): (b, e) for c, b, e in totals}


@dataclass
class ExportRun:
    """One run as uploaded: its folder, manifest path and the parts' own totals."""

    folder: str
    manifest: str
    totals: dict[str, tuple[Decimal, Decimal]]
    rows: int


class LocalFolder:
    """upload_run's container interface writing into a local folder: an export run laid out as Cost Management
    writes it, for `import` of the same files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def upload_blob(self, name: str, data: bytes, overwrite: bool = True) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def upload_run(
    container: Any, prefix: str, export_name: str, month: dt.date, parts: list[Path], rows_per_part: list[int],
    *, dataset: str = "FocusCost", run_id: str | None = None, submitted: str = "2025-03-02T05:00:00Z",
    totals: dict[str, tuple[Decimal, Decimal]] | None = None, manifest_rows: list[int] | None = None,
    skip_parts: tuple[int, ...] = (), end: dt.date | None = None, scope: str = EXPORT_SCOPE,
) -> ExportRun:
    """Upload parts and their manifest.json at `<prefix>/<export>/<yyyymmdd-yyyymmdd>/[<runId>/]` (no runId
    folder: an export that overwrites its files daily). `skip_parts` leaves parts out (an incomplete run)."""
    import json

    last = end or ((month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1))
    folder = f"{prefix}/{export_name}/{month:%Y%m%d}-{last:%Y%m%d}" + (f"/{run_id}" if run_id else "")
    folder = folder.lstrip("/")
    blobs = []
    for index, (part, rows) in enumerate(zip(parts, rows_per_part, strict=True)):
        name = f"{folder}/part_{index}_{index + 1:04d}{''.join(part.suffixes)}"
        data = part.read_bytes()
        if index not in skip_parts:
            container.upload_blob(name, data, overwrite=True)
        counted = manifest_rows[index] if manifest_rows else rows
        blobs.append({"blobName": name, "byteCount": len(data), "dataRowCount": counted})
    manifest = {
        "manifestVersion": "2024-04-01",
        "byteCount": sum(b["byteCount"] for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": sum(b["dataRowCount"] for b in blobs),
        "exportConfig": {
            "exportName": export_name,
            "resourceId": f"{scope}/providers/Microsoft.CostManagement/exports/{export_name}",
            "dataVersion": "1.0" if dataset == "FocusCost" else "2021-10-01",
            "apiVersion": "2023-07-01-preview",
            "type": dataset,
            "timeFrame": "MonthToDate",
            "granularity": "Daily",
        },
        "deliveryConfig": {"partitionData": True, "dataOverwriteBehavior": "OverwritePreviousReport"
                           if run_id is None else "CreateNewReport", "fileFormat": "Csv"},
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": submitted,
            "runId": run_id or "overwrite-run",
            "startDate": f"{month}T00:00:00",
            "endDate": f"{last}T00:00:00",
        },
        "blobs": blobs,
    }
    manifest_name = f"{folder}/manifest.json"
    container.upload_blob(manifest_name, json.dumps(manifest).encode(), overwrite=True)
    return ExportRun(folder, manifest_name, totals or {}, sum(rows_per_part))


def upload_ingestion(
    container: Any, month: dt.date, parts: list[Path], *, ingestion_id: str, dataset: str = "Costs",
    scope_path: str = f"subscriptions/{SUBSCRIPTION}", prefix: str = "", manifest: bytes = b"",
) -> str:
    """Upload Parquet parts as a FinOps hub writes its `ingestion` container, and return the folder:
    `[<prefix>/]<dataset>/<yyyy>/<mm>/<scope-path>/<ingestion-id>__<original-file-name>.parquet`, then an empty
    manifest.json (the hub's trigger: written after the parts, never parsed)."""
    folder = "/".join(p for p in (prefix.strip("/"), dataset, f"{month:%Y}", f"{month:%m}", scope_path.strip("/")) if p)
    for part in parts:
        container.upload_blob(f"{folder}/{ingestion_id}__{part.name}", part.read_bytes(), overwrite=True)
    container.upload_blob(f"{folder}/manifest.json", manifest, overwrite=True)
    return folder
