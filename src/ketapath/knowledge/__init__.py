"""ketapath.knowledge."""
