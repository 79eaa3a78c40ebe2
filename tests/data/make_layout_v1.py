"""Write the layout-1 fixture: a database made by sleepagent 0.1.0 before the layout had a version.

Run with that release (before pending markers existed)::

    python tests/data/make_layout_v1.py tests/data/layout_v1.db tests/data/layout_v1_items.json

It leaves three threads: ``t-ada`` (user ada) with two turns no sleep run has
covered; ``t-bob`` (user bob) slept once, then one more turn, pending; ``t-cy``
(user cy) fully covered. The JSON file holds every store item, so the PostgreSQL
test can load the same layout-1 data into its own database.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sleepagent import SleepTimeAgent
from sleepagent.testing import ScriptedChatModel, rethink


def main(db: Path, items_out: Path) -> None:
    chat = ScriptedChatModel(["hello Ada", "noted", "hi Bob", "ok", "hi Cy"])
    sleep = ScriptedChatModel([rethink("human", "Bob"), rethink("human", "Cy")])
    with SleepTimeAgent(chat, sleep_model=sleep, db=db, scheduler=None) as agent:
        agent.chat("I'm Ada", thread_id="t-ada", user_id="ada")
        agent.chat("I like tea", thread_id="t-ada", user_id="ada")
        agent.chat("I'm Bob", thread_id="t-bob", user_id="bob")
        agent.sleep(thread_id="t-bob", user_id="bob")
        agent.chat("I moved", thread_id="t-bob", user_id="bob")
        agent.chat("I'm Cy", thread_id="t-cy", user_id="cy")
        agent.sleep(thread_id="t-cy", user_id="cy")
        items = agent.blocks.store.search(("sleepagent",), limit=10_000)
    rows = [
        {"namespace": list(item.namespace), "key": item.key, "value": item.value} for item in items
    ]
    rows.sort(key=lambda row: (row["namespace"], row["key"]))
    items_out.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
