"""The primary agent: renders memory, calls the chat model, logs the turn."""
