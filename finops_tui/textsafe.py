"""Untrusted text made safe for a terminal and a spreadsheet: control characters shown, never obeyed.

Cost data, file names, config values and server messages can hold terminal escapes (ESC, CSI, OSC 52
clipboard writes, BEL), carriage returns that overwrite a line, newlines that break a table row, and
bidirectional overrides that reorder what is shown. Human-readable output passes through `printable`.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (8-bit CSI/OSC) and the line/paragraph separators; then the Arabic letter
# mark, LRM/RLM and the bidi embeddings, overrides and isolates ("Trojan Source").
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{_CONTROLS}]")
_UNSAFE = re.compile(f"[{_CONTROLS}{_BIDI}]")
_LEFT_RAW_BY_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d[\d,]*)?(\.\d+)?%?")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def control_character(text: str, *, bidi: bool = False) -> str | None:
    """The first control character in `text` (with `bidi`, bidirectional marks and overrides count too)."""
    found = (_UNSAFE if bidi else _CONTROL).search(text)
    return found.group() if found else None


def printable(text: str) -> str:
    """One line with every control character written as a visible escape (`\\x1b`, `\\n`, `\\u202e`)."""
    return _UNSAFE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """Like `printable`, keeping the text's own line breaks (a multi-line message or report)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def json_safe(document: str) -> str:
    """A JSON document with the characters json.dumps leaves raw (DEL, C1, bidi, separators) as \\u escapes.

    They can only occur inside strings, where `\\u0085` means the same character: the data is unchanged.
    (json.dumps escapes C0 controls itself; a raw newline in its output is the indentation's.)
    """
    return _LEFT_RAW_BY_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def spreadsheet_safe(text: str) -> str:
    """A CSV text cell that a spreadsheet will not run as a formula (`=HYPERLINK(…)`, `+cmd|…`, `@SUM(…)`).

    Such cells get a leading apostrophe, as OWASP advises; plain signed numbers (`-12.50`, `+3.1%`) stay
    as they are so that credits and changes remain numbers.
    """
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text
