"""Memory: blocks, edits, staging, the BlockStore and what it hands back, the transcript log."""
