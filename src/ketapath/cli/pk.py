"""Commands of the pk area (registered by `ketapath.cli`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
