"""If-Match and If-None-Match are read as RFC 9110 lists of entity-tags (commas inside a tag,
empty elements, white space), and the schema's pattern for them is the one the parser uses."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api.docs import CONDITION
from app.http.conditional import MalformedCondition, parse_condition

opaque = st.text(
    st.sampled_from([chr(c) for c in (0x21, *range(0x23, 0x7F), 0x80, 0xFF)] + [","]), max_size=8
)
tags = st.tuples(st.booleans(), opaque)
space = st.text(" \t", max_size=2)


@settings(max_examples=500)
@given(st.lists(st.one_of(tags, st.none()), min_size=1, max_size=32), space, space)
def test_a_list_of_tags_reads_back_as_its_tags(elements, before, after):
    written = ",".join(
        before + (f'{"W/" if tag[0] else ""}"{tag[1]}"' if tag else "") + after for tag in elements
    )
    assert parse_condition(written).tags == tuple(tag for tag in elements if tag)
    assert re.fullmatch(CONDITION["pattern"], written)


@pytest.mark.parametrize("header", ['"', "x", '"a"x', 'W/ "a"', '"a" "b"', ",".join(['"a"'] * 33), "*,*"])
def test_anything_else_is_malformed_and_outside_the_pattern(header):
    with pytest.raises(MalformedCondition):
        parse_condition(header)
    assert not re.fullmatch(CONDITION["pattern"], header)
