"""ketapath.api."""
