"""The operations layer: every state change an operator asks for, one function each, with its audit row."""
