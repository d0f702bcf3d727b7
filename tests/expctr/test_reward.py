"""The LC and IC rewards (EC-3): extremes, a naive reference, batching, empty texts and NaN."""

from __future__ import annotations

import math

import pytest
import torch

from darec.expctr import agreement_rate, agreement_reward, ic_reward, lc_reward

TEXTS = ["they will like it", "they will not like it", "they will like it a lot", "not for them", "they will like it"]
LABELS = [1, 0, 1, 0, 0]


def _likes(text: str) -> bool:
    return "not" not in text


def perfect(texts):  # knows the label from the text, which is right for every pair but the last
    return [1.0 if _likes(t) else 0.0 for t in texts]


def test_agreement_reward_matches_a_naive_reference():
    torch.manual_seed(0)
    p, y = torch.rand(50), torch.randint(0, 2, (50,))
    naive = torch.tensor([(pi if yi == 1 else 1 - pi) * 2 - 1 for pi, yi in zip(p.tolist(), y.tolist())])
    torch.testing.assert_close(agreement_reward(p, y), naive)
    rate = sum((pi > 0.5) == (yi == 1) for pi, yi in zip(p.tolist(), y.tolist())) / 50
    assert agreement_rate(p, y) == pytest.approx(rate)


@pytest.mark.parametrize("reward", ["lc", "ic"])
def test_extremes_perfect_inverted_and_constant(reward):
    labels = torch.tensor([1, 0, 1, 0])
    texts = ["a", "b", "c", "d"]
    truth = dict(zip(texts, labels.tolist()))

    def run(predict):
        if reward == "lc":
            return lc_reward(texts, labels, lambda t: [predict(x) for x in t])
        return ic_reward(texts, [0, 1, 2, 3], [3, 2, 1, 0], labels, lambda t, u, i: [predict(x) for x in t])

    best, worst, neutral = run(lambda x: float(truth[x])), run(lambda x: 1.0 - truth[x]), run(lambda x: 0.5)
    assert best.rewards.tolist() == [1.0] * 4 and best.agreement == 1.0 and best.mean == 1.0
    assert worst.rewards.tolist() == [-1.0] * 4 and worst.agreement == 0.0 and worst.mean == -1.0
    assert neutral.rewards.tolist() == [0.0] * 4 and neutral.agreement == 0.5
    # any other scorer lies in between
    middle = run(lambda x: 0.7)
    assert worst.mean < middle.mean < best.mean


def test_batched_and_one_at_a_time_agree():
    whole = lc_reward(TEXTS, LABELS, perfect)
    ones = [lc_reward([t], [y], perfect) for t, y in zip(TEXTS, LABELS)]
    torch.testing.assert_close(whole.rewards, torch.cat([r.rewards for r in ones]))
    assert whole.agreement == pytest.approx(sum(r.agreement for r in ones) / len(ones)) == 0.8


def test_empty_explanations_get_the_minimum_and_are_not_scored():
    seen = []

    def scorer(texts):
        seen.extend(texts)
        return [0.5] * len(texts)

    result = lc_reward(["fine", "", "   "], [1, 1, 0], scorer)
    assert seen == ["fine"] and result.empty == 2 and result.rewards.tolist() == [0.0, -1.0, -1.0]
    assert math.isnan(float(result.probabilities[1])) and result.agreement == 0.5
    assert lc_reward(["", ""], [1, 0], scorer).agreement != lc_reward(["", ""], [1, 0], scorer).agreement  # NaN


def test_nan_probabilities_raise_or_count_as_neutral():
    nan_scorer = lambda texts: [float("nan"), 0.9]  # noqa: E731
    with pytest.raises(ValueError, match=r"NaN for 1 of 2 explanations \(rows \[0\]\)"):
        lc_reward(["a", "b"], [1, 1], nan_scorer)
    result = lc_reward(["a", "b"], [1, 1], nan_scorer, on_nan="neutral")
    assert result.invalid == 1 and result.rewards.tolist() == pytest.approx([0.0, 0.8]) and result.agreement == 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="2 explanations for 3 labels"):
        lc_reward(["a", "b"], [1, 0, 1], perfect)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        lc_reward(["a"], [4], perfect)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] \(did the scorer return logits\?\)"):
        lc_reward(["a"], [1], lambda t: [3.2])
    with pytest.raises(ValueError, match="returned shape"):
        lc_reward(["a", "b"], [1, 0], lambda t: [0.5])
    with pytest.raises(ValueError, match="2 explanations, 1 users and 2 items"):
        ic_reward(["a", "b"], [0], [0, 1], [1, 0], lambda t, u, i: [0.5] * len(t))
    with pytest.raises(TypeError, match="one string"):
        lc_reward("abc", [1, 0, 1], perfect)
    with pytest.raises(ValueError, match="`on_nan`"):
        lc_reward(["a"], [1], perfect, on_nan="skip")
