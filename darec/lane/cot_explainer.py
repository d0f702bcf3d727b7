"""The four-step chain-of-thought explanation prompt of LANE (LN-4), and the parser of its answers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from darec.lane.explanation import VERDICTS, Explanation
from darec.lane.unparsed import Unparsed
from darec.llm import GenerationOptions, LLMBackend

__all__ = ["EXPLANATION_TEMPLATE", "CoTExplainer"]

#: The default prompt (:meth:`str.format` fields ``{history}``, ``{preferences}``, ``{item}``,
#: ``{m}``, ``{template_justify}`` and ``{template_fitness}``).
EXPLANATION_TEMPLATE = """\
You explain why a recommender system suggests an item to a user. Think step by step.

The user's history, oldest first:
{history}

The user's preferences, each with the weight the recommender gives it (the weights sum to 1):
{preferences}

The item to explain: {item}

Step 1: for each preference, justify it from the history.
Step 2: introduce the item, and rate how well it fits each preference, from 0 (not at all) to 1 (perfectly).
Step 3: combine the fitness values and the weights into the probability that the user interacts with the item: Low, Medium or High, and give the reason.
Step 4: write a short personalised recommendation of the item for this user.

Answer in exactly this format, with all {m} preferences in steps 1 and 2:
Step 1:
{template_justify}
Step 2:
{template_fitness}
Step 3: <Low, Medium or High> - <reason>
Step 4: <recommendation>"""

_STEP = re.compile(r"^[ \t>*#_-]*step[ \t]*([1-4])[ \t*_]*(?:[:.)\-][ \t*_]*)?", re.IGNORECASE | re.MULTILINE)
_NUMBERED = re.compile(r"^[ \t*-]*(\d+)[.):][ \t]*(.*)$", re.MULTILINE)
_NUMBER = re.compile(r"(?<![\d.])(\d*\.\d+|\d+)(?![\d.])")
_VERDICT = re.compile(r"\b(low|medium|high)\b", re.IGNORECASE)


class CoTExplainer:
    r"""Renders LANE's four-step chain-of-thought prompt and reads the answer (LN-4).

    The prompt gives the frozen LLM the user's history titles, their preferences with the
    weights the model learned (:meth:`PreferenceAttentionFusion.preference_weights
    <darec.lane.PreferenceAttentionFusion.preference_weights>`, written to 4 decimals) and the
    target item, and asks for four steps in a fixed response template: (1) justify each
    preference from the history; (2) a fitness in ``[0, 1]`` of the item for each preference;
    (3) the interaction probability, Low, Medium or High, with a reason; (4) a personalised
    recommendation.

    :meth:`parse` reads an answer into an :class:`~darec.lane.Explanation` (the ``m`` fitness
    values, the verdict, the reason, the recommendation), or an :class:`~darec.lane.Unparsed`
    that says what is missing: it never raises on a bad answer.

    - [0] Zhao et al., "LANE", arXiv:2407.02833 (CoT explanation prompt).

    Args:
        llm (LLMBackend, optional): the backend of :meth:`explain`; :obj:`None` for prompts and
            parsing only. (default: :obj:`None`)
        template (str, optional): the prompt (see :data:`EXPLANATION_TEMPLATE` for its fields).
            (default: :data:`EXPLANATION_TEMPLATE`)
        options (dict, optional): generation options of :meth:`explain`.
            (default: ``{"max_new_tokens": 512}``, greedy)
        max_history (int): the most (latest) history titles in a prompt. (default: :obj:`50`)

    Example:
        >>> explainer = CoTExplainer()
        >>> prompt = explainer.prompt(["Heat (1995)", "Ronin (1998)"], ["crime films", "comedies"], [0.75, 0.25], "Up (2009)")
        >>> print(prompt.split("\n\n")[2])
        The user's preferences, each with the weight the recommender gives it (the weights sum to 1):
        1. crime films (weight 0.7500)
        2. comedies (weight 0.2500)
        >>> answer = "Step 1:\n1. Two heists.\n2. None.\nStep 2:\n1. 0.1\n2. 0.9\nStep 3: Medium - a comedy.\nStep 4: Try Up."
        >>> explainer.parse(answer, 2)
        Explanation(fitness=(0.1, 0.9), verdict='Medium', reason='a comedy.', recommendation='Try Up.', justifications=('Two heists.', 'None.'))
        >>> explainer.parse("I think they would like it.", 2)
        Unparsed(text='I think they would like it.', problem="the answer has no 'Step 2' (fitness) section")
    """

    def __init__(
        self,
        llm: LLMBackend | None = None,
        *,
        template: str | None = None,
        options: Mapping[str, Any] | None = None,
        max_history: int = 50,
    ) -> None:
        if llm is not None and not callable(getattr(llm, "generate", None)):
            raise TypeError(f"llm must have a generate(prompts, **options) method, got {type(llm).__name__}")
        if max_history < 1:
            raise ValueError(f"`max_history` must be at least 1, got {max_history}")
        self.llm = llm
        self.template = template if template is not None else EXPLANATION_TEMPLATE
        self.options = GenerationOptions.from_kwargs(**{"max_new_tokens": 512, **dict(options or {})})
        self.max_history = int(max_history)

    def prompt(self, history: Sequence[str], preferences: Sequence[str], weights: Sequence[float], item: str) -> str:
        """The prompt for one (user, item) pair.

        Args:
            history (Sequence[str]): the user's history titles, oldest first (the latest
                ``max_history`` are listed).
            preferences (Sequence[str]): the user's ``m`` preferences.
            weights (Sequence[float]): their ``m`` weights (written to 4 decimals).
            item (str): the title of the item to explain.

        Raises:
            ValueError: ``preferences`` and ``weights`` differ in length, or something is empty.
        """
        preferences, weights = list(preferences), [float(w) for w in weights]
        if not preferences or len(preferences) != len(weights):
            raise ValueError(f"got {len(preferences)} preference(s) and {len(weights)} weight(s); give one weight per preference")
        if not history:
            raise ValueError("the history is empty: an explanation needs the user's history titles")
        if not isinstance(item, str) or not item.strip():
            raise ValueError("the item has no title: an explanation needs the title of the item")
        history = list(history)[-self.max_history :]
        m = len(preferences)
        return self.template.format(
            history="\n".join(f"{k}. {title}" for k, title in enumerate(history, start=1)),
            preferences="\n".join(f"{k}. {p} (weight {w:.4f})" for k, (p, w) in enumerate(zip(preferences, weights), start=1)),
            item=item,
            m=m,
            template_justify="\n".join(f"{k}. <justification of preference {k}>" for k in range(1, m + 1)),
            template_fitness="\n".join(f"{k}. <fitness for preference {k}, from 0 to 1>" for k in range(1, m + 1)),
        )

    @staticmethod
    def parse(text: str, m: int) -> Explanation | Unparsed:
        """Reads an answer in the response template; never raises on a bad answer.

        Steps are found by their ``Step N`` headings (Markdown bold or headings around them are
        fine). Step 2 must hold ``m`` numbered lines, each ending in (or holding) one number in
        ``[0, 1]`` (the last such number of the line counts); step 3 must name Low, Medium or
        High (the first one named counts); step 1 and step 4 are kept as text.

        Args:
            text (str): the model's answer.
            m (int): the number of preferences in the prompt.

        Returns:
            An :class:`~darec.lane.Explanation`, or an :class:`~darec.lane.Unparsed` with the problem.
        """
        if not isinstance(text, str) or not text.strip():
            return Unparsed(text if isinstance(text, str) else "", "the answer is empty")
        sections: dict[int, str] = {}
        heads = list(_STEP.finditer(text))
        for k, head in enumerate(heads):
            end = heads[k + 1].start() if k + 1 < len(heads) else len(text)
            sections.setdefault(int(head.group(1)), text[head.end() : end].strip())
        if 2 not in sections:
            return Unparsed(text, "the answer has no 'Step 2' (fitness) section")
        if 3 not in sections:
            return Unparsed(text, "the answer has no 'Step 3' (interaction probability) section")
        fitness: list[float] = []
        for line in _NUMBERED.finditer(sections[2]):
            values = [float(v) for v in _NUMBER.findall(line.group(2)) if 0.0 <= float(v) <= 1.0]
            if not values:
                return Unparsed(text, f"step 2, line {line.group(1)}: no fitness value between 0 and 1")
            fitness.append(values[-1])
        if len(fitness) != m:
            return Unparsed(text, f"step 2 gives {len(fitness)} fitness value(s), expected {m} (one per preference)")
        verdict = _VERDICT.search(sections[3])
        if verdict is None:
            return Unparsed(text, "step 3 names no interaction probability (Low, Medium or High)")
        after, before = sections[3][verdict.end() :], sections[3][: verdict.start()]
        reason = after.strip().lstrip("-:–—*,;. \t\n").strip() or before.strip(" \t\n-:*")
        justifications = tuple(line.group(2).strip() for line in _NUMBERED.finditer(sections.get(1, "")))
        return Explanation(
            fitness=tuple(fitness),
            verdict=VERDICTS[[v.lower() for v in VERDICTS].index(verdict.group(1).lower())],
            reason=" ".join(reason.split()),
            recommendation=" ".join(sections.get(4, "").split()),
            justifications=justifications,
            text=text,
        )

    def explain(
        self,
        history: Sequence[str],
        preferences: Sequence[str],
        weights: Sequence[float],
        item: str,
    ) -> Explanation | Unparsed:
        """Asks the backend for one explanation and parses it (:meth:`prompt`, then :meth:`parse`).

        Raises:
            RuntimeError: the explainer has no backend.
        """
        return self.explain_many([(history, preferences, weights, item)])[0]

    def explain_many(
        self, requests: Sequence[tuple[Sequence[str], Sequence[str], Sequence[float], str]]
    ) -> list[Explanation | Unparsed]:
        """One explanation per ``(history, preferences, weights, item)``, in one call of the backend.

        Raises:
            RuntimeError: the explainer has no backend.
        """
        if self.llm is None:
            raise RuntimeError("this CoTExplainer has no backend: CoTExplainer(llm) to explain, or use prompt()/parse()")
        prompts = [self.prompt(*request) for request in requests]
        if not prompts:
            return []
        options = self.options.as_kwargs()  # backends of one's own need not know the newer options
        answers = self.llm.generate(prompts, **options)
        return [self.parse(answer, len(request[1])) for answer, request in zip(answers, requests)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(llm={type(self.llm).__name__ if self.llm is not None else None}, max_history={self.max_history})"
