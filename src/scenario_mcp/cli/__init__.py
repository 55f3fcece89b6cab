"""scenario-mcp [serve|api|demo|setup|scenario|gc|bench|shell]: the command line, one module per
command group (servers: serve and api; bench; local_engine: setup, gc and shell; the scenario
files' commands are tasks/commands.py), with the options they share (options) and the backend
they open (backends). entry.py puts the parser together and dispatches."""

from .entry import build_parser, main

__all__ = ["build_parser", "main"]
