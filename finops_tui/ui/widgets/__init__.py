"""Reusable widgets: the daily cost chart, cost tables, summary cards, status bar, path input."""
