"""What the score probe of a :class:`~darec.recexplainer.fidelity_probe.FidelityProbe` found (RX-5)."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["ScoreProbeResult"]


@dataclasses.dataclass(frozen=True)
class ScoreProbeResult:
    r"""How well the target's score can be read back from explanation texts, on held-out texts.

    The probe is a linear (ridge) regressor on frozen sentence embeddings. Its test mean squared
    error is compared with the constant baseline that always predicts the training mean:

    .. math::
        \mathrm{MSE} = \frac{1}{|T|} \sum_{i \in T} (\hat y_i - y_i)^2,
        \qquad
        \mathrm{MSE}_0 = \frac{1}{|T|} \sum_{i \in T} (\bar y_\mathrm{train} - y_i)^2,
        \qquad
        \mathrm{skill} = 1 - \mathrm{MSE} / \mathrm{MSE}_0.

    Lower MSE (skill above 0) means the explanations carry more of the target's decision.

    Args:
        mse (float): the probe's test MSE.
        baseline_mse (float): the test MSE of the constant training mean.
        predictions (tuple[float, ...]): the probe's prediction for every test text.
        targets (tuple[float, ...]): the true scores of the test texts.
        test_indices (tuple[int, ...]): the positions of the test texts in the input.
        n_train (int): how many texts the probe was fitted on.
        ridge (float): the L2 penalty used (chosen by leave-one-out unless fixed).

    Example:
        >>> result = ScoreProbeResult(0.5, 2.0, (1.0, 3.0), (2.0, 2.0), (4, 7), n_train=8, ridge=1.0)
        >>> result.skill, result.n_test
        (0.75, 2)
        >>> print(result)
        score probe: test MSE 0.5000 vs constant-mean baseline 2.0000 (skill 0.750; 8 train / 2 test texts, ridge 1)
    """

    mse: float
    baseline_mse: float
    predictions: tuple[float, ...]
    targets: tuple[float, ...]
    test_indices: tuple[int, ...]
    n_train: int
    ridge: float

    @property
    def n_test(self) -> int:
        """How many texts the probe was tested on."""
        return len(self.test_indices)

    @property
    def skill(self) -> float:
        """``1 - mse / baseline_mse``: ``0`` is no better than the mean, ``1`` is perfect (``nan`` if the baseline is exact)."""
        return 1.0 - self.mse / self.baseline_mse if self.baseline_mse > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-able dict (without the per-text predictions)."""
        return {"mse": self.mse, "baseline_mse": self.baseline_mse, "skill": self.skill, "n_train": self.n_train,
                "n_test": self.n_test, "ridge": self.ridge}  # fmt: skip

    def __str__(self) -> str:
        return (
            f"score probe: test MSE {self.mse:.4f} vs constant-mean baseline {self.baseline_mse:.4f} "
            f"(skill {self.skill:.3f}; {self.n_train} train / {self.n_test} test texts, ridge {self.ridge:g})"
        )
