"""The ``sleepagent`` command: its subcommands, the terminal chat, the offline demo."""
