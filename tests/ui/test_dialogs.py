"""Dialogs on their own: Escape while a command is being applied must not hide its result."""

from __future__ import annotations

import asyncio

from space_toml import lr, space_toml
from textual.app import App
from ui_helpers import wait_until

from tui_tuner.search.space import parse_space
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
        await wait_until(pilot, lambda: applied, 5, "the command sent")
        assert applied == [{"lr": 0.02}] and form.busy
        await pilot.press("escape")
        await wait_until(pilot, lambda: "still applying" in form.error_text, 5, "the escape refused while applying")
        assert app.screen is form
        release.set()
        await wait_until(pilot, lambda: results, 5, "the result")
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


async def test_forms_show_short_numbers_and_keep_the_full_value_of_an_untouched_field():
    from space_toml import param

    space = parse_space(space_toml({"lr": lr(live=True), "momentum": param(
        "float", scale="one_minus_log", low=0.9, high=0.999, default=0.9, live=True)}), "x.toml")
    full_lr, full_m = 0.012565746794364216, 0.9512345678901234
    results: list = []

    async def apply(changes: dict) -> dict:
        return changes

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(ParamForm("Fork", [(space["lr"], full_lr), (space["momentum"], full_m)], apply,
                                       allow_empty=True), results.append)

    app = Host()
    async with app.run_test() as pilot:
        await pilot.pause()
        form = app.screen
        assert form.field("lr").value == "0.01257" and form.field("momentum").value == "0.9512"
        assert form.changes() == {}           # nothing typed: every full value is kept
        form.field("momentum").value = "0.99"
        await pilot.press("enter")
        await wait_until(pilot, lambda: results, 5, "the form's result")
    # Only the edited field changes; lr is not sent, so the run keeps 0.012565746794364216.
    assert results == [{"momentum": 0.99}]
