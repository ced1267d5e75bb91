"""WSGI entry point: `gunicorn wsgi:app`, from the checkout or from anywhere once installed.

Each worker builds its own app. A setting or schema that stops the service is reported in a
few plain lines and ends the worker with gunicorn's "app failed to load" status, so the master
stops too instead of starting worker after worker."""

import sys

from app.config import ConfigError
from app.factory import create_app
from app.instance import StartupError, describe
from app.logs import configure

APP_LOAD_ERROR = 4  # gunicorn.arbiter.Arbiter.APP_LOAD_ERROR

configure()
try:
    app = create_app()
except (ConfigError, StartupError) as error:
    print(describe(error), file=sys.stderr, flush=True)
    sys.exit(APP_LOAD_ERROR)
