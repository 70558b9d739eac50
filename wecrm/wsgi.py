"""Entry point for gunicorn: `gunicorn wecrm.wsgi:app`."""

from wecrm.app import create_app

app = create_app()
