"""WSGI entry point: `gunicorn wsgi:app`."""

from app.factory import create_app
from app.logs import configure

configure()
app = create_app()
