"""Celery beat schedules, one entry per configured source (built in the worker issue)."""
