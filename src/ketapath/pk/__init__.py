"""ketapath.pk."""
