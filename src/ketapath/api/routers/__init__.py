"""The /api/v1 routers, one per capability."""
