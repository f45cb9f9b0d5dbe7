"""ketapath.web."""
