"""Arguments checked by the REST schemas (app.api.schemas): the same field rules, the same
messages, whichever way a value arrives."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from app.graphql.errors import InvalidArguments


def load(schema: ma.Schema, **values: Any) -> dict[str, Any]:
    """The values the schema accepts (an argument not given is left out); raises
    InvalidArguments with its messages per field."""
    try:
        return schema.load({name: value for name, value in values.items() if value is not None})
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        raise InvalidArguments(messages) from None
