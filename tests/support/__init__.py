"""Helpers the test fixtures use (not tests themselves)."""
