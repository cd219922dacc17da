"""Showing text that came from a file (tensor names, wrapper keys, file names) safely.

A name in a checkpoint can hold a newline, a carriage return or ANSI escapes; printed raw it
could forge an `error:` line in colour in the user's terminal or a line in the app's panel.
`escape` shows every control character as a Python-style escape (`\\x1b`, `\\n`), and so do
messages, `inspect` output and the GUI.
"""

from __future__ import annotations

import os

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: object) -> str:
    """`text` as one printable line: control characters (C0, DEL, C1, line and paragraph
    separators, bidi overrides) become `\\n`, `\\x1b`, `\\u202e`..."""
    out = []
    for ch in str(text):
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def show_path(path: str | os.PathLike[str]) -> str:
    """A path for a message: undecodable bytes in its name (surrogate escapes) shown as
    `\\udcff`-style escapes instead of crashing the print, control characters escaped."""
    return escape(os.fspath(path))
