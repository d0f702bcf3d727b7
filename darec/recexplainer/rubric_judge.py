"""An LLM judge that grades explanations on RecExplainer's 4-level rubric (RX-4)."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from darec.llm import GenerationOptions, LLMBackend
from darec.recexplainer.judge_report import JudgeReport

__all__ = ["RUBRIC_TEMPLATE", "RubricJudge"]

#: The default judge prompt (:meth:`str.format` fields ``{history}``, ``{item}``, ``{decision}`` and
#: ``{explanation}``): the rubric of RecExplainer's GPT-4 evaluation, in darec's words, graded 0 to 3.
RUBRIC_TEMPLATE = """\
You are an impartial judge. A recommender system decided whether a user will like an item. An \
assistant was asked to give that decision and to explain it from the recommender's point of view. \
Grade the assistant's answer on this scale:

0: wrong decision. The assistant's yes or no differs from the recommender's decision.
1: right decision, poor explanation. It explains little or nothing, is beside the point, or states \
things that are not true (for example items the user never had).
2: right decision, acceptable explanation. It is consistent with the user's history and the item, \
with minor flaws: not very persuasive or informative.
3: right decision, satisfying explanation. It sums up the patterns of the user's history and \
analyses how the item is consistent or inconsistent with them.

Judge the content, not the length. Be objective.

The user's history: {history}
The item: {item}
The recommender's decision (will the user like the item?): {decision}
The assistant's answer: {explanation}

Reply with your grade only, written as <score>N</score> where N is 0, 1, 2 or 3."""

_FIELDS = ("history", "item", "decision", "explanation")
_TAG = re.compile(r"<\s*score\s*>(.*?)<\s*/\s*score\s*>", re.IGNORECASE | re.DOTALL)


class RubricJudge:
    r"""Grades explanations with an LLM judge on a 4-level rubric, batched over any :mod:`darec.llm` backend.

    RecExplainer rates an explanation of "will the user like this item?" with GPT-4 on four
    levels: **0** the decision is wrong (it differs from the target recommender's); **1** right
    decision, poor or hallucinated explanation; **2** right decision, acceptable explanation;
    **3** right decision, satisfying explanation (history patterns, and how the item fits them).
    The prompt is a replaceable template (:data:`RUBRIC_TEMPLATE` by default); in real use the
    judge is a strong model behind an OpenAI-compatible endpoint
    (:class:`~darec.llm.OpenAICompatible`).

    **The parser is strict** (:meth:`parse`): the answer must hold a ``<score>X</score>`` tag
    (case and spaces inside the tag do not matter) whose ``X`` is one of ``labels``, ``"0"`` to
    ``"3"`` by default; tags holding anything else (a placeholder ``N`` repeated from the prompt)
    are ignored, and several tags with *different* grades make the answer ambiguous. No tag, no
    valid grade, or an ambiguous answer: the case goes to the *unparsed* bucket of the
    :class:`~darec.recexplainer.judge_report.JudgeReport`, never to a grade. Free text
    ("I'd give it a 2") is not read.

    - [0] Lei et al., "RecExplainer", KDD 2024, arXiv:2311.10947 (Sec. 4.3, Table 2).

    Args:
        llm (LLMBackend): the judge: any object with ``generate(prompts, **options)``.
        template (str, optional): the prompt; its :meth:`str.format` fields are any of
            ``{history}`` (the titles joined by ``"; "``), ``{item}``, ``{decision}`` (``"Yes"`` or
            ``"No"`` for a boolean) and ``{explanation}``, which is required. Literal braces are
            doubled. (default: :data:`RUBRIC_TEMPLATE`)
        labels (Sequence[str]): what the judge writes inside the tag for grades ``0, 1, ...``:
            ``("A", "B", "C", "D")`` reads the lettered form of RecExplainer's own prompt.
            (default: ``("0", "1", "2", "3")``)
        options (Mapping[str, Any], optional): generation options of the judge
            (:class:`~darec.llm.GenerationOptions`). (default: ``{"max_new_tokens": 64}``, greedy)
        batch_size (int): prompts per call of ``llm.generate``. (default: :obj:`32`)

    Raises:
        ValueError: the template has an unknown or positional field, lacks ``{explanation}``, or
            does not format; fewer than 2 labels or repeated labels; a bad option.
        TypeError: ``llm`` has no ``generate`` method.

    Example:
        >>> from darec.llm import FakeLLM
        >>> judge = RubricJudge(FakeLLM(["<score>3</score>", "Grade: <score> 2 </score>", "2", "<score>1</score>"]))
        >>> report = judge.judge(
        ...     ["Yes: five crime films.", "Yes, a crime film.", "Yes.", "No."],
        ...     histories=[["Heat (1995)", "Casino (1995)"]] * 4, items=["Ronin (1998)"] * 4, decisions=[True] * 4)
        >>> report.scores, report.mean, report.unparsed
        ((3, 2, None, 1), 2.0, 1)
        >>> report.problems[2]
        "the answer has no <score>...</score> tag: '2'"
        >>> prompt = judge.prompt("Yes: crime films.", history=["Heat (1995)", "Casino (1995)"], item="Ronin (1998)", decision=True)
        >>> print("\n".join(prompt.splitlines()[-6:-2]))
        The user's history: Heat (1995); Casino (1995)
        The item: Ronin (1998)
        The recommender's decision (will the user like the item?): Yes
        The assistant's answer: Yes: crime films.
    """

    def __init__(
        self,
        llm: LLMBackend,
        template: str | None = None,
        *,
        labels: Sequence[str] = ("0", "1", "2", "3"),
        options: Mapping[str, Any] | None = None,
        batch_size: int = 32,
    ) -> None:
        if not callable(getattr(llm, "generate", None)):
            raise TypeError(f"llm must have a generate(prompts, **options) method, got {type(llm).__name__}")
        self.llm = llm
        self.template = template if template is not None else RUBRIC_TEMPLATE
        self.fields = _template_fields(self.template)
        if isinstance(labels, str):
            raise TypeError("`labels` must be a sequence of strings, one per grade, not one string")
        self.labels = tuple(str(label).strip() for label in labels)
        folded = [label.casefold() for label in self.labels]
        if len(self.labels) < 2 or len(set(folded)) != len(folded) or not all(self.labels):
            raise ValueError(f"`labels` must be at least 2 distinct non-empty strings, got {tuple(labels)}")
        self._grade = {label: grade for grade, label in enumerate(folded)}
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.options = GenerationOptions.from_kwargs(**{"max_new_tokens": 64, **dict(options or {})})

    @property
    def levels(self) -> int:
        """The number of grades, ``len(labels)``."""
        return len(self.labels)

    def prompt(
        self,
        explanation: str,
        *,
        history: Sequence[str] | None = None,
        item: str | None = None,
        decision: bool | str | None = None,
    ) -> str:
        """The judge's prompt for one explanation.

        Args:
            explanation (str): the answer to grade (decision and explanation).
            history (Sequence[str], optional): the user's history titles; needed if the template
                has ``{history}``.
            item (str, optional): the item's title; needed if the template has ``{item}``.
            decision (bool | str, optional): the target recommender's decision, :obj:`True` for
                yes; needed if the template has ``{decision}``.

        Raises:
            ValueError: a value the template needs is missing, or the explanation is empty.
        """
        if not isinstance(explanation, str) or not explanation.strip():
            raise ValueError(f"the explanation must be a non-empty string, got {explanation!r}")
        values: dict[str, str] = {"explanation": explanation.strip()}
        given = {"history": history, "item": item, "decision": decision}
        for name in self.fields - {"explanation"}:
            value = given[name]
            if value is None:
                raise ValueError(f"the judge's template has {{{name}}}: give `{name}`")
            values[name] = _render(name, value)
        return self.template.format(**values)

    def parse(self, answer: str) -> int:
        """The grade in a judge's answer, by the strict rule of the class docstring.

        Args:
            answer (str): the judge's answer.

        Returns:
            int: the grade, ``0`` to ``levels - 1``.

        Raises:
            ValueError: with the reason, when the answer has no tag, no valid grade in its tags, or
                several different grades.

        Example:
            >>> from darec.llm import FakeLLM
            >>> judge = RubricJudge(FakeLLM())
            >>> judge.parse("The answer is right and thorough. <SCORE>3</SCORE>")
            3
            >>> judge.parse("<score>1</score> or maybe <score>2</score>")
            Traceback (most recent call last):
            ...
            ValueError: the answer gives several different grades: 1, 2
        """
        if not isinstance(answer, str):
            raise ValueError(f"the answer is not a string but {type(answer).__name__}")
        tags = [content.strip() for content in _TAG.findall(answer)]
        if not tags:
            raise ValueError(f"the answer has no <score>...</score> tag: {_head(answer)!r}")
        grades = sorted({self._grade[tag.casefold()] for tag in tags if tag.casefold() in self._grade})
        if not grades:
            allowed = ", ".join(self.labels)
            raise ValueError(f"no <score> tag holds a grade ({allowed}): {', '.join(repr(_head(tag)) for tag in tags)}")
        if len(grades) > 1:
            raise ValueError(f"the answer gives several different grades: {', '.join(self.labels[g] for g in grades)}")
        return grades[0]

    def judge(
        self,
        explanations: Sequence[str],
        *,
        histories: Sequence[Sequence[str]] | None = None,
        items: Sequence[str] | None = None,
        decisions: Sequence[bool | str] | None = None,
    ) -> JudgeReport:
        """Grades every explanation: prompts in batches of ``batch_size``, one answer each, parsed.

        Args:
            explanations (Sequence[str]): the answers to grade, one per case.
            histories (Sequence[Sequence[str]], optional): each case's history titles.
            items (Sequence[str], optional): each case's item title.
            decisions (Sequence[bool | str], optional): each case's target decision.

        Returns:
            JudgeReport: the grades, the judge's answers and the unparsed bucket.

        Raises:
            ValueError: no explanations, a sequence of another length, or a value the template
                needs is missing (before the judge is called).
            RuntimeError: the backend returned a different number of answers than prompts.
        """
        if isinstance(explanations, str):
            raise TypeError("`explanations` must be a sequence of strings, not one string")
        explanations = list(explanations)
        if not explanations:
            raise ValueError("no explanations to judge")
        columns = {"history": histories, "item": items, "decision": decisions}
        for (name, column), argument in zip(columns.items(), ("histories", "items", "decisions")):
            if column is None and name in self.fields:
                raise ValueError(f"the judge's template has {{{name}}}: give `{argument}`, one per explanation")
            if column is not None:
                if isinstance(column, str):
                    raise TypeError(f"`{argument}` must be a sequence with one entry per explanation, not one string")
                if len(column) != len(explanations):
                    raise ValueError(f"got {len(explanations)} explanations and {len(column)} {argument}; give one per case")
        prompts = []
        for case, explanation in enumerate(explanations):
            values = {name: (column[case] if column is not None else None) for name, column in columns.items()}
            try:
                prompts.append(self.prompt(explanation, **values))
            except ValueError as err:
                raise ValueError(f"case {case}: {err}") from err
        answers: list[str] = []
        options = self.options.as_kwargs()  # backends of one's own need not know the newer options
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            got = list(self.llm.generate(batch, **options))
            if len(got) != len(batch):
                raise RuntimeError(f"the judge's backend returned {len(got)} answers for {len(batch)} prompts")
            answers.extend(got)
        scores: list[int | None] = []
        problems: list[str | None] = []
        for answer in answers:
            try:
                scores.append(self.parse(answer))
                problems.append(None)
            except ValueError as err:
                scores.append(None)
                problems.append(str(err))
        return JudgeReport(tuple(scores), tuple(str(a) for a in answers), tuple(problems), levels=self.levels)

    __call__ = judge

    def __repr__(self) -> str:
        custom = "" if self.template == RUBRIC_TEMPLATE else ", template=<custom>"
        return f"{type(self).__name__}(llm={type(self.llm).__name__}{custom}, labels={self.labels})"


def _template_fields(template: str) -> frozenset[str]:
    if not isinstance(template, str) or not template.strip():
        raise ValueError("the judge's template must be a non-empty string")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:
        raise ValueError(f"the judge's template does not format ({err}); double literal braces: {{{{ }}}}") from err
    positional = sorted(name for name in names if name == "" or name.isdigit())
    unknown = sorted(names - set(_FIELDS) - set(positional))
    if positional or unknown:
        bad = ", ".join(f"{{{name}}}" for name in positional + unknown)
        raise ValueError(f"the judge's template has unknown field(s) {bad}; the fields are {', '.join(f'{{{f}}}' for f in _FIELDS)}")
    if "explanation" not in names:
        raise ValueError("the judge's template must hold {explanation}, the answer to grade")
    try:
        template.format(**dict.fromkeys(_FIELDS, "x"))
    except (ValueError, IndexError, KeyError, AttributeError) as err:
        raise ValueError(f"the judge's template does not format: {err}") from err
    return frozenset(names)


def _render(name: str, value: Any) -> str:
    if name == "history":
        if isinstance(value, str):
            raise TypeError("a history must be a sequence of titles, not one string")
        titles = [str(title).strip() for title in value]
        if not titles:
            raise ValueError("the history is empty")
        return "; ".join(titles)
    if name == "decision" and isinstance(value, bool):
        return "Yes" if value else "No"
    text = str(value).strip()
    if not text:
        raise ValueError(f"`{name}` is empty")
    return text


def _head(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."
