"""Schemathesis against the app's own OpenAPI document: no server errors, and every response
(status, headers, body) conforms to the schema. What the fuzzer creates is deleted again
through the DeleteUser command after each case, so cases do not pile up state."""

from __future__ import annotations

from urllib.parse import urlparse
from uuid import UUID

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.factory import create_app
from domain.users.commands import DeleteUser
from tests.settings import TEST_ENV

# A body limit far above what the generator produces: schemathesis does not count 413 among
# the ways to reject a schema-violating body (the limit itself is tested in test_bad_input).
app = create_app({**TEST_ENV, "MAX_CONTENT_LENGTH": str(1 << 20)})
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    # Every default check but one: the domain's field rules (a digit and an uppercase letter in
    # a password, no leading digit in initials) go beyond what JSON Schema lets the generator
    # satisfy, so schema-valid data may rightly get a 422. Those rules have their own tests.
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if response.status_code == 201 and "Location" in response.headers:
        user_id = UUID(urlparse(response.headers["Location"]).path.rsplit("/", 1)[-1])
        app.extensions["container"].bus().handle(DeleteUser(user_id=user_id))
