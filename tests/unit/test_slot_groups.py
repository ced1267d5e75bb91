"""The slot groups of the Cluster layout (adapters.caching.keys, decision 0008): what one script
touches is in one group, shared tags have no home, and the groups spread the users evenly."""

from __future__ import annotations

from collections import Counter
from uuid import uuid4

from adapters.caching import keys
from domain.users.queries import PageRequest, UserFilter


def test_a_users_entry_its_tag_and_its_state_share_one_group():
    user_id = uuid4()
    group = keys.slot_group(keys.user(user_id))
    assert group in keys.SLOT_GROUPS
    assert keys.slot_group(keys.user_state(user_id)) == group
    assert [keys.home_group(tag) for tag in keys.user_tags(user_id)] == [None, group]


def test_a_lookup_by_email_is_in_the_group_of_its_own_tag():
    key = keys.user_email("Ada@Example.org")
    assert [keys.home_group(tag) for tag in keys.user_email_tags("Ada@Example.org")] == [
        None,
        None,
        keys.slot_group(key),
    ]


def test_the_pages_of_the_list_share_the_group_of_their_tag():
    pages = [keys.user_collection(UserFilter(), PageRequest(page, 20)) for page in range(1, 20)]
    assert {keys.slot_group(page) for page in pages} == {keys.home_group(keys.USER_COLLECTION)}


def test_shared_tags_and_tags_of_no_service_name_have_no_home():
    for tag in (keys.USER, keys.USER_EMAIL, "item", "narrow", "x" * 300):
        assert keys.home_group(tag) is None, tag


def test_users_spread_over_every_group():
    groups = Counter(keys.slot_group(keys.user(uuid4())) for _ in range(25_600))
    assert set(groups) == set(keys.SLOT_GROUPS)
    assert max(groups.values()) < 3 * min(groups.values())
