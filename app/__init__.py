"""The Flask application: factory, container, blueprints."""

from importlib import metadata

DISTRIBUTION = "user-service"
try:
    VERSION = metadata.version(DISTRIBUTION)  # setup.cfg's, as installed
except metadata.PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "0+unknown"
