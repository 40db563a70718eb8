"""Tests of the loopback API sandboxes, over real HTTP."""
