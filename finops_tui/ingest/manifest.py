"""Cost Management export folders: manifest.json (what Microsoft writes beside the part files) read into a plan.

Shape (2023-07-01-preview exports and later): `{"manifestVersion", "exportConfig": {"exportName",
"resourceId", "dataVersion", "apiVersion", "type", "timeFrame", "granularity"}, "deliveryConfig": {...},
"runInfo": {"executionType", "submittedTime", "runId", "startDate", "endDate"}, "blobs": [{"blobName",
"byteCount", "dataRowCount"}]}`. runInfo's dates are the first and last day of the exported period;
exportConfig.resourceId is the export itself (`<scope>/providers/Microsoft.CostManagement/exports/<name>`),
so its scope part names whose cost the export holds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from finops_tui.errors import UserError

MANIFEST_NAME = "manifest.json"
_EXPORT_SUFFIX = re.compile(r"/providers/microsoft\.costmanagement/exports/[^/]+/?$", re.IGNORECASE)


@dataclass(frozen=True)
class ManifestPart:
    path: Path
    expected_rows: int | None


@dataclass(frozen=True)
class ExportManifest:
    directory: Path
    parts: list[ManifestPart]
    scope: str | None  # lower-cased ARM scope whose cost the export holds
    start: dt.date | None
    end: dt.date | None  # exclusive
    dataset: str | None  # ActualCost | AmortizedCost | FocusCost | ...
    export_name: str | None


def is_export_directory(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST_NAME).is_file()


def read_manifest(directory: Path) -> ExportManifest:
    """Parse `directory/manifest.json` and find every part file it lists (a missing one is an error)."""
    manifest_path = directory / MANIFEST_NAME
    try:
        document = json.loads(manifest_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"{manifest_path}: not a readable export manifest ({exc}); download the export folder again"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("blobs"), list):
        raise UserError(f'{manifest_path}: no "blobs" list, not a Cost Management export manifest')
    export = document.get("exportConfig") or {}
    run = document.get("runInfo") or {}
    parts = [_part(directory, manifest_path, blob) for blob in document["blobs"]]
    if not parts:
        raise UserError(f"{manifest_path}: the manifest lists no part files; run the export again")
    start = _date(run.get("startDate"), manifest_path, "runInfo.startDate")
    last = _date(run.get("endDate"), manifest_path, "runInfo.endDate")
    return ExportManifest(
        directory=directory,
        parts=parts,
        scope=_scope(export.get("resourceId")),
        start=start,
        end=last + dt.timedelta(days=1) if last else None,
        dataset=export.get("type") if isinstance(export.get("type"), str) else None,
        export_name=export.get("exportName") if isinstance(export.get("exportName"), str) else None,
    )


def _part(directory: Path, manifest_path: Path, blob: object) -> ManifestPart:
    if not isinstance(blob, dict) or not isinstance(blob.get("blobName"), str):
        raise UserError(f"{manifest_path}: a blob without blobName; download the export folder again")
    name = PurePosixPath(blob["blobName"]).name
    candidates = [directory / name, *sorted(directory.rglob(name))]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise UserError(
            f"{directory}: part file {name} listed in manifest.json is missing; download the whole export folder again"
        )
    rows = blob.get("dataRowCount")
    return ManifestPart(found, int(rows) if isinstance(rows, int | float) else None)


def _scope(resource_id: object) -> str | None:
    if not isinstance(resource_id, str) or not resource_id.strip():
        return None
    scope = _EXPORT_SUFFIX.sub("", resource_id.strip())
    return (scope or resource_id).lower()


def _date(value: object, manifest_path: Path, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        raise UserError(f"{manifest_path}: {field} {value!r} is not a date; download the export folder again") from None
