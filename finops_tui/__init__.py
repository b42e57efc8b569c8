"""finops-tui: a keyboard-driven terminal explorer for cloud cost, Azure first."""

__version__ = "0.1.0"
