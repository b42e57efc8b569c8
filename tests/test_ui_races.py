"""Races a loaded machine showed: what a screen paints must not depend on when the table next goes idle."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text

from finops_tui.ui.screens.explain import ContributorTable, ExplainScreen
from tests.test_ui_explain import _explain_subscription, demo_path  # noqa: F401  (the module's demo estate)
from tests.ui_fixtures import TODAY, async_test, make_app, opened, without_prefetch

pytestmark = pytest.mark.today(TODAY)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    without_prefetch(monkeypatch, "overview", "allocation")


def test_the_contributors_columns_fit_their_cells_as_soon_as_they_are_listed(demo_path: Path) -> None:  # noqa: F811
    @async_test
    async def run() -> None:
        with opened(demo_path) as cache:
            app = make_app(cache)
            async with app.run_test(size=(160, 48)) as pilot:
                await _explain_subscription(pilot)
                screen = app.screen
                assert isinstance(screen, ExplainScreen) and screen.kind is not None
                table = screen.query_one(ContributorTable)
                # Listed again, and read before the table's next idle (when a DataTable measures new rows):
                # a screen painted then showed the headers' widths and cut the cents and the names.
                screen._show_contributors()
                for index, column in enumerate(table.ordered_columns):
                    cells = [table.get_row_at(row)[index] for row in range(table.row_count)]
                    widest = max(Text(c).cell_len if isinstance(c, str) else c.cell_len for c in [*cells, column.label])
                    assert column.get_render_width(table) == widest + 2 * table.cell_padding, column.label

    run()
