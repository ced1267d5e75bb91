"""The baseline for bench/http_read.py: a bare Flask app that answers `GET /api/users/<id>` with
a constant body of the same shape and size as the service's user representation, and the same
headers (ETag, Cache-Control, Vary, Content-Language), built once at import. What the service
costs beyond this is its own work: routing through flask-smorest, the container, the message
bus, the cache or the database, and conditional-request handling.

    gunicorn -w 2 -k sync --chdir bench bare_app:app

`/health/live` exists only so the harness can wait for this server as it does for the service.
"""

from __future__ import annotations

import json

from flask import Flask, Response

# The harness registers the user it reads from the service with this email, so both bodies
# have the same length.
EMAIL = "bench@example.com"
USER_ID = "5f0c3b9e-8a41-4c7d-9e2f-1a6b8c0d4e7f"
BODY = json.dumps(
    {"id": USER_ID, "email": EMAIL, "initials": "AB", "confirmed": False, "roles": ["user"]},
    ensure_ascii=False,
).encode()
HEADERS = (
    ("Content-Type", "application/json"),
    ("ETag", f'"r1-{USER_ID.replace("-", "")}-1"'),
    ("Cache-Control", "private, no-cache"),
    ("Vary", "Accept, Authorization, Accept-Language"),
    ("Content-Language", "en"),
)

app = Flask(__name__)


@app.get("/api/users/<user_id>")
def user(user_id: str) -> Response:
    return Response(BODY, headers=HEADERS)


@app.get("/health/live")
def live() -> Response:
    return Response(b'{"status": "ok"}', headers=(("Content-Type", "application/json"),))
