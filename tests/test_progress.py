"""Progress of a long stage (``harness.progress``): tqdm's live bar on a real terminal (a pseudo-terminal here),
its meter as a plain line every few seconds in a log, nothing under ``-q``; any plain callable still gets lines."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

from harness.progress import STEP, Channel, LineBar, bar_over, open_bar


class Clock:
    """A clock the test moves by hand, so "every ten seconds" is checked without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_the_meter_every_interval_and_once_at_the_end():
    said: list[str] = []
    clock = Clock()
    bar = LineBar(said.append, "fine-tune", 100, interval=10.0, clock=clock)
    for step in range(1, 101):
        clock.now = step * 0.5  # two steps a second: a line at 10 s, 20 s, ... 50 s
        bar.update(step, f"epoch {step / 50:.2f}/2 loss 0.4")
    bar.close()
    assert len(said) == 5 and all(line.startswith(f"{STEP}fine-tune: ") for line in said), said
    assert said[0].startswith(f"{STEP}fine-tune:  20%|") and "20/100 [00:10<00:40,  2.00step/s, epoch 0.40/2" in said[0]
    assert "100/100 [00:50<00:00" in said[-1] and "\r" not in "".join(said)  # a log line, never a redraw
    bar.close()
    assert len(said) == 5  # closing again says nothing new


def test_closing_says_the_last_state_unless_it_was_just_said():
    said: list[str] = []
    clock = Clock()
    bar = LineBar(said.append, "evaluation", 7, unit="batch", interval=10.0, clock=clock)
    bar.update(3)
    bar.close()
    assert len(said) == 1 and "3/7" in said[0] and "batch" in said[0]


def test_any_callable_gets_plain_lines_and_quiet_drops_steps_and_bars():
    said: list[str] = []
    with bar_over(said.append, "fine-tune", 4) as bar:  # a list's append has no bars: lines
        bar.update(4)
        bar.write("harness:   epoch 1.00/1 eval_loss 0.3")
    assert said[0] == "harness:   epoch 1.00/1 eval_loss 0.3" and "4/4" in said[1]
    quiet_said: list[str] = []
    quiet = Channel(quiet_said.append, quiet=True, live=lambda: True)
    with bar_over(quiet, "fine-tune", 4) as bar:
        bar.update(4)
        bar.write(f"{STEP}epoch 1.00/1 eval_loss 0.3")
    quiet("harness: fine-tuned in 4s")
    quiet(f"{STEP}fine-tune stage in 4.1s")
    assert quiet_said == ["harness: fine-tuned in 4s"]
    loud: list[str] = []
    assert type(open_bar(Channel(loud.append), "x", 1)) is LineBar  # not a terminal: lines


DRIVE = """
import time
from harness.progress import bar_over, terminal_channel
channel = terminal_channel()
with bar_over(channel, "fine-tune", 5) as bar:
    for step in range(1, 6):
        time.sleep(0.25)
        bar.update(step, f"loss {1 / step:.2f}")
    bar.write("harness:   epoch 1.00/1 eval_loss 0.2000")
channel("harness: fine-tuned in 1s")
"""


def run_on(stderr_is_a_terminal: bool) -> str:
    """What the script above writes to stderr and stdout, stderr a pseudo-terminal or a pipe."""
    if not stderr_is_a_terminal:
        done = subprocess.run([sys.executable, "-c", DRIVE], capture_output=True, text=True, timeout=60, check=True)
        return done.stderr + done.stdout
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    child = subprocess.Popen([sys.executable, "-c", DRIVE], stderr=follower, stdout=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child is gone and the terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert child.wait(timeout=60) == 0
    os.close(leader)
    return b"".join(chunks).decode()


def test_a_terminal_gets_a_live_bar_and_a_log_gets_lines():
    live = run_on(stderr_is_a_terminal=True)
    redraws = [part for part in live.split("\r") if "fine-tune:" in part]
    assert len(redraws) >= 3, live  # the one bar drawn again in place as steps finish
    assert any("5/5" in part and "loss 0.20" in part for part in redraws), live
    assert "eval_loss 0.2000" in live and "harness: fine-tuned in 1s" in live
    logged = run_on(stderr_is_a_terminal=False)
    assert "\r" not in logged and logged.count("fine-tune:") == 1, logged  # 1.25 s: only the closing line
    assert f"{STEP}fine-tune: 100%|" in logged and "5/5" in logged
