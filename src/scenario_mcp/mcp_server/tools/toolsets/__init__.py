"""The toolsets: one module per group of tools (the `Toolset` names in spec.py), each listing its
tools' specs in the order tools/list shows them. catalogue.py puts them together."""
