"""The relative AUC improvement (RelaImpr) of a CTR model over a base model."""

from __future__ import annotations

__all__ = ["relative_auc_improvement"]


def relative_auc_improvement(auc: float, base_auc: float) -> float:
    r"""RelaImpr: how much of the base model's lift over random guessing a model adds.

    .. math::
        \mathrm{RelaImpr} = \frac{\mathrm{AUC} - 0.5}{\mathrm{AUC}_{\text{base}} - 0.5} - 1

    (Yan et al., 2014; the usual way CTR papers report gains). ``0.1`` means 10 % more lift than
    the base; a model at chance scores ``-1``.

    Args:
        auc (float): the model's AUC.
        base_auc (float): the base model's AUC (e.g. the ID-only model); above 0.5.

    Raises:
        ValueError: an AUC outside [0, 1], or a base model at or below chance (no lift to compare).

    Example:
        >>> round(relative_auc_improvement(0.75, 0.70), 4)
        0.25
    """
    for name, value in (("auc", auc), ("base_auc", base_auc)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"`{name}` must lie in [0, 1], got {value}")
    if base_auc <= 0.5:
        raise ValueError(f"the base AUC is {base_auc}, at or below chance: RelaImpr needs a base model above 0.5")
    return (auc - 0.5) / (base_auc - 0.5) - 1.0
