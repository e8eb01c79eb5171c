"""The shutdown watchdog ends a process whose event loop is stuck: nothing the loop does (a
blocking call, a cleanup that never returns) can keep a stopping server alive past
AGENTLOG_SHUTDOWN_SECONDS."""

from __future__ import annotations

import subprocess
import sys

from agentlog.transport.http_server import UNFINISHED_SHUTDOWN_EXIT

STUCK = """
import time
from agentlog.transport.http_server import ShutdownWatchdog
ShutdownWatchdog(0.2).start()
time.sleep(600)  # the loop, stuck in a blocking call
"""


def test_a_stuck_process_exits_with_the_unfinished_status() -> None:
    done = subprocess.run([sys.executable, "-c", STUCK], capture_output=True, text=True, timeout=60)
    assert done.returncode == UNFINISHED_SHUTDOWN_EXIT
    assert "did not finish within AGENTLOG_SHUTDOWN_SECONDS=0.2" in done.stderr


def test_a_cancelled_watchdog_lets_the_process_end_on_its_own() -> None:
    script = STUCK.replace(
        "ShutdownWatchdog(0.2).start()", "w = ShutdownWatchdog(0.2)\nw.start()\nw.cancel()"
    ).replace("time.sleep(600)", "time.sleep(0.5)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 0
