"""Values as text: one formatter per purpose, shared by the CLI, headless mode and the app.

- `show_value`: tables and reports that must stay exact enough to tell trials apart (`show`, the
  headless objective, search ranges): floats to 6 significant digits.
- `short_value`: a value read at a glance (the app's cells, messages, a headless setting line):
  4 significant digits, 3 for very small or big floats.
- `setting_line`: a whole setting as `name=value ...`, cut to a width.

Booleans are written as TOML writes them (`true`), a missing value as `-`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MISSING = "-"


def show_value(x: Any) -> str:
    """A value as tables show it: floats to 6 significant digits, ints exact, strings bare, None as '-'."""
    if x is None:
        return MISSING
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def short_value(x: Any) -> str:
    """A value read at a glance: 4 significant digits for floats (3 when tiny or huge), exact for the rest."""
    if x is None:
        return MISSING
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
            return f"{x:.3g}"
        return f"{x:.4g}"
    return str(x)


def setting_line(params: Mapping[str, Any], width: int | None = None) -> str:
    """A setting as `name=value ...` (short values), cut with an ellipsis to `width` characters."""
    text = " ".join(f"{k}={short_value(v)}" for k, v in params.items())
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def quoted_value(x: Any) -> str:
    """A value in an error message: like show_value, but strings quoted so '' and ' ' are visible."""
    return repr(x) if isinstance(x, str) or x is None else show_value(x)


def quoted_name(name: str) -> str:
    """A name as error messages show it: quoted and escaped when it holds a newline or other control."""
    return name if name.isprintable() and name.strip() == name else repr(name)
