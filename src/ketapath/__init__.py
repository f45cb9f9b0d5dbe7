"""ketapath: software for running a ketamine infusion programme for refractory chronic pain.

It supports clinical decisions; it never takes them. Every warning, recommendation and limit
names the rule that produced it and that rule's source.
"""

__version__ = "0.1.0"
