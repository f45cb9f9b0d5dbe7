"""ketapath.interop."""
