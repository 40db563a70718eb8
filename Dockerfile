# One image for every billsync process (migrate, worker, beat, dashboard, sandbox).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first (pinned), so code changes do not reinstall them.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml README.md alembic.ini ./
COPY worker ./worker
COPY connectors ./connectors
COPY sandbox ./sandbox
COPY schedules ./schedules
COPY examples ./examples
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && useradd --create-home --uid 10001 billsync
USER billsync

ENTRYPOINT ["billsync"]
CMD ["--help"]
