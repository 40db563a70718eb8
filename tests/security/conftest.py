"""Fixtures of the security suite: a real billsync wired to the three sandboxes, the same
world the bad-input corpus uses (its fixtures, imported)."""

from tests.badinput.conftest import jira_module, migrated, world

__all__ = ["jira_module", "migrated", "world"]
