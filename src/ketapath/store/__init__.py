"""ketapath.store."""
