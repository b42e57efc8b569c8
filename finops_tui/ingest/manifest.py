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
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from finops_tui.errors import UserError
from finops_tui.ingest.mapping import DATE_RANGE_TEXT, END_DATE, FIRST_DATE

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
    """Parse `directory/manifest.json` and find every part file it lists (a missing one is an error).

    Every key the import uses is checked for its type and range, so a damaged manifest gets one line
    naming the key rather than a traceback; keys the import does not use are not looked at.
    """
    manifest_path = directory / MANIFEST_NAME
    try:
        document = json.loads(manifest_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(
            f"{manifest_path}: not a readable export manifest ({exc}); download the export folder again"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("blobs"), list):
        raise UserError(f'{manifest_path}: no "blobs" list, not a Cost Management export manifest')
    shape = _Shape(manifest_path)
    export = shape.section(document, "exportConfig")
    run = shape.section(document, "runInfo")
    parts = [_part(directory, shape, f"blobs[{index}]", blob) for index, blob in enumerate(document["blobs"])]
    if not parts:
        raise UserError(f"{manifest_path}: the manifest lists no part files; run the export again")
    start = shape.date(run, "runInfo.startDate")
    last = shape.date(run, "runInfo.endDate")
    if start and last and last < start:
        shape.fail("runInfo.endDate", last.isoformat(), f"a day on or after runInfo.startDate ({start})")
    return ExportManifest(
        directory=directory,
        parts=parts,
        scope=_scope(shape.text(export, "exportConfig.resourceId")),
        start=start,
        end=last + dt.timedelta(days=1) if last else None,
        dataset=shape.text(export, "exportConfig.type"),
        export_name=shape.text(export, "exportConfig.exportName"),
    )


class _Shape:
    """Reads typed values out of the manifest, or fails with one line naming the key."""

    def __init__(self, manifest_path: Path) -> None:
        self.manifest_path = manifest_path

    def fail(self, key: str, found: object, expected: str) -> NoReturn:
        shown = found if isinstance(found, str) else json.dumps(found)
        raise UserError(
            f"{self.manifest_path}: {key} is {_clip(shown)}, expected {expected}; download the export folder again"
        )

    def section(self, document: dict[str, Any], key: str) -> dict[str, Any]:
        value = document.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, value, "an object")
        return value

    def text(self, section: dict[str, Any], key: str) -> str | None:
        value = section.get(key.rsplit(".", 1)[-1])
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, value, "a text")
        return value

    def date(self, section: dict[str, Any], key: str) -> dt.date | None:
        value = section.get(key.rsplit(".", 1)[-1])
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            self.fail(key, value, "an ISO 8601 date")
        try:
            day = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            self.fail(key, value, "an ISO 8601 date")
        if not FIRST_DATE <= day.isoformat() < END_DATE:
            self.fail(key, value, f"a date {DATE_RANGE_TEXT}")
        return day

    def row_count(self, blob: dict[str, Any], key: str) -> int | None:
        value = blob.get("dataRowCount")
        if value is None:
            return None
        # JSON has one number type: 28.0 is a count, 1.5, -3, NaN or true are not.
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(key, value, "a whole number of rows")
        if value < 0 or value != int(value):
            self.fail(key, value, "a whole number of rows")
        return int(value)


def _part(directory: Path, shape: _Shape, key: str, blob: object) -> ManifestPart:
    if not isinstance(blob, dict):
        shape.fail(key, blob, "an object with blobName")
    blob_name = blob.get("blobName")
    if not isinstance(blob_name, str):
        shape.fail(f"{key}.blobName", blob_name, "the part file's name")
    name = PurePosixPath(blob_name).name
    if name in ("", ".", ".."):
        shape.fail(f"{key}.blobName", blob_name, "the part file's name")
    expected_rows = shape.row_count(blob, f"{key}.dataRowCount")
    found = directory / name
    if not found.is_file():
        # Part files may sit in sub-folders (as the blob path lays them out): find one by its exact name.
        found = next((p for p in sorted(_files_named(directory, name)) if p.is_file()), found)
    if not found.is_file():
        raise UserError(
            f"{directory}: part file {name} listed in manifest.json is missing; download the whole export folder again"
        )
    return ManifestPart(found, expected_rows)


def _files_named(directory: Path, name: str) -> list[Path]:
    """Files called `name` anywhere under `directory`, compared literally (a name may hold `[` or `*`)."""
    return [Path(root) / name for root, _, files in os.walk(directory) if name in files]


def _scope(resource_id: str | None) -> str | None:
    if resource_id is None or not resource_id.strip():
        return None
    scope = _EXPORT_SUFFIX.sub("", resource_id.strip())
    return (scope or resource_id).lower()


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
