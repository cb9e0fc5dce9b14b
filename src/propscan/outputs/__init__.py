"""Outputs: one registry of writers, the terminal view, the HTML report and its charts."""
