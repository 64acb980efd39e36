"""`python -m tui_tuner ...`: the same as the `tui-tuner` console command."""

from tui_tuner.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
