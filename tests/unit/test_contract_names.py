"""User scripts import the contract modules by path: every public name they had before the modules
were split by job (issue 10) and moved into packages by job (issue 21: the trainer side into
tui_tuner/trainer/, the torch helpers into tui_tuner/integrations/) must still be importable from the
same place, as the same objects."""

from __future__ import annotations

import importlib

import pytest

CONTRACT = {
    "tui_tuner.trainer": [
        "CHECK_INTERVAL", "FLUSH_INTERVAL", "P", "PAUSE_POLL", "Params", "Run", "changes", "checkpoint_saved",
        "flush", "last_step", "on_checkpoint", "params", "pending_changes", "poll", "report", "resume_path",
        "run_dir", "should_stop",
    ],
    "tui_tuner.trainer_torch": [
        "FORMAT", "NAMES", "Resumed", "apply_changes", "attach", "load_state", "rng_state", "save_state",
        "set_rng_state", "update",
    ],
    "tui_tuner.protocol": [
        "CKPT", "CMD_CHECKPOINT", "CMD_PAUSE", "CMD_RESUME", "CMD_SET", "CMD_STOP", "COMMANDS", "CONTROL",
        "Command", "ENV_RUN_DIR", "EVENTS", "EVENTS_KINDS", "EV_APPLIED", "EV_CHECKPOINT", "EV_DONE",
        "EV_PAUSED", "EV_RESUMED", "EXIT", "Event", "JsonlTail", "LAUNCH", "NAN", "NEG_INF", "OUTPUT", "PARAMS",
        "POS_INF", "PRIVATE_DIR", "PRIVATE_FILE", "RC_NOT_EXECUTABLE", "RC_NOT_FOUND", "Tail", "append_line",
        "atomic_file", "checkpoint_relpath", "decode_metric", "decode_metrics", "dumps", "encode_metric",
        "last_lines", "read_json", "resolve_resume", "run_id", "write_atomic", "write_json_atomic",
    ],
    # The shim stays at `python -m tui_tuner.launch`; the tuner's side of it (start, reap, alive,
    # signal) moved to tui_tuner.runtime.pids (issue 21: no module over ~400 lines). Those were never
    # imported by training scripts: the tuner calls them.
    "tui_tuner.launch": ["ATTEMPT_FLAG", "FORWARDED", "RunError", "USAGE", "attempt_lock", "main", "new_attempt",
                         "signal_name"],
    "tui_tuner.runtime.pids": ["group_alive", "pid_alive", "reap", "send_signal", "signal_group", "spawn"],
    "tui_tuner.errors": ["InputError", "PlotError", "RunError", "SpaceError", "StudyError", "TunerError"],
    "tui_tuner.integrations.lightning": ["TunerCallback", "ckpt_path"],
    "tui_tuner.integrations.hf": ["TunerCallback"],
}


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_the_contract_modules_keep_their_public_names(module):
    mod = importlib.import_module(module)
    missing = [name for name in CONTRACT[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lost {missing}"


def test_the_moved_tail_readers_are_the_same_objects_under_protocol():
    from tui_tuner.trainer import protocol, tailing

    assert (protocol.Tail, protocol.JsonlTail, protocol.last_lines) == (
        tailing.Tail, tailing.JsonlTail, tailing.last_lines)


def test_the_old_paths_are_the_moved_modules_themselves():
    # A script that patches tui_tuner.protocol or tui_tuner.trainer_torch patches what the code uses.
    import tui_tuner.integrations.torch as helpers
    import tui_tuner.protocol as old_protocol
    import tui_tuner.trainer_torch as old_helpers
    from tui_tuner.trainer import protocol

    assert old_protocol is protocol and old_helpers is helpers
    from tui_tuner import protocol as again
    from tui_tuner import trainer_torch as again_helpers

    assert again is protocol and again_helpers is helpers
