"""The evaluation loop over the engine: an agent run over a suite of scenarios (runner, agents),
its results (results), and the report people look at (report)."""
