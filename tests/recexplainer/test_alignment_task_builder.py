"""RX-1: AlignmentTaskBuilder on a target with known scores; acceptance criteria (a)-(e) of the method, and bad input."""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pytest
import torch

from darec.recexplainer import ITEM_TOKEN, USER_TOKEN, AlignmentTaskBuilder, read_tasks
from tests.recexplainer.conftest import NUM_ITEMS, NUM_USERS, KnownScores, make_catalog, make_histories

MODES = ("behavior", "intention", "hybrid")


def _build(target, catalog, histories, mode, seed=0, **kwargs):
    return AlignmentTaskBuilder(target, catalog, histories, mode, seed, **kwargs).build()


def _allowed(histories, user):
    return np.setdiff1d(np.arange(NUM_ITEMS), histories[user])


def _placeholders(prompt):
    return re.findall(f"{USER_TOKEN}|{ITEM_TOKEN}", prompt)


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


# -- (a) task 1: the argmax of the target's scores outside the history ------------------------------
def test_a_every_next_item_label_is_the_targets_argmax_outside_the_history(target, catalog, histories, mode):
    scores = target.all_scores()
    tasks = [t for t in _build(target, catalog, histories, mode) if t.task == "next_item"]
    assert sorted(t.user for t in tasks) == list(range(NUM_USERS))
    for task in tasks:
        masked = scores[task.user].copy()
        masked[histories[task.user]] = -np.inf
        best = int(np.argmax(masked))
        assert task.answer_items == (best,) and task.response == catalog[best]
        assert best not in histories[task.user]


def test_a_the_label_is_not_the_unmasked_argmax_when_that_is_a_history_item(catalog):
    """The label follows the target outside the history: put each user's overall best item in the history."""
    target = KnownScores()
    scores = target.all_scores()
    histories = [[int(np.argmax(scores[u]))] for u in range(NUM_USERS)]
    for task in _build(target, catalog, histories, "behavior", tasks=["next_item"]):
        assert task.answer_items[0] == int(np.argsort(-scores[task.user])[1])


# -- (b) task 2: the candidates sorted by the target's score -----------------------------------------
def test_b_every_ranking_label_is_the_candidates_sorted_by_target_score(target, catalog, histories, mode):
    scores = target.all_scores()
    tasks = [t for t in _build(target, catalog, histories, mode) if t.task == "ranking"]
    assert len(tasks) == NUM_USERS
    shown_in_order = 0
    for task in tasks:
        assert len(task.items) == 5 and sorted(task.items) == sorted(task.answer_items)
        assert not set(task.items) & set(histories[task.user])
        expected = sorted(task.items, key=lambda i: -scores[task.user, i])
        assert list(task.answer_items) == expected
        assert task.response == "; ".join(catalog[i] for i in expected)
        shown_in_order += list(task.items) == expected
    assert shown_in_order < len(tasks)  # the candidates are shown shuffled


def test_b_candidates_come_from_the_whole_ranking(target, catalog, histories):
    """Over many users the candidates reach both ends of the target's ranking, not just its top."""
    builder = AlignmentTaskBuilder(target, catalog, histories, "behavior", 0, tasks=["ranking"])
    positions = []
    for seed in range(10):
        builder.seed = seed
        for task in builder.build():
            ranked = _allowed(histories, task.user)[np.argsort(-target.all_scores()[task.user, _allowed(histories, task.user)])]
            positions += [int(np.flatnonzero(ranked == i)[0]) / (len(ranked) - 1) for i in task.items]
    assert min(positions) < 0.1 and max(positions) > 0.9


# -- (c) task 3: positives above the 80th percentile, negatives below the 50th ------------------------
def test_c_interest_positives_and_negatives_respect_the_quantile_thresholds(target, catalog, histories, mode):
    scores = target.all_scores()
    tasks = [t for t in _build(target, catalog, histories, mode) if t.task == "interest"]
    assert len(tasks) == 2 * NUM_USERS
    answers = {"Yes": 0, "No": 0}
    for task in tasks:
        allowed = _allowed(histories, task.user)
        high, low = np.quantile(scores[task.user, allowed], [0.8, 0.5])
        (item,) = task.items
        assert item in allowed and task.score == pytest.approx(scores[task.user, item], rel=1e-6)
        if task.response == "Yes":
            assert scores[task.user, item] > high
        else:
            assert task.response == "No" and scores[task.user, item] < low
        answers[task.response] += 1
    assert answers == {"Yes": NUM_USERS, "No": NUM_USERS}


def test_c_quantiles_are_settings(target, catalog, histories):
    scores = target.all_scores()
    tasks = _build(target, catalog, histories, "behavior", tasks=["interest"], positive_quantile=0.95, negative_quantile=0.1)
    for task in tasks:
        high, low = np.quantile(scores[task.user, _allowed(histories, task.user)], [0.95, 0.1])
        value = scores[task.user, task.items[0]]
        assert value > high if task.response == "Yes" else value < low


# -- (d) placeholders and titles by mode -----------------------------------------------------------
def test_d_behavior_prompts_hold_titles_and_no_placeholder(target, catalog, histories):
    tasks = _build(target, catalog, histories, "behavior")
    assert {t.task for t in tasks} == {"next_item", "ranking", "interest", "similar_item"}
    for task in tasks:
        assert task.form == "behavior" and _placeholders(task.prompt) == [] and task.placeholders == ()
        assert USER_TOKEN not in task.prompt and ITEM_TOKEN not in task.prompt
        if task.user is not None:  # the user is the titles of the history
            assert all(catalog[i] in task.prompt for i in histories[task.user])
        assert all(catalog[i] in task.prompt for i in task.items)


def test_d_intention_prompts_hold_placeholders_and_no_title(target, catalog, histories):
    tasks = _build(target, catalog, histories, "intention")
    assert {t.task for t in tasks} == {"next_item", "ranking", "interest", "item_title", "similar_item", "history"}
    for task in tasks:
        assert task.form == "intention"
        assert not [title for title in catalog if title in task.prompt]  # no history title, no title at all
        assert _placeholders(task.prompt)
        kinds = {"<user>": "user", "<item>": "item"}
        assert [kinds[token] for token in _placeholders(task.prompt)] == [kind for kind, _ in task.placeholders]
        if task.user is not None:
            assert task.placeholder_users == (task.user,)
        assert task.placeholder_items == task.items  # candidates in the order shown


def test_d_hybrid_prompts_hold_placeholders_and_titles(target, catalog, histories):
    tasks = _build(target, catalog, histories, "hybrid")
    hybrid = [t for t in tasks if t.form == "hybrid"]
    assert {t.task for t in hybrid} == {"next_item", "ranking", "interest", "similar_item"}
    for task in hybrid:
        assert _placeholders(task.prompt)
        if task.user is not None:
            assert task.placeholder_users == (task.user,)
            assert f"{USER_TOKEN}, who has interacted with: " in task.prompt
            assert all(catalog[i] in task.prompt for i in histories[task.user])
        for item in task.items:
            assert f"{ITEM_TOKEN} {catalog[item]}" in task.prompt  # <item> followed by its title
        assert task.placeholder_items == task.items
    # the two tasks whose hybrid form would show the answer take the intention form
    others = [t for t in tasks if t.form != "hybrid"]
    assert {t.task for t in others} == {"item_title", "history"} and all(t.form == "intention" for t in others)
    assert all(not [title for title in catalog if title in t.prompt] for t in others)


def test_ranking_placeholders_follow_the_shown_candidates(target, catalog, histories):
    for task in _build(target, catalog, histories, "intention", tasks=["ranking"]):
        assert task.placeholders == (("user", task.user), *(("item", i) for i in task.items))
        assert task.prompt.count(ITEM_TOKEN) == 5


# -- (e) determinism ------------------------------------------------------------------------------
def test_e_the_same_seed_gives_the_same_tasks(target, catalog, histories, mode, tmp_path):
    first = AlignmentTaskBuilder(target, catalog, histories, mode, seed=7).write(tmp_path / "a.jsonl")
    second = AlignmentTaskBuilder(KnownScores(), make_catalog(), make_histories(), mode, seed=7).write(tmp_path / "b.jsonl")
    assert first == second
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert read_tasks(tmp_path / "a.jsonl") == first


def test_e_another_seed_draws_other_candidates(target, catalog, histories):
    drawn = [
        [(t.items, t.answer_items) for t in _build(target, catalog, histories, "behavior", seed, tasks=["ranking", "interest"])]
        for seed in (0, 1)
    ]
    assert drawn[0] != drawn[1]


def test_a_users_tasks_do_not_depend_on_the_other_users_built(target, catalog, histories):
    builder = AlignmentTaskBuilder(target, catalog, histories, "hybrid", seed=3)
    everyone = builder.build()
    alone = builder.build(users=[5], items=[2])
    expected = [t for t in everyone if t.user == 5 or t.items == (2,) and t.user is None]
    # the same draws and labels; an interest score may differ in its last bit (a batched product)
    assert [dataclasses.replace(t, score=None) for t in alone] == [dataclasses.replace(t, score=None) for t in expected]
    scored = [(a.score, b.score) for a, b in zip(alone, expected) if a.task == "interest"]
    assert len(scored) == 2 and all(a == pytest.approx(b, rel=1e-5) for a, b in scored)


# -- the other tasks ---------------------------------------------------------------------------------
def test_similar_item_is_the_nearest_other_item_by_dot_product(target, catalog, histories):
    table = target.items.double().numpy()
    similarity = table @ table.T
    np.fill_diagonal(similarity, -np.inf)
    tasks = _build(target, catalog, histories, "intention", tasks=["similar_item"])
    assert [t.items[0] for t in tasks] == list(range(NUM_ITEMS))
    for task in tasks:
        best = int(np.argmax(similarity[task.items[0]]))
        assert task.answer_items == (best,) and task.response == catalog[best] and best != task.items[0]


def test_item_title_and_history_tasks(target, catalog, histories):
    tasks = _build(target, catalog, histories, "intention", tasks=["item_title", "history"])
    titles = [t for t in tasks if t.task == "item_title"]
    assert [(t.response, t.placeholders) for t in titles] == [(catalog[i], (("item", i),)) for i in range(NUM_ITEMS)]
    for task in (t for t in tasks if t.task == "history"):
        assert task.answer_items == tuple(histories[task.user]) and task.placeholders == (("user", task.user),)
        assert task.response == "; ".join(catalog[i] for i in histories[task.user]) and task.number == 6


def test_mapping_histories_and_users_without_history(target, catalog):
    histories = {0: [1, 2, 3], 4: [5, 6]}
    with pytest.warns(UserWarning, match=r"10 user\(s\) got no user task: they have no history"):
        tasks = _build(target, catalog, histories, "behavior", tasks=["next_item"])
    assert [t.user for t in tasks] == [0, 4]


def test_scores_in_another_dtype_give_the_same_labels(catalog, histories):
    """A target may return float64 scores: the labels are the same as from float32 ones."""

    class Double(KnownScores):
        def score(self, users, items=None):
            return super().score(users, items).to(torch.float64)

    a = _build(KnownScores(), catalog, histories, "behavior", tasks=["next_item"])
    b = _build(Double(), catalog, histories, "behavior", tasks=["next_item"])
    assert a == b


# -- long histories --------------------------------------------------------------------------------
def test_long_histories_are_truncated_with_a_warning(target, catalog):
    histories = [list(range(10))] + [[20, 21]] * (NUM_USERS - 1)
    with pytest.warns(UserWarning, match=r"1 of 12 users have more than max_history=4 .* show their last 4"):
        builder = AlignmentTaskBuilder(target, catalog, histories, "hybrid", 0, max_history=4)
    tasks = builder.build(users=[0])
    nxt = next(t for t in tasks if t.task == "next_item")
    assert all(catalog[i] in nxt.prompt for i in range(6, 10)) and not any(catalog[i] in nxt.prompt for i in range(6))
    assert nxt.answer_items[0] >= 10  # the whole history stays excluded from the label
    history = next(t for t in tasks if t.task == "history")
    assert history.answer_items == (6, 7, 8, 9)


def test_long_histories_can_be_refused(target, catalog):
    histories = [[1, 2]] * 3 + [list(range(25))] + [[3]] * (NUM_USERS - 4)
    with pytest.raises(ValueError, match=r"longer than max_history=20, e\.g\. user 3 with 25 items"):
        AlignmentTaskBuilder(target, catalog, histories, "behavior", 0, on_long_history="error")


# -- bad input ---------------------------------------------------------------------------------------
def test_history_ids_out_of_range_are_named(target, catalog):
    histories = make_histories()
    histories[2] = [1, NUM_ITEMS]
    with pytest.raises(ValueError, match=r"history of user 2 holds item 30, outside 0 \.\. 29"):
        AlignmentTaskBuilder(target, catalog, histories, "behavior")
    with pytest.raises(ValueError, match=r"`histories` has 11 rows but the target has 12 users"):
        AlignmentTaskBuilder(target, catalog, histories[:-1], "behavior")
    with pytest.raises(ValueError, match=r"users outside 0 \.\. 11, e\.g\. \[12\]"):
        AlignmentTaskBuilder(target, catalog, {12: [1]}, "behavior")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c.__setitem__(3, "  "), r"1 empty titles, e\.g\. items \[3\]"),
        (lambda c: c.__setitem__(4, "The <item> strikes back"), r"placeholder token.*items \[4\]"),
        (lambda c: c.__setitem__(5, "Love; Death"), r"the separator '; '.*items \[5\]"),
        (lambda c: c.pop(), r"the catalog has 29 titles but the target scores 30 items"),
        (lambda c: c.__setitem__(6, None), r"item 6 has a NoneType"),
    ],
)
def test_bad_catalogs_are_named(target, histories, change, match):
    catalog = make_catalog()
    change(catalog)
    with pytest.raises(ValueError, match=match):
        AlignmentTaskBuilder(target, catalog, histories, "behavior")


def test_a_title_with_the_separator_is_fine_with_another_separator(target, histories):
    catalog = make_catalog()
    catalog[5] = "Love; Death"
    tasks = _build(target, catalog, histories, "behavior", separator=" | ", tasks=["ranking"])
    assert all(" | " in t.response for t in tasks)


def test_repeated_titles_warn(target, histories):
    catalog = make_catalog()
    catalog[1] = catalog[0]
    with pytest.warns(UserWarning, match="1 catalog titles repeat"):
        AlignmentTaskBuilder(target, catalog, histories, "behavior")


def test_bad_settings_are_named(target, catalog, histories):
    with pytest.raises(ValueError, match="`mode` must be one of"):
        AlignmentTaskBuilder(target, catalog, histories, "latent")
    with pytest.raises(ValueError, match=r"\['history'\] have no behaviour form"):
        AlignmentTaskBuilder(target, catalog, histories, "behavior", tasks=["next_item", "history"])
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['explain'\]"):
        AlignmentTaskBuilder(target, catalog, histories, "hybrid", tasks=["explain"])
    with pytest.raises(ValueError, match="0 < negative_quantile <= positive_quantile < 1"):
        AlignmentTaskBuilder(target, catalog, histories, "hybrid", positive_quantile=0.4)
    with pytest.raises(ValueError, match="`max_history` must be a positive integer"):
        AlignmentTaskBuilder(target, catalog, histories, "hybrid", max_history=0)
    with pytest.raises(TypeError, match="lacks num_users, num_items, dim"):
        AlignmentTaskBuilder(object(), catalog, histories, "hybrid")
    builder = AlignmentTaskBuilder(target, catalog, histories, "hybrid")
    with pytest.raises(ValueError, match=r"user ids must be in 0 \.\. 11, got \[12\]"):
        builder.build(users=[0, 12])
    with pytest.raises(ValueError, match=r"item ids must be in 0 \.\. 29, got \[-1\]"):
        builder.build(items=[-1])


def test_scores_that_are_not_finite_or_of_another_shape_are_refused(catalog, histories):
    class Broken(KnownScores):
        def score(self, users, items=None):
            scores = super().score(users, items)
            scores[users == 3] = float("nan")
            return scores

    with pytest.raises(ValueError, match="scores of user 3 hold NaN"):
        _build(Broken(), catalog, histories, "behavior")

    class Narrow(KnownScores):
        def score(self, users, items=None):
            return super().score(users, items)[:, :-1]

    with pytest.raises(ValueError, match=r"returned shape \(12, 29\), expected \(12, 30\)"):
        _build(Narrow(), catalog, histories, "behavior")


def test_tied_scores_skip_the_interest_task_with_a_warning(catalog, histories):
    class Flat(KnownScores):
        def score(self, users, items=None):
            return torch.zeros(len(users), self.num_items)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match=r"12 user\(s\) got no interest task: no item scores above the 0\.8"):
            _build(Flat(), catalog, histories, "behavior", tasks=["interest"])
