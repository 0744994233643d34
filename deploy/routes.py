"""The HTTP routes as ``app.py`` declares them: the one list the gateway's template
(``deploy.merge``) and the OpenAPI document (``scripts/openapi.py``) are both built from, so
neither can name a route the app does not serve or miss one it does."""

from __future__ import annotations


def routes() -> dict[str, dict[str, list[str]]]:
    """Path → method (lowercase) → path parameters, as app.py declares them."""
    from app import app

    return {
        path: {method.lower(): list(entry.view_args) for method, entry in methods.items()}
        for path, methods in app.routes.items()
    }
