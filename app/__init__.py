"""The Flask application: factory, container, blueprints."""
