"""Text that a trainer (or a file it wrote) controls, made safe to show on a terminal.

A trainer's output lines, its metric names, a failure reason built from its last lines: any of
them may hold terminal escape sequences (ECMA-48: a CSI `ESC [ ... m` that colours or clears the
screen, an OSC `ESC ] 0 ; ... BEL` that retitles the window, DCS/APC/PM/SOS strings, the 8-bit
C1 forms of each) or lone control characters (a carriage return or backspaces that overwrite what
is shown, a bell). Printed raw, they act on the user's terminal. `printable` removes whole
sequences and shows every other control character as a visible escape (`\\x07`), so what a
terminal displays is exactly the text. Files on disk keep the raw text: only what is printed or
drawn goes through here.
"""

from __future__ import annotations

import re

# Whole escape sequences, removed. A string sequence (OSC, DCS, SOS, PM, APC) ends at BEL or ST
# (ESC \ or 0x9C); one never terminated stays, its ESC shown as \x1b, rather than eat the rest.
# Bodies stop at a newline so that one bad sequence cannot swallow the following lines.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"                          # CSI ... final byte
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)"   # OSC/DCS/SOS/PM/APC
    r"|\x1b(?![\[\]PX^_])[ -/]*[0-~]"                             # ESC c (reset), ESC 7, ESC ( B, ...
)
# What is left that a terminal would act on, shown as an escape: C0 and C1 controls, DEL, lone
# surrogates (undecodable bytes of a file name; printing one raises), the bidirectional overrides
# that reorder what is read, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ESCAPES = {"\r": "\\r", "\n": "\\n"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def printable(text: object, *, newlines: bool = False) -> str:
    """`text` as a terminal may show it: escape sequences removed, other control characters escaped.

    A tab becomes a space. With `newlines` (a multi-line view: a failure reason, output lines) line
    breaks stay, a carriage return counting as one; without, they show as \\n and \\r. Bytes are
    decoded as UTF-8, an undecodable byte shown as U+FFFD.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    elif not isinstance(text, str):
        text = str(text)
    if text.isprintable():   # the common case, at C speed: nothing to do
        return text
    text = _SEQUENCE.sub("", text)
    if newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return "\n".join(_CONTROL.sub(_escape, line.replace("\t", " ")) for line in text.split("\n"))
    return _CONTROL.sub(_escape, text.replace("\t", " "))
