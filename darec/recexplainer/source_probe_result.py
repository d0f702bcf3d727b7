"""What the source probe of a :class:`~darec.recexplainer.fidelity_probe.FidelityProbe` found (RX-5)."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["SourceProbeResult"]


@dataclasses.dataclass(frozen=True)
class SourceProbeResult:
    r"""How well held-out explanations can be told apart by the model that wrote them.

    The probe is a linear (multinomial logistic) classifier on frozen sentence embeddings. High
    accuracy means the models write distinguishably; the confusion matrix shows which models read
    alike (RecExplainer, Fig. 4).

    Args:
        sources (tuple[str, ...]): the source names, in the order of the matrix rows and columns
            (sorted).
        confusion (tuple[tuple[int, ...], ...]): ``confusion[t][p]`` counts the test texts of
            source ``t`` predicted as source ``p``.
        predictions (tuple[str, ...]): the predicted source of every test text.
        test_indices (tuple[int, ...]): the positions of the test texts in the input.
        n_train (int): how many texts the probe was fitted on.
        majority_accuracy (float): the test accuracy of always answering the most common
            training source, the chance level to compare with.

    Example:
        >>> result = SourceProbeResult(("a", "b"), ((4, 1), (0, 5)), ("a",) * 4 + ("b",) * 6, tuple(range(10)), 40, 0.5)
        >>> result.accuracy, result.n_test
        (0.9, 10)
        >>> print(result)
        source probe: test accuracy 0.9000 vs majority 0.5000 (40 train / 10 test texts; rows true a, b: [4, 1], [0, 5])
    """

    sources: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    predictions: tuple[str, ...]
    test_indices: tuple[int, ...]
    n_train: int
    majority_accuracy: float

    @property
    def n_test(self) -> int:
        """How many texts the probe was tested on."""
        return len(self.test_indices)

    @property
    def accuracy(self) -> float:
        """The share of test texts whose source was predicted right (the confusion matrix's trace over its sum)."""
        total = sum(map(sum, self.confusion))
        return sum(self.confusion[k][k] for k in range(len(self.sources))) / total if total else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-able dict, with the confusion matrix as nested lists."""
        return {"accuracy": self.accuracy, "majority_accuracy": self.majority_accuracy, "sources": list(self.sources),
                "confusion": [list(row) for row in self.confusion], "n_train": self.n_train, "n_test": self.n_test}  # fmt: skip

    def __str__(self) -> str:
        rows = ", ".join(str(list(row)) for row in self.confusion)
        return (
            f"source probe: test accuracy {self.accuracy:.4f} vs majority {self.majority_accuracy:.4f} "
            f"({self.n_train} train / {self.n_test} test texts; rows true {', '.join(self.sources)}: {rows})"
        )
