"""Push preview: the tag merges that would go to Azure; nothing is sent until the user confirms here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label, ProgressBar
from textual.worker import Worker, WorkerState, get_current_worker

from finops_tui.allocation.push import PushItem, PushReport, PushResult, push
from finops_tui.store import Cache
from finops_tui.ui.dialogs.dialog_box import DialogBox, dialog_css
from finops_tui.ui.formatting import failure_line

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


def push_credential(mode: str) -> TokenCredential:
    """The Azure credential for a push (`sync.credential` in config: auto, cli, device-code, managed-identity).

    A module-level function so tests can replace it with a fake credential.
    """
    from finops_tui.azure import make_credential

    return make_credential(mode)


@dataclass(frozen=True)
class PushOutcome:
    pushed: int
    failed: int


@dataclass
class MergeAnswered(Message):
    """Azure answered one resource's merge (or it failed for good)."""

    result: PushResult


@dataclass
class PushThrottled(Message):
    item: PushItem
    seconds: float


@dataclass
class PushFinished(Message):
    report: PushReport


class PushPreviewDialog(ModalScreen[PushOutcome | None]):
    """Lists each resource and the tags to merge; `Send N tag merges to Azure` (or ctrl+enter) sends them."""

    AUTO_FOCUS = "#cancel"  # not the list: focusing it first would scroll the summary away at 80x24
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel",
                tooltip="Close without sending (while sending: stop after the current resource)"),
        Binding("ctrl+enter", "send", "Send", id="push.send", tooltip="Send the tag merges to Azure"),
    ]

    DEFAULT_CSS = dialog_css("PushPreviewDialog", 120, border="$warning") + """
    PushPreviewDialog #summary { height: auto; width: 100%; margin-bottom: 1; }
    PushPreviewDialog DataTable { height: auto; max-height: 20; }
    PushPreviewDialog ProgressBar { display: none; margin-top: 1; }
    PushPreviewDialog ProgressBar.-sending { display: block; }
    PushPreviewDialog #result { height: auto; width: 100%; margin-top: 1; }
    PushPreviewDialog #result.-failed { color: $text-error; }
    """

    def __init__(self, items: Sequence[PushItem], *, cache: Cache, endpoint: str | None, credential_mode: str) -> None:
        super().__init__()
        self.items = list(items)
        self._cache = cache
        self._endpoint = endpoint
        self._credential_mode = credential_mode
        self.report: PushReport | None = None
        self.sending = False
        self._rows: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        from finops_tui.azure import parse_endpoint

        count = len(self.items)
        merges = sum(len(item.tags) for item in self.items)
        target = parse_endpoint(self._endpoint).url
        with DialogBox() as box:
            box.border_title = "Push tags to Azure: preview"
            yield Label(
                f"{count:,} resource(s), {merges:,} tag(s) to merge into {target} "
                "(operation Merge: other tags on each resource stay). Nothing has been sent.",
                id="summary", markup=False,
            )
            table: DataTable[str | Text] = DataTable(cursor_type="row", zebra_stripes=True)
            # The resource last: names run long (disks), and the tags must stay in view at 80 columns.
            table.add_column("Tags to merge", key="tags")
            table.add_column("Status", key="status")
            table.add_column("Resource", key="resource")
            for index, item in enumerate(self.items):
                tags = ", ".join(f"{k}={v}" for k, v in item.tags.items())
                status = Text(f"pending: {item.last_error}", style="yellow") if item.last_error else Text("pending")
                # Text: names and tag values are data, which a DataTable would read as markup.
                table.add_row(Text(tags), status, Text(item.name or item.arm_id), key=item.resource_id)
                self._rows[item.resource_id] = index
            yield table
            yield ProgressBar(total=max(1, count), show_eta=False, id="progress")
            yield Label("", id="result", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button(f"Send {count:,} tag merges to Azure", variant="warning", id="send", disabled=not count)

    def on_mount(self) -> None:
        # The safe choice has the focus: enter alone sends nothing. It is docked: no scrolling to it.
        self.query_one("#cancel", Button).focus(scroll_visible=False)

    # ----------------------------------------------------------------------------------------------

    @on(Button.Pressed, "#send")
    def action_send(self) -> None:
        if self.sending or self.report is not None or not self.items:
            return
        self.sending = True
        self.query_one("#send", Button).disabled = True
        self.query_one("#cancel", Button).label = "Stop"
        self.query_one(ProgressBar).add_class("-sending")
        self.query_one("#result", Label).update("sending…")
        self._send()

    @work(thread=True, exclusive=True, group="tag-push", exit_on_error=False, name="tag push")
    def _send(self) -> None:
        from finops_tui.azure import check_signed_in, parse_endpoint

        worker = get_current_worker()
        endpoint = parse_endpoint(self._endpoint)
        credential = push_credential(self._credential_mode)
        check_signed_in(credential, endpoint)

        def answered(result: PushResult) -> None:
            self.post_message(MergeAnswered(result))

        def throttled(item: PushItem, seconds: float, _reason: str) -> None:
            self.post_message(PushThrottled(item, seconds))

        report = push(
            self._cache, self.items, credential, endpoint.url,
            sleep=worker.cancelled_event.wait,  # a throttling wait ends at once when the user stops
            on_result=answered, on_wait=throttled, cancelled=lambda: worker.is_cancelled,
        )
        self.post_message(PushFinished(report))

    @on(MergeAnswered)
    def _answered(self, message: MergeAnswered) -> None:
        result = message.result
        table = self.query_one(DataTable)
        status = Text("sent", style="green") if result.status == "pushed" else \
            Text(f"failed: {result.error}", style="red")
        table.update_cell(result.item.resource_id, "status", status, update_width=True)
        self.query_one(ProgressBar).advance(1)

    @on(PushThrottled)
    def _throttled(self, message: PushThrottled) -> None:
        name = message.item.name or message.item.arm_id
        self.query_one("#result", Label).update(f"throttled by Azure: retrying {name} in {message.seconds:.0f} s")

    @on(PushFinished)
    def _finished(self, message: PushFinished) -> None:
        self.report = message.report
        self._done(message.report, None)

    def _done(self, report: PushReport | None, error: str | None) -> None:
        self.sending = False
        pushed = len(report.pushed) if report else 0
        failed = len(report.failed) if report else 0
        untouched = len(self.items) - pushed - failed
        parts = [f"sent {pushed:,}"]
        if failed:
            parts.append(f"failed {failed:,} (still pending with their reason; push again to retry)")
        if untouched:
            parts.append(f"not sent {untouched:,} (still pending)")
        text = ", ".join(parts)
        if error:
            text = f"{error}. {text}"
        result = self.query_one("#result", Label)
        result.update(text)
        result.set_class(bool(failed or error), "-failed")
        cancel = self.query_one("#cancel", Button)
        cancel.label = "Close"
        cancel.focus()
        if self.report is None:
            self.report = report or PushReport()

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        # A dialog is not a FinopsScreen: failures are shown here, beside what was being sent.
        if event.worker.group != "tag-push":
            return
        if event.state == WorkerState.ERROR:
            self._done(None, failure_line(event.worker.error))
        elif event.state == WorkerState.CANCELLED and self.report is None:
            self._done(None, "stopped")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.sending:
            self.workers.cancel_group(self, "tag-push")  # stops before the next resource; the rest stay pending
            self.query_one("#result", Label).update("stopping after the current resource…")
            return
        report = self.report
        self.dismiss(PushOutcome(len(report.pushed), len(report.failed)) if report is not None else None)
