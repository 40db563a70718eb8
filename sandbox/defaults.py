"""Where the sandbox listens by default: light to import (the CLI's options read these)."""

DEFAULT_HOST = "127.0.0.1"
KUKKINGU_PORT = 8730
JIRA_PORT = 8731
GITHUB_PORT = 8732
CLINIKO_PORT = 8733
