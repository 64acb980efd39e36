"""The launch shim with real processes: exit.json, output.log, sessions, signals, argv safety, reaping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waiting import wait_for

from tui_tuner.runtime import pids
from tui_tuner.trainer import protocol as P

PY = sys.executable


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def wait_exit(run: Path, pid: int) -> dict:
    """exit.json once written, and the shim reaped."""
    ex = wait_for(lambda: P.read_json(run / P.EXIT))
    wait_for(lambda: not pids.pid_alive(pid))
    return ex


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


# A child that writes its pid, then waits for a "go" file (or a signal).
WAITER = """
import os, sys, time
open(sys.argv[1] + ".tmp", "w").write(str(os.getpid())); os.replace(sys.argv[1] + ".tmp", sys.argv[1])
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
print("went", flush=True)
"""


def spawn_waiter(tmp_path: Path, go: str = "never") -> tuple[Path, int]:
    """(run dir, shim pid) of WAITER under the shim: it writes tmp_path/child.pid and waits for tmp_path/`go`."""
    s = script(tmp_path, "wait.py", WAITER)
    run = tmp_path / "run"
    return run, pids.spawn(run, [PY, str(s), str(tmp_path / "child.pid"), str(tmp_path / go)])


def waiter_pid(tmp_path: Path) -> int:
    """The waiter's own pid, once it has written it."""
    return wait_for(lambda: read_int(tmp_path / "child.pid"))


def test_success_writes_exit_json_and_output(tmp_path):
    s = script(tmp_path, "ok.py", "import os, sys\nprint('hello', os.environ['TUI_TUNER_RUN_DIR'])\n"
                                  "print('to stderr', file=sys.stderr)\n")
    run = tmp_path / "study" / "runs" / "t0001"
    pid = pids.spawn(run, [PY, str(s)])
    ex = wait_exit(run, pid)
    assert ex["returncode"] == 0 and ex["signal"] is None and ex["signal_name"] is None
    assert abs(ex["ended"] - time.time()) < 60 and isinstance(ex["pid"], int)
    log = (run / P.OUTPUT).read_text()
    assert f"hello {run.resolve()}" in log and "to stderr" in log


def test_output_log_is_appended_not_truncated(tmp_path):
    s = script(tmp_path, "ok.py", "print('second')\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / P.OUTPUT).write_text("first\n")
    wait_exit(run, pids.spawn(run, [PY, str(s)]))
    assert (run / P.OUTPUT).read_text().splitlines() == ["first", "second"]


@pytest.mark.parametrize(("body", "rc", "text"), [
    ("raise SystemExit(3)\n", 3, None),
    ("raise ValueError('boom')\n", 1, "ValueError: boom"),
])
def test_crash_records_returncode_and_traceback(tmp_path, body, rc, text):
    s = script(tmp_path, "crash.py", body)
    run = tmp_path / "run"
    ex = wait_exit(run, pids.spawn(run, [PY, str(s)]))
    assert ex["returncode"] == rc and ex["signal"] is None
    if text:
        assert text in (run / P.OUTPUT).read_text()


def test_sigterm_to_the_shim_is_forwarded_and_recorded(tmp_path):
    run, pid = spawn_waiter(tmp_path)
    waiter_pid(tmp_path)
    assert pids.send_signal(pid, signal.SIGTERM)
    ex = wait_exit(run, pid)
    assert ex["signal"] == signal.SIGTERM and ex["returncode"] == -signal.SIGTERM
    assert ex["signal_name"] == "SIGTERM"


def test_child_killed_by_a_signal(tmp_path):
    run, pid = spawn_waiter(tmp_path)
    child = waiter_pid(tmp_path)
    os.kill(child, signal.SIGKILL)
    ex = wait_exit(run, pid)
    assert ex["signal"] == signal.SIGKILL and ex["returncode"] == -signal.SIGKILL


def test_own_session_and_group(tmp_path):
    run, pid = spawn_waiter(tmp_path, "go")
    child = waiter_pid(tmp_path)
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid       # the shim leads a new session
    assert os.getsid(child) == pid and os.getpgid(child) == pid   # the trainer is in its group
    assert os.getsid(pid) != os.getsid(0)
    (tmp_path / "go").touch()
    assert wait_exit(run, pid)["returncode"] == 0


def test_run_survives_sighup_to_the_tuners_group(tmp_path):
    """A fake tuner spawns a run, then its whole process group is hung up (a dropped SSH session)."""
    s = script(tmp_path, "wait.py", WAITER)
    tuner = script(tmp_path, "tuner.py", "import sys, time\nfrom tui_tuner.runtime import pids\n"
                                         "print(pids.spawn(sys.argv[1], sys.argv[2:]), flush=True)\n"
                                         "time.sleep(60)\n")
    run, go = tmp_path / "run", tmp_path / "go"
    proc = subprocess.Popen([PY, str(tuner), str(run), PY, str(s), str(tmp_path / "child.pid"), str(go)],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        shim = int(proc.stdout.readline())
        child = waiter_pid(tmp_path)
        os.kill(shim, signal.SIGHUP)              # the shim itself shrugs off a SIGHUP
        os.killpg(proc.pid, signal.SIGHUP)        # the tuner's group: the tuner dies
        assert proc.wait(10) == -signal.SIGHUP
        time.sleep(0.2)
        assert pids.pid_alive(shim) and pids.pid_alive(child)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    go.touch()
    ex = wait_for(lambda: P.read_json(run / P.EXIT))
    assert ex["returncode"] == 0
    assert "went" in (run / P.OUTPUT).read_text()


def test_argv_with_shell_metacharacters_arrives_intact(tmp_path):
    evil = ["; rm -rf ~", "$(touch pwned)", "`touch pwned2`", "a b", "*", "'\"", "|| touch pwned3",
            "--lr=1; touch pwned4", "\n", "$HOME"]
    s = script(tmp_path, "args.py", "import json, sys\nprint('ARGS' + json.dumps(sys.argv[1:]))\n")
    run = tmp_path / "run"
    pid = pids.spawn(run, [PY, str(s), *evil], cwd=tmp_path)
    assert wait_exit(run, pid)["returncode"] == 0
    line = next(ln for ln in (run / P.OUTPUT).read_text().splitlines() if ln.startswith("ARGS"))
    assert json.loads(line[4:]) == evil
    assert not list(tmp_path.glob("pwned*"))


def test_relative_command_resolves_in_cwd(tmp_path):
    script(tmp_path, "rel.py", "import os\nprint('cwd', os.getcwd())\n")
    run = tmp_path / "runs" / "r"
    assert wait_exit(run, pids.spawn(run, [PY, "rel.py"], cwd=tmp_path))["returncode"] == 0
    assert f"cwd {tmp_path}" in (run / P.OUTPUT).read_text()


def test_env_is_passed_with_the_run_dir_added(tmp_path):
    s = script(tmp_path, "env.py", "import os\nprint(os.environ.get('MY_VAR'), os.environ['TUI_TUNER_RUN_DIR'])\n")
    run = tmp_path / "run"
    env = {**os.environ, "MY_VAR": "xyz"}
    wait_exit(run, pids.spawn(run, [PY, str(s)], env=env))
    assert f"xyz {run.resolve()}" in (run / P.OUTPUT).read_text()


@pytest.mark.parametrize("kind", ["missing", "not_executable"])
def test_a_command_that_cannot_run_is_reported(tmp_path, kind):
    if kind == "missing":
        cmd, rc = [str(tmp_path / "no-such-command")], P.RC_NOT_FOUND
    else:
        f = script(tmp_path, "plain.txt", "not a program\n")
        f.chmod(0o644)
        cmd, rc = [str(f)], P.RC_NOT_EXECUTABLE
    run = tmp_path / "run"
    pid = pids.spawn(run, cmd)
    ex = wait_exit(run, pid)
    assert ex["returncode"] == rc and ex["signal"] is None and ex["error"]
    assert "cannot run" in (run / P.OUTPUT).read_text()


def test_spawn_refuses_an_empty_command(tmp_path):
    from tui_tuner.errors import RunError

    with pytest.raises(RunError):
        pids.spawn(tmp_path / "run", [])


def test_usage_error_exits_2(tmp_path):
    r = subprocess.run([PY, "-m", "tui_tuner.launch", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "usage:" in r.stderr


def test_output_reaches_the_log_before_exit(tmp_path):
    """Python trainers run unbuffered, so a zero-code run's metric lines are visible as they happen."""
    s = script(tmp_path, "p.py", "import os, sys, time\nprint('step 1 | loss 0.5')\n"
                                 "while not os.path.exists(sys.argv[1]):\n    time.sleep(0.01)\n")
    run, go = tmp_path / "run", tmp_path / "go"
    pid = pids.spawn(run, [PY, str(s), str(go)])
    wait_for(lambda: "loss 0.5" in (run / P.OUTPUT).read_text() if (run / P.OUTPUT).exists() else False)
    assert pids.pid_alive(pid)
    go.touch()
    wait_exit(run, pid)


def test_ended_shim_is_reaped_not_left_a_zombie(tmp_path):
    s = script(tmp_path, "ok.py", "pass\n")
    run = tmp_path / "run"
    pid = pids.spawn(run, [PY, str(s)])
    wait_for(lambda: P.read_json(run / P.EXIT))
    wait_for(lambda: pids._proc_state(pid) == "Z")   # exited, not yet collected
    assert not pids.pid_alive(pid)                    # a zombie is dead, and gets reaped
    assert not os.path.exists(f"/proc/{pid}")
    assert pids.reap(pid) is None


def test_pid_alive_treats_any_zombie_as_dead():
    proc = subprocess.Popen([PY, "-c", "pass"])
    try:
        wait_for(lambda: pids._proc_state(proc.pid) == "Z")
        assert not pids.pid_alive(proc.pid)
    finally:
        proc.wait()
    assert not pids.pid_alive(proc.pid)


def test_pid_alive_checks_the_run_dir(tmp_path):
    run, pid = spawn_waiter(tmp_path, "go")
    try:
        # Alive the moment spawn returns, whatever instant of its exec the shim is at.
        assert pids.pid_alive(pid, run)
        assert not pids.pid_alive(pid, tmp_path / "other")
    finally:
        (tmp_path / "go").touch()
        wait_exit(run, pid)


def test_a_shim_caught_mid_exec_is_not_taken_for_dead(tmp_path, monkeypatch):
    # Between execve replacing the shim's memory and the kernel setting its arguments, /proc shows an
    # empty command line, and Popen has already returned. A second tuner adopting the study then
    # settled a live run as ended (seen under load in the scheduler's adopt test).
    run, pid = spawn_waiter(tmp_path, "go")
    real_open = open
    empty = [3]

    def mid_exec(path, *args, **kw):
        if path == f"/proc/{pid}/cmdline" and empty[0]:
            empty[0] -= 1
            return real_open(os.devnull, "rb")
        return real_open(path, *args, **kw)

    try:
        wait_for(lambda: pids.pid_alive(pid, run))
        monkeypatch.setattr(pids, "open", mid_exec, raising=False)
        assert pids.pid_alive(pid, run) and empty[0] == 0
    finally:
        (tmp_path / "go").touch()
        wait_exit(run, pid)


def test_group_stop_continue_and_kill(tmp_path):
    """Zero-code pause: SIGSTOP/SIGCONT reach the whole group; SIGKILL ends it (no exit.json then)."""
    run, pid = spawn_waiter(tmp_path)
    child = waiter_pid(tmp_path)
    assert pids.send_signal(pid, signal.SIGSTOP)
    wait_for(lambda: pids._proc_state(child) == "T" and pids._proc_state(pid) == "T")
    assert pids.send_signal(pid, signal.SIGCONT)
    wait_for(lambda: pids._proc_state(child) in ("S", "R"))
    assert pids.send_signal(pid, signal.SIGKILL)
    wait_for(lambda: not pids.pid_alive(pid) and not pids.group_alive(pid))
    assert not (run / P.EXIT).exists()


def test_trainer_outlives_a_killed_shim_and_can_still_be_stopped(tmp_path):
    run, pid = spawn_waiter(tmp_path)
    child = waiter_pid(tmp_path)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pids.pid_alive(pid))
    assert pids.group_alive(pid) and pids.pid_alive(child)
    assert pids.send_signal(pid, signal.SIGTERM)   # falls back to the group
    wait_for(lambda: not pids.group_alive(pid))
