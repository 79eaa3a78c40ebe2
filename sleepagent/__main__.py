"""``python -m sleepagent``: the same as the ``sleepagent`` command."""

from sleepagent.cli import main

raise SystemExit(main())
