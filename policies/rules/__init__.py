"""The request-level rules, one module per family, and `listing`, the explicit list of them all.

Each rule declares its conditions with their default action and the documented rejection behind
every default block (`evidence` holds the citations several rules share).
"""
