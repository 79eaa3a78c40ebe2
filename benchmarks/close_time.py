"""How long a script that creates an agent, chats once and closes takes to exit.

The idle timer is still pending when it closes (idle_seconds=600): closing must
drop it at once. Prints the wall time of each run of a fresh interpreter and of
the create-chat-close part inside it. Run: .venv/bin/python benchmarks/close_time.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = """
import sys, time
from sleepagent import SleepConfig, SleepTimeAgent
from sleepagent.testing import ScriptedChatModel
began = time.perf_counter()
config = SleepConfig(idle_seconds=600)
agent = SleepTimeAgent(ScriptedChatModel(["hi"]), db=sys.argv[1], config=config)
agent.chat("hello", thread_id="t1")
chatted = time.perf_counter()
agent.close()
print(f"{chatted - began:.4f} {time.perf_counter() - chatted:.4f}")
"""


def main(runs: int = 5) -> None:
    walls, closes = [], []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(runs):
            began = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", SCRIPT, str(Path(folder) / f"{i}.db")],
                capture_output=True,
                text=True,
                check=True,
            )
            walls.append(time.perf_counter() - began)
            closes.append(float(done.stdout.split()[1]))
    print(f"{runs} runs of: start Python, import, create agent, chat, close with a timer pending")
    print(f"process wall time: median {statistics.median(walls):.2f} s, max {max(walls):.2f} s")
    median, worst = statistics.median(closes) * 1000, max(closes) * 1000
    print(f"close() itself: median {median:.1f} ms, max {worst:.1f} ms")


if __name__ == "__main__":
    main()
