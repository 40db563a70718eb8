# One image for every billsync process: migrate, worker, beat, enqueue, sandbox (and later
# the dashboard). docker-compose.yml picks the subcommand; healthchecks live there too.
#   docker build -t billsync:local .
#   docker run --rm billsync:local --help
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /app

# Runtime dependencies first, so a code change does not reinstall them. The names come from
# pyproject.toml's [project].dependencies, the exact versions from requirements.lock (used as
# constraints: the lock also pins dev tools, which the image does not need).
COPY requirements.lock pyproject.toml ./
RUN python -m pip install pip==26.3 \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/runtime.txt \
    && pip install -r /tmp/runtime.txt setuptools -c requirements.lock \
    && rm /tmp/runtime.txt

# The code. Installed (not editable), so the working directory does not matter at run time.
COPY README.md alembic.ini ./
COPY worker ./worker
COPY connectors ./connectors
COPY sandbox ./sandbox
COPY schedules ./schedules
COPY examples ./examples
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf build *.egg-info

# Not root. /var/lib/billsync is the one writable place (celery beat's schedule file, a
# SQLite state file if a config uses a relative sqlite:/// URL); the code stays root-owned.
RUN useradd --create-home --uid 10001 --user-group billsync \
    && install -d -o billsync -g billsync /var/lib/billsync
USER billsync
WORKDIR /var/lib/billsync

ENTRYPOINT ["billsync"]
CMD ["--help"]
