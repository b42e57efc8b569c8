"""Entry point for `python -m finops_tui`."""

from finops_tui.cli import main

raise SystemExit(main())
