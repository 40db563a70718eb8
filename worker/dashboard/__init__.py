"""The operator dashboard: ``create_app(settings, factory=...)`` (``billsync dashboard``)."""

from worker.dashboard.app import create_app
from worker.dashboard.auth import DashboardAuthError

__all__ = ["DashboardAuthError", "create_app"]
