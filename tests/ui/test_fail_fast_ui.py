"""Fail fast in the app (issue 19, item 5): a command that cannot run pauses the queue after three
trials, the app says why once, and queueing a setting by hand (n) goes on."""

from __future__ import annotations

from space_toml import lr, space_toml
from ui_helpers import make_app, open_study, piloting, screen_of, wait_until

from tui_tuner.ui.screens.dialogs import Prompt

BROKEN = "import sys\nprint('train.py: error: unrecognized arguments: --lr', sys.argv[-1], file=sys.stderr)\nsys.exit(2)\n"


def paused_messages(app) -> list[str]:
    return [m for _, _, m in app.said_log if "queue paused" in m]


async def test_the_app_says_once_why_the_queue_paused_and_n_goes_on(study_dir, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(BROKEN)
    study = open_study(study_dir, space_toml({"lr": lr()}, name="broken", command=["python", str(script)],
                                             budget=10, strategy="random",
                                             metrics={"val_loss": r"val_loss ([0-9.]+)"}))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        sched = app.backend.session.scheduler
        await wait_until(pilot, lambda: paused_messages(app), 30, "the pause message")
        (message,) = paused_messages(app)
        assert message.startswith("queue paused: trials #1, #2, #3 all failed within ")
        assert "with the same reason: exit code 2: train.py: error: unrecognized arguments: --lr " in message
        # Ticks go on (one every half second): nothing starts and nothing is said again.
        ticks = 0

        def ticked() -> bool:
            nonlocal ticks
            ticks += 1
            return ticks > 40   # two seconds of frames, several ticks
        await wait_until(pilot, ticked, 30, "some ticks")
        assert paused_messages(app) == [message]
        assert study.budget_used() == 3 and sched.fail_fast.paused_at is not None
        # n queues a setting: the user went on, and the queue starts it.
        await pilot.press("n")
        prompt = await screen_of(pilot, Prompt, "the sample prompt")
        prompt.query_one("Input").value = "1"
        await pilot.press("enter")
        await wait_until(pilot, lambda: study.budget_used() >= 4, 30, "a fourth trial to start")
