"""The LangGraph graph: building it, its state, the identity context, node plumbing."""
