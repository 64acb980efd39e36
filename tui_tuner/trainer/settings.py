"""A run's settings on the trainer side: the Params dict, and standalone overrides from the command line.

`--name value` / `--name=value` (typed like the default; booleans take true/false or a bare
`--name`), `--config FILE.toml` (the values of a `tui-tuner export`; flags after it win) and
`--help`. A value that does not fit is one line on stderr and exit status 2. Standard library only:
this runs inside the user's training process.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

TRUE = ("true", "1", "yes", "on", "t", "y")
FALSE = ("false", "0", "no", "off", "f", "n")


class Params(dict):
    """A run's settings: a dict whose keys are also attributes (hp["lr"] or hp.lr).

    A name that is also a dict method (items, values, copy, ...) needs hp["name"].
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r} (known: {', '.join(self)})") from None


def warn(msg: str) -> None:
    """Say one line on stderr, prefixed tui-tuner:."""
    print(f"tui-tuner: {msg}", file=sys.stderr, flush=True)


def coerce_like(value: Any, like: Any) -> Any:
    """A JSON value given the type of the script's default where that is lossless (1 -> 1.0 for a float)."""
    if isinstance(like, bool) or like is None:
        return value
    if isinstance(like, float) and type(value) is int:
        return float(value)
    if isinstance(like, int) and type(value) is float and value.is_integer():
        return int(value)
    return value


def parse_value(flag: str, text: str, like: Any) -> Any:
    """Parse a command-line value with the type of the default; exit 2 with one line if it does not fit."""
    try:
        if isinstance(like, bool):
            low = text.strip().lower()
            if low in TRUE:
                return True
            if low in FALSE:
                return False
            raise ValueError
        if isinstance(like, int):
            x = float(text)
            if not x.is_integer():
                raise ValueError
            return int(x) if "." in text or "e" in text.lower() else int(text)
        if isinstance(like, float):
            return float(text)
        if isinstance(like, str):
            return text
        return json.loads(text)
    except ValueError:
        if like is None:
            return text
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(type(like), type(like).__name__)
        print(f"tui-tuner: {flag}: expected {kind}, got {text!r}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def fail(message: str) -> SystemExit:
    """Say one line on stderr; returns the SystemExit(2) to raise."""
    print(f"tui-tuner: {message}", file=sys.stderr, flush=True)
    return SystemExit(2)


def load_config(path: str) -> dict[str, Any]:
    """The values of a `tui-tuner export` TOML file, its [tuner] table of metadata left out."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised only on 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise fail(f"--config {path}: cannot read: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise fail(f"--config {path}: TOML syntax error: {e}") from None
    data.pop("tuner", None)   # export.TUNER_TABLE (not imported: this module stays light)
    return data


def config_max_steps(argv: list[str]) -> int | None:
    """The step limit a `tui-tuner export` given by --config kept ([tuner] max_steps: a run trained
    longer than its script's default), or None."""
    path = None
    for i, word in enumerate(argv):
        if word == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif word.startswith("--config="):
            path = word.split("=", 1)[1]
    if path is None:
        return None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised only on 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            steps = tomllib.load(f).get("tuner", {}).get("max_steps")
    except (OSError, ValueError, AttributeError):
        return None   # load_config says what is wrong with the file, once, when the settings are read
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else None


def config_value(path: str, key: str, value: Any, like: Any) -> Any:
    """A --config file's value, typed like the script's default; exit 2 with one line if it does not fit."""
    v = coerce_like(value, like)
    if like is None or (isinstance(v, type(like)) and isinstance(v, bool) == isinstance(like, bool)):
        return v
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        type(like), type(like).__name__)
    raise fail(f"--config {path}: {key}: expected {kind}, got {value!r}")


def parse_argv(argv: list[str], declared: dict[str, Any], *, help_ok: bool,
                config: Callable[[str], dict[str, Any]] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Overrides for declared names from --name value / --name=value; also the unknown flags seen.

    With `config` (a loader), --config FILE sets the declared names FILE holds, where it stands:
    a flag after it wins, one before it loses.
    """
    out: dict[str, Any] = {}
    unknown: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == "--":
            break
        if help_ok and tok in ("-h", "--help"):
            print_help(declared, config is not None)
            raise SystemExit(0)
        if not tok.startswith("--") or len(tok) == 2:
            continue
        name, eq, text = tok[2:].partition("=")
        key = name if name in declared else name.replace("-", "_")
        nxt = argv[i] if i < len(argv) else None
        if name == "config" and config is not None:
            if not eq:
                if nxt is None:
                    raise fail("--config: expected a file (a tui-tuner export, e.g. best.toml)")
                text, i = nxt, i + 1
            values = config(text)
            for k, v in values.items():
                if k in declared:
                    out[k] = config_value(text, k, v, declared[k])
            extra = [k for k in values if k not in declared]
            if extra and help_ok:
                unknown.append(f"{', '.join(extra)} (in {text})")
            continue
        if key not in declared:
            unknown.append(f"--{name}")
            if not eq and nxt is not None and not nxt.startswith("--"):
                i += 1   # skip its value too
            continue
        like = declared[key]
        if not eq:
            if isinstance(like, bool) and (nxt is None or nxt.strip().lower() not in TRUE + FALSE):
                out[key] = True   # a bare --flag switches a boolean on
                continue
            if nxt is None:
                print(f"tui-tuner: --{name}: expected a value", file=sys.stderr, flush=True)
                raise SystemExit(2)
            text = nxt
            i += 1
        out[key] = parse_value(f"--{name}", text, like)
    return out, unknown


def print_help(declared: dict[str, Any], config: bool = False) -> None:
    """The --help text: every declared setting and its default."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "trainer"
    usage = "[--config FILE.toml] [--NAME VALUE ...]" if config else "[--NAME VALUE ...]"
    print(f"usage: {prog} {usage}\n\nsettings (tui-tuner trainer.params) and their defaults:")
    for k, v in declared.items():
        print(f"  --{k:<20} {v!r}")
    if config:
        print(f"  --{'config FILE.toml':<20} the values of a `tui-tuner export` (flags after it win)")
