"""The Runloop-compatible REST API over any Backend: one module per resource, thin handlers.

`build_rest_app(backend, token=, host=)` is the public API; the modules behind it are private.
"""

from .app import build_rest_app

__all__ = ["build_rest_app"]
