"""ProfileSource and ProfilePrompts: prompts from training interactions only, ordered, capped, replaceable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from darec.data import Interactions
from darec.profiles import ProfilePrompts, ProfileSource
from tests.profiles.conftest import TITLES


def test_user_prompts_list_training_items_only(profile_data):
    data, log = profile_data
    source = ProfileSource(data, log)
    prompts = ProfilePrompts()
    for user in range(data.num_users):
        text = prompts.prompt(source, "user", user)
        trained = set(data.train[data.train[:, 0] == user, 1].tolist())
        held_out = set(data.valid[data.valid[:, 0] == user, 1].tolist()) | set(data.test[data.test[:, 0] == user, 1].tolist())
        for item in trained:
            assert TITLES[item] in text
        for item in held_out:
            assert TITLES[item] not in text, f"user {user}: the held-out item {TITLES[item]} leaked into the prompt"
    assert '{"summary"' in prompts.prompt(source, "user", 0)  # the answer format is asked for


def test_held_out_pairs_do_not_change_any_prompt(profile_data):
    data, log = profile_data
    moved = dataclasses.replace(data, valid=data.test, test=data.valid)  # other held-out pairs, same training
    fewer = dataclasses.replace(data, test=np.zeros((0, 2), dtype=np.int64))
    prompts = ProfilePrompts()
    for entity in ("user", "item"):
        for k in range(data.num_users if entity == "user" else data.num_items):
            reference = prompts.prompt(ProfileSource(data, log), entity, k)
            assert prompts.prompt(ProfileSource(moved, log), entity, k) == reference
            assert prompts.prompt(ProfileSource(fewer, log), entity, k) == reference


def test_order_and_cap_of_the_listed_items(profile_data):
    data, log = profile_data
    source = ProfileSource(data, log)
    template = "{order}:\n{items}"
    by_rating = ProfilePrompts(user_template=template).prompt(source, "user", 0)
    assert by_rating.splitlines() == [
        "highest rated first:",
        "- Big (1988); genres: Comedy; rated 5",
        "- Heat (1995); genres: Action, Crime; rated 4",
    ]
    by_time = ProfilePrompts(user_template=template, order="recent").prompt(source, "user", 0)
    assert [line.split(";")[0] for line in by_time.splitlines()[1:]] == ["- Heat (1995)", "- Big (1988)"]
    capped = ProfilePrompts(user_template="{num_listed} of {num_items}:\n{items}", max_items=1).prompt(source, "user", 0)
    assert capped.splitlines() == ["1 of 2:", "- Big (1988); genres: Comedy; rated 5"]


def test_demographics_and_item_audience_from_training(profile_data):
    data, log = profile_data
    source = ProfileSource(data, log)
    user = ProfilePrompts(user_template="{demographics} {top_genres}").prompt(source, "user", 0)
    assert user == "A 24-year-old male user whose occupation is student. Action, Comedy, Crime"  # ties by name
    item = ProfilePrompts(item_template="{description} | {audience}").prompt(source, "item", 0)
    # Heat: trained by ua (24, M, student) and ud (22, M, student); ub and uc only test it
    assert item == (
        "Heat (1995). Genres: Action, Crime. | In training, 2 users liked it: mostly male (100%), most often "
        "aged 18-24 (100%); frequent occupations: student."
    )
    plain = ProfilePrompts(item_template="{name} [{audience}]", audience=False).prompt(source, "item", 0)
    assert plain == "Heat (1995) []"


def test_a_split_without_log_uses_the_item_text(profile_data):
    data, _ = profile_data
    text = ProfilePrompts(user_template="{demographics}\n{items}").prompt(ProfileSource(data), "user", 1)
    assert text.splitlines() == ["A user.", "- Big (1988). Genres: Comedy.", "- Alien (1979). Genres: Horror, Sci-Fi."]
    bare = Interactions(1, 2, train=[[0, 1]], item_ids=["x", "y"])
    assert ProfilePrompts(user_template="{items}").prompt(ProfileSource(bare), "user", 0) == "- item y"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_template": "{titles}"}, "unknown field {titles}"),
        ({"item_template": "{}"}, "positional field"),
        ({"item_template": '{"summary": 1}'}, "unknown field"),
        ({"user_template": "{items"}, "not a valid str.format template"),
        ({"user_template": " "}, "the user template is empty"),
        ({"max_items": 0}, "max_items must be a positive integer"),
        ({"order": "random"}, "order must be 'rating' or 'recent'"),
    ],
)
def test_bad_templates_and_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match="") as info:
        ProfilePrompts(**kwargs)
    assert message in str(info.value)


def test_template_from_file_and_fingerprint(tmp_path):
    path = tmp_path / "item.txt"
    path.write_text('Describe {name}. Reply {{"summary": "..."}}')
    prompts = ProfilePrompts.from_file(path, "item")
    assert prompts.item_template == path.read_text() and prompts.user_template == ProfilePrompts().user_template
    assert prompts.fingerprint("item") != ProfilePrompts().fingerprint("item")
    assert prompts.fingerprint("user") == ProfilePrompts().fingerprint("user")
    assert ProfilePrompts(max_items=3).fingerprint("user") != ProfilePrompts().fingerprint("user")
