"""The sleep-time agent: run transitions, graph nodes, and the edit formats it reads."""
