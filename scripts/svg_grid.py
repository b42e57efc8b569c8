"""Put every character of a Textual SVG screenshot on its cell, so PNGs made with CairoSVG keep columns aligned.

Textual's SVG gives each run of text an `x` and a `textLength` (the run's width in cells). Browsers
stretch the run to that length; CairoSVG ignores `textLength`, so long runs drift off the cell grid by
a fraction of a pixel per character and right-aligned money stops lining up in the PNG. Giving each
character its own `x` (a list, as SVG allows) pins it to its cell.
"""

from __future__ import annotations

import html
import re

_TEXT = re.compile(r"<text([^>]*)>([^<]*)</text>")
_X = re.compile(r'\bx="([0-9.]+)"')
_LENGTH = re.compile(r'\s*textLength="([0-9.]+)"')


def on_grid(svg: str) -> str:
    """The same SVG with one x position per character in every text run that has a textLength."""

    def place(match: re.Match[str]) -> str:
        attributes, body = match.group(1), match.group(2)
        x, length = _X.search(attributes), _LENGTH.search(attributes)
        characters = html.unescape(body)
        if x is None or length is None or not characters:
            return match.group(0)
        cell = float(length.group(1)) / len(characters)
        start = float(x.group(1))
        positions = " ".join(f"{start + i * cell:.2f}" for i in range(len(characters)))
        attributes = _LENGTH.sub("", _X.sub(f'x="{positions}"', attributes, count=1))
        return f"<text{attributes}>{body}</text>"

    return _TEXT.sub(place, svg)
