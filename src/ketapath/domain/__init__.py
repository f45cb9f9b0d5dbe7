"""ketapath.domain."""
