"""ketapath.reports."""
