"""RX-3 alignment metrics on hand-computed fixtures, against naive references; bad answers fail, never crash."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from darec.llm import FakeLLM
from darec.recexplainer.alignment_metrics import (
    GRADED_WEIGHTS,
    graded_ndcg_at_5,
    history_coverage_ratio,
    hit_ndcg_at_k,
    normalize_title,
    parse_yes_no,
    split_titles,
    yes_no_accuracy,
    yes_no_accuracy_from_text,
    yes_no_logits,
)
from darec.recexplainer.alignment_score import AlignmentScore

ORDER = ["Heat (1995)", "Casino (1995)", "Fargo (1996)", "Big (1988)", "Alien (1979)"]
CATALOG = ORDER + ["Babe (1995)", "Toy Story (1995)", "Toy Story 2 (1999)", "Usual Suspects, The (1995)"]
GARBLED = ["", "   \n\t", "...\n---\n***", "\u2022 \n1.\n"]


def _naive_dcg(gains: list[float]) -> float:
    return sum(g / math.log2(j + 2) for j, g in enumerate(gains))


def _naive_hit_ndcg(entries: list[str], targets: set[str], k: int) -> tuple[float, float]:
    """Loops over positions; a title named twice counts once."""
    gains, seen = [], set()
    for entry in entries[:k]:
        gains.append(1.0 if entry in targets and entry not in seen else 0.0)
        seen.add(entry)
    ideal = _naive_dcg([1.0] * min(k, len(targets)))
    return float(any(gains)), _naive_dcg(gains) / ideal


# ---- normalisation and splitting ----


@pytest.mark.parametrize(
    "written",
    ["Schindler's List (1993)", "  schindler’s list (1993)  ", "**Schindler's List (1993)**", '"SCHINDLER\'S  LIST (1993)".',
     "`Schindler's List (1993)`,", "_Schindler's\tList (1993)_"],
)  # fmt: skip
def test_titles_match_after_normalisation(written):
    assert normalize_title(written) == "schindler's list (1993)"


def test_normalisation_does_not_guess():
    assert normalize_title("Heat") != normalize_title("Heat (1995)")
    assert normalize_title("The Usual Suspects (1995)") != normalize_title("Usual Suspects, The (1995)")
    assert normalize_title("Toy Story 2 (1999)") != normalize_title("Toy Story (1995)")
    assert normalize_title("Airplane! (1980)") == "airplane! (1980)"
    assert normalize_title("Se7en \u2013 1995") == normalize_title("se7en - 1995")  # typographic dash


def test_split_titles_strips_markers_and_keeps_numbers_that_belong_to_titles():
    text = "1. 12 Angry Men (1957)\n2) 2001: A Space Odyssey (1968)\n(3) Heat (1995)\n[4] Big (1988)\n* Babe (1995)\n\u2022 Fargo (1996)"
    assert split_titles(text) == [
        "12 Angry Men (1957)", "2001: A Space Odyssey (1968)", "Heat (1995)", "Big (1988)", "Babe (1995)", "Fargo (1996)",
    ]  # fmt: skip
    assert split_titles("Heat (1995) | Big (1988)", separator="|") == ["Heat (1995)", "Big (1988)"]
    # AlignmentTaskBuilder's lists ("; "-joined) read by default, also mixed with lines:
    assert split_titles("Heat (1995); Big (1988);\nBabe (1995)") == ["Heat (1995)", "Big (1988)", "Babe (1995)"]
    assert split_titles("Usual Suspects, The (1995); Big (1988)") == ["Usual Suspects, The (1995)", "Big (1988)"]
    with pytest.raises(ValueError, match="separator"):
        split_titles("Heat", separator="")
    with pytest.raises(TypeError, match="must be a string"):
        split_titles(None)


# ---- task 1: HR@k and NDCG@k ----


def test_hit_ndcg_perfect_and_each_position():
    answers = ["\n".join(ORDER[:j] + ["Babe (1995)"] + ORDER[j:]) for j in range(5)]  # the target at position j + 1
    hit, ndcg = hit_ndcg_at_k(answers, ["Babe (1995)"] * 5, k=5)
    assert hit.values == (1.0,) * 5 and hit.failures == 0
    assert ndcg.values == pytest.approx([1 / math.log2(j + 2) for j in range(5)], rel=1e-6)
    assert ndcg.values[0] == 1.0
    hit, ndcg = hit_ndcg_at_k(answers, ["Babe (1995)"] * 5, k=3)  # beyond the cut-off: a miss, not a failure
    assert hit.values == (1.0, 1.0, 1.0, 0.0, 0.0) and hit.failures == 0 and hit.name == "hit@3"


def test_hit_ndcg_against_a_naive_reference_with_several_targets_and_duplicates():
    answers = [
        ["Heat (1995)", "Heat (1995)", "Fargo (1996)", "Alien (1979)"],
        "Big (1988)\nBabe (1995)\nCasino (1995)",
        "Toy Story (1995)\nToy Story 2 (1999)",
    ]
    targets = [["Heat (1995)", "Fargo (1996)"], ["Casino (1995)", "Heat (1995)", "Alien (1979)"], "Toy Story 2 (1999)"]
    for k in (1, 2, 3, 5):
        hit, ndcg = hit_ndcg_at_k(answers, targets, k=k)
        for case, (answer, target) in enumerate(zip(answers, targets)):
            entries = [normalize_title(t) for t in (split_titles(answer) if isinstance(answer, str) else answer)]
            wanted = {normalize_title(t) for t in ([target] if isinstance(target, str) else target)}
            expected_hit, expected_ndcg = _naive_hit_ndcg(entries, wanted, k)
            assert hit.values[case] == expected_hit
            assert ndcg.values[case] == pytest.approx(expected_ndcg, rel=1e-6)
    assert hit.value == pytest.approx(1.0) and ndcg.values[0] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))


@pytest.mark.parametrize("bad", GARBLED)
def test_empty_or_garbled_answers_are_failures_not_crashes(bad):
    hit, ndcg = hit_ndcg_at_k(["Heat (1995)", bad], ["Heat (1995)", "Heat (1995)"])
    assert hit.values == (1.0, 0.0) and hit.failed == (1,) and ndcg.failed == (1,)
    assert hit.value == 0.5 and hit.failure_rate == 0.5
    assert graded_ndcg_at_5([bad], [ORDER]).failed == (0,)
    assert history_coverage_ratio([bad], [ORDER]).failed == (0,)
    assert hit_ndcg_at_k([["", "...", "2."]], ["Heat (1995)"])[0].failed == (0,)  # a beam of empty sequences


def test_a_catalogue_tells_garbled_words_from_a_wrong_title():
    answers = ["asdkj qwe zzz", "Babe (1995)", "I cannot answer that."]
    hit, _ = hit_ndcg_at_k(answers, ["Heat (1995)"] * 3)
    assert hit.failed == ()  # without a catalogue, any words read as a (wrong) title
    hit, _ = hit_ndcg_at_k(answers, ["Heat (1995)"] * 3, catalog=CATALOG)
    assert hit.failed == (0, 2) and hit.values == (0.0, 0.0, 0.0)
    with pytest.raises(TypeError, match="not one string"):
        hit_ndcg_at_k(answers, ["Heat (1995)"] * 3, catalog="Heat (1995)")


def test_hit_ndcg_bad_input_is_named():
    with pytest.raises(ValueError, match="2 generated answers and 1 targets"):
        hit_ndcg_at_k(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        hit_ndcg_at_k(["a"], ["a"], k=0)
    with pytest.raises(ValueError, match=r"targets\[0\] holds no title"):
        hit_ndcg_at_k(["a"], [" ** "])
    with pytest.raises(ValueError, match="no generated answers"):
        hit_ndcg_at_k([], [])
    with pytest.raises(TypeError, match=r"generated\[0\]"):
        hit_ndcg_at_k([None], ["a"])
    with pytest.raises(TypeError, match="not one string"):
        hit_ndcg_at_k("Heat (1995)", ["Heat (1995)"])


# ---- task 2: graded NDCG ----


def _graded_reference(answer_titles: list[str], order: list[str], weights=GRADED_WEIGHTS) -> float:
    gain = {normalize_title(t): w for t, w in zip(order, weights)}
    gains, seen = [], set()
    for title in answer_titles[: len(weights)]:
        key = normalize_title(title)
        gains.append(gain.get(key, 0.0) if key not in seen else 0.0)
        seen.add(key)
    return _naive_dcg(gains) / _naive_dcg(sorted(weights, reverse=True))


def test_graded_ndcg_perfect_and_reversed_closed_form():
    score = graded_ndcg_at_5(["\n".join(ORDER), "; ".join(reversed(ORDER))], [ORDER, ORDER])
    ideal = 1000 + 100 / math.log2(3) + 10 / math.log2(4) + 1 / math.log2(5)
    reversed_dcg = 0 + 1 / math.log2(3) + 10 / math.log2(4) + 100 / math.log2(5) + 1000 / math.log2(6)
    assert score.values[0] == 1.0
    assert score.values[1] == pytest.approx(reversed_dcg / ideal, rel=1e-12)
    assert score.values[1] == pytest.approx(0.4076198, abs=1e-7)
    assert score.name == "graded_ndcg@5" and score.failures == 0


def test_graded_ndcg_every_permutation_against_the_reference_and_random_expectation():
    perms = list(itertools.permutations(ORDER))
    score = graded_ndcg_at_5([list(p) for p in perms], [ORDER] * len(perms))
    assert score.values == pytest.approx([_graded_reference(list(p), ORDER) for p in perms], rel=1e-12)
    assert score.value == pytest.approx(0.61313, abs=1e-5)  # the random-ordering baseline (paper: 0.6153)


def test_graded_ndcg_partial_duplicate_and_foreign_entries():
    answers = [
        "Casino (1995)\nHeat (1995)",  # two candidates only
        "Babe (1995)\nHeat (1995)\nHeat (1995)\nCasino (1995)",  # a foreign title takes place 1, a repeat gains nothing
        ["heat (1995)."] + ORDER[1:] + ["Babe (1995)"],  # normalisation; a 6th entry is beyond K
    ]
    score = graded_ndcg_at_5(answers, [ORDER] * 3)
    expected = [_graded_reference(split_titles(a) if isinstance(a, str) else a, ORDER) for a in answers]
    assert score.values == pytest.approx(expected, rel=1e-12)
    assert score.values[2] == 1.0 and score.failures == 0
    weights = (3.0, 2.0, 1.0)
    small = graded_ndcg_at_5(["C\nB\nA"], [["A", "B", "C"]], weights=weights)
    assert small.name == "graded_ndcg@3"
    assert small.value == pytest.approx(_graded_reference(["C", "B", "A"], ["A", "B", "C"], weights))


def test_graded_ndcg_naming_no_candidate_is_a_failure():
    score = graded_ndcg_at_5(["Babe (1995)\nToy Story (1995)", "Sorry, I can't rank these."], [ORDER, ORDER])
    assert score.failed == (0, 1) and score.value == 0.0 and score.failure_rate == 1.0


def test_graded_ndcg_bad_input_is_named():
    with pytest.raises(ValueError, match="5 distinct titles"):
        graded_ndcg_at_5(["x"], [ORDER[:4]])
    with pytest.raises(ValueError, match="5 distinct titles"):
        graded_ndcg_at_5(["x"], [ORDER[:4] + ["HEAT (1995)"]])
    with pytest.raises(ValueError, match="weights"):
        graded_ndcg_at_5(["x"], [ORDER], weights=(1, -1, 0, 0, 0))
    with pytest.raises(ValueError, match="weights"):
        graded_ndcg_at_5(["x"], [ORDER], weights=(0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="1 generated answers and 2 orders"):
        graded_ndcg_at_5(["x"], [ORDER, ORDER])


# ---- task 3: yes/no ----


def test_yes_no_accuracy_from_logits_with_undecided_rows():
    inf = float("inf")
    logits = torch.tensor([[-0.1, -2.0], [-3.0, -0.5], [-1.0, -1.0], [-inf, -inf], [float("nan"), -1.0], [-0.2, -inf]])
    labels = [True, False, True, False, True, "yes"]
    score = yes_no_accuracy(logits, labels)
    assert score.values == (1.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert score.failed == (2, 3, 4) and score.value == pytest.approx(0.5) and score.n == 6
    rows = [logits[k] for k in range(len(labels))]  # the outputs of choice_logits, one per prompt
    assert yes_no_accuracy(rows, labels) == score


def test_yes_no_logits_through_a_scorer_backend():
    llm = FakeLLM(logits=lambda prompt, options: [-0.1, -3.0] if "Heat" in prompt else [-2.0, -0.2])
    prompts = ["Will the user like Heat (1995)?", "Will the user like Babe (1995)?"]
    logits = yes_no_logits(llm, prompts)
    assert logits.shape == (2, 2) and logits.dtype == torch.float32
    assert [call["options"] for call in llm.calls] == [["Yes", "No"], ["Yes", "No"]]
    assert yes_no_accuracy(logits, ["Yes", "No"]).value == 1.0
    assert yes_no_accuracy(logits, ["No", "No"]).value == 0.5
    with pytest.raises(TypeError, match="yes_no_accuracy_from_text"):
        yes_no_logits(object(), prompts)


def test_yes_no_from_text():
    answers = ["Yes.", "no - it is too loud", "**Yes**, because", "Answer: No", "> yes", "Nope.", "I'd say yes", "", "Yesterday"]
    assert [parse_yes_no(a) for a in answers] == [True, False, True, False, True, None, None, None, None]
    labels = [True, True, True, False, True, False, True, True, True]
    score = yes_no_accuracy_from_text(answers, labels)
    assert score.values == (1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    assert score.failed == (5, 6, 7, 8) and score.value == pytest.approx(4 / 9)


def test_yes_no_bad_input_is_named():
    with pytest.raises(ValueError, match="shape \\(N, 2\\)"):
        yes_no_accuracy(torch.zeros(3), [True, True, True])
    with pytest.raises(ValueError, match=r"labels\[1\] must be True/False or 'Yes'/'No'"):
        yes_no_accuracy(torch.zeros(2, 2), [True, "maybe"])
    with pytest.raises(ValueError, match="2 rows of logits and 1 labels"):
        yes_no_accuracy(torch.zeros(2, 2), [True])
    with pytest.raises(ValueError, match="2 scores"):
        yes_no_accuracy([torch.zeros(3)], [True])


# ---- task 6: history coverage ----


def test_history_coverage_ratio():
    history = ["Heat (1995)", "Casino (1995)", "Fargo (1996)", "Big (1988)"]
    answers = [
        "\n".join(history),  # all of it
        "Fargo (1996)\nAlien (1979)\nBabe (1995)\nfargo (1996)",  # one of four; extra titles do not lower it
        ["Alien (1979)"],  # none: a parsed miss
        "zzz",  # not a catalogue title: a failure with the catalogue
    ]
    score = history_coverage_ratio(answers, [history] * 4, catalog=CATALOG)
    assert score.values == (1.0, 0.25, 0.0, 0.0) and score.failed == (3,)
    assert score.value == pytest.approx(1.25 / 4)
    assert history_coverage_ratio(answers, [history] * 4).failed == ()  # no catalogue: only empty answers fail
    # a history that repeats a title counts it once:
    assert history_coverage_ratio(["Heat (1995)"], [["Heat (1995)", "heat (1995)", "Big (1988)"]]).value == 0.5
    with pytest.raises(ValueError, match=r"histories\[0\] holds no title"):
        history_coverage_ratio(["Heat (1995)"], [[]])


def test_alignment_score_summary():
    score = AlignmentScore("hit@5", (1.0, 0.0), failed=(1,))
    assert score.as_dict() == {"name": "hit@5", "value": 0.5, "n": 2, "failures": 1, "failure_rate": 0.5}
    assert str(score) == "hit@5 = 0.5000 (n = 2; parse failures: 1 = 50.0%)"
    with pytest.raises(ValueError, match="no cases"):
        AlignmentScore("hit@5", ())
    with pytest.raises(ValueError, match="outside"):
        AlignmentScore("hit@5", (1.0,), failed=(1,))
