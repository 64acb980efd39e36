"""Dialogs on their own: Escape while a command is being applied must not hide its result."""

from __future__ import annotations

import asyncio

from space_toml import lr, space_toml
from textual.app import App

from tui_tuner.core.space import parse_space
from tui_tuner.ui.screens.dialogs import ParamForm


async def test_escape_while_applying_keeps_the_dialog_until_the_result_arrives():
    space = parse_space(space_toml({"lr": lr(live=True)}), "x.toml")
    release = asyncio.Event()
    applied: list[dict] = []
    results: list[str | None] = []

    async def apply(changes: dict) -> str:
        applied.append(changes)
        await release.wait()          # a back-end command still on its way
        return "lr → 0.02"

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(ParamForm("Adjust", [(space["lr"], 0.01)], apply), results.append)

    app = Host()
    async with app.run_test() as pilot:
        await pilot.pause()
        form = app.screen
        assert isinstance(form, ParamForm)
        form.field("lr").value = "0.02"
        await pilot.press("enter")
        for _ in range(20):
            if applied:
                break
            await pilot.pause(0.05)
        assert applied == [{"lr": 0.02}] and form.busy
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is form and "still applying" in form.error_text
        release.set()
        for _ in range(20):
            if results:
                break
            await pilot.pause(0.05)
        assert results == ["lr → 0.02"]
        assert app.screen is not form


def test_dialog_input_errors_are_input_errors_not_space_errors():
    import pytest

    from tui_tuner.errors import InputError, SpaceError
    from tui_tuner.ui.screens.dialogs import parse_count, parse_path, parse_stage

    for parse, text, rule in [(parse_count, "x", "how many: must be a whole number"),
                              (parse_count, "0", "between 1 and 1000"), (parse_stage, "7", "stage: must be"),
                              (parse_path, " ", "path: give a file name")]:
        with pytest.raises(InputError, match=rule) as e:
            parse(text)
        assert not isinstance(e.value, SpaceError) and e.value.title == "Input"
