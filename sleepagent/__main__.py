"""``python -m sleepagent``: the same as the ``sleepagent`` command."""

from sleepagent.cli.commands import main

raise SystemExit(main())
