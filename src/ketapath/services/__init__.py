"""ketapath.services."""
