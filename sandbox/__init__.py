"""Loopback emulations of the three APIs billsync talks to, for tests, the demo and benchmarks.

Each emulation is strict (auth, validation, status rules) and faithful to the documented
behaviour; see ``docs/sandbox.md``.
"""
