# Switchboard service image.  Configure with SWITCHBOARD_* environment variables
# (see app/settings.py); in production set SWITCHBOARD_DATABASE__URL, the AMI servers,
# SWITCHBOARD_AUTH__JWT_SECRET and SWITCHBOARD_AUTH__ADMIN_PASSWORD.  The runtime lock
# only: no embedded PostgreSQL (the demo extra) in the image, so a database URL is needed.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SWITCHBOARD_HOST=0.0.0.0 \
    SWITCHBOARD_PORT=8000

WORKDIR /srv/switchboard
COPY requirements.lock ./
RUN pip install --disable-pip-version-check -r requirements.lock \
    && useradd --system --home-dir /srv/switchboard --shell /usr/sbin/nologin switchboard

COPY alembic.ini ./
COPY migrations ./migrations
COPY routing ./routing
COPY cti ./cti
COPY app ./app
COPY deploy ./deploy

USER switchboard
EXPOSE 8000
# One process only: exactly one AMI consumer per Asterisk server.  Migrations are applied
# by the service at start (app.db.open_database).
CMD ["python", "-m", "app"]
