"""Errors a user can act on: each carries one clear line and a process exit code."""


class UserError(Exception):
    """Bad input or a bad request: the message says what, where and what to do (exit 1)."""

    exit_code = 1


class UsageError(UserError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


class AzureError(UserError):
    """Azure or authentication failed (exit 3)."""

    exit_code = 3


class CacheLockedError(UserError):
    """Another process holds the cache file."""


class CacheTooNewError(UserError):
    """The cache was written by a newer finops-tui."""


class ConfigError(UserError):
    """config.toml or rules.toml is unreadable or holds a value of the wrong type; the line names file and key."""
