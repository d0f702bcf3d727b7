"""The LLM click predictor of ExpCTR's LC alignment: p(click) from an explanation alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from darec.llm import ChoiceScorer

__all__ = ["LC_TEMPLATE", "LCScorer"]

#: The default question: the explanation alone, no ids, no title list.
LC_TEMPLATE = (
    "A recommender system wrote this about how a user would see a movie:\n"
    '"{explanation}"\n'
    "Based only on this, will the user like the movie? Answer Yes or No."
)


class LCScorer:
    """Predicts a click from an explanation alone with a frozen LLM: ``p = softmax(logits of "Yes", "No")[0]``.

    The LLM-as-CTR-predictor of ExpCTR's LC alignment (and of the ExpCTR-LLM output): each
    explanation is put into ``template`` and the backend's :meth:`choice_logits
    <darec.llm.ChoiceScorer.choice_logits>` scores the two answers; their softmax gives the click
    probability. The backend is frozen: it only scores. Use the *base* generator without its LoRA
    adapter (the default of :class:`~darec.expctr.ExpCTRLoop`) or any stronger local model.

    Args:
        backend (ChoiceScorer): a backend with ``choice_logits``, e.g.
            :class:`~darec.llm.HFCausalLM` (an HTTP endpoint with log-probabilities also works).
        template (str): the question, with an ``{explanation}`` field. (default: :data:`LC_TEMPLATE`)
        choices (tuple of str): the positive and the negative answer. (default: ``("Yes", "No")``)
        system (str, optional): a system prompt. (default: :obj:`None`)

    Example:
        >>> from darec.llm import FakeLLM
        >>> scorer = LCScorer(FakeLLM(logits={"Yes": 0.0, "No": 0.0}))
        >>> scorer(["They will love it.", "Not for them."])
        tensor([0.5000, 0.5000])
    """

    def __init__(
        self,
        backend: ChoiceScorer,
        template: str = LC_TEMPLATE,
        choices: tuple[str, str] = ("Yes", "No"),
        system: str | None = None,
    ) -> None:
        if not callable(getattr(backend, "choice_logits", None)):
            raise TypeError(
                f"the LC scorer needs a backend with choice_logits(prompt, options) (darec.llm.ChoiceScorer), got "
                f"{type(backend).__name__}"
            )
        if "{explanation}" not in template:
            raise ValueError("the LC template must contain an {explanation} field")
        if len(choices) != 2 or choices[0] == choices[1]:
            raise ValueError(f"`choices` must be two different answers (positive, negative), got {choices!r}")
        self.backend = backend
        self.template = template
        self.choices = tuple(choices)
        self.system = system

    def prompt(self, explanation: str) -> str:
        """The question asked about ``explanation``."""
        return self.template.replace("{explanation}", " ".join(str(explanation).split()))

    def __call__(self, explanations: Sequence[str]) -> Tensor:
        """``(B,)`` click probabilities of ``explanations``."""
        if isinstance(explanations, str):
            raise TypeError("pass a list of explanations, not one string")
        kwargs: dict[str, Any] = {"system": self.system} if self.system else {}
        out = []
        for text in explanations:
            logits = torch.as_tensor(self.backend.choice_logits(self.prompt(text), list(self.choices), **kwargs))
            out.append(logits.float().softmax(-1)[0])
        return torch.stack(out) if out else torch.empty(0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.backend!r}, choices={self.choices!r})"
