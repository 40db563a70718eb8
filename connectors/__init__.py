"""Adapters to the outside APIs: Kukkingu (invoicing), Jira and GitHub (time sources).

Vendor shapes stop here: connectors return the project's own typed values and raise the
project's error taxonomy (:mod:`worker.errors`).
"""
