r"""How well an aligned LLM imitates its target recommender: RecExplainer's alignment metrics (RX-3).

Every label comes from the target recommender (never from the ground truth), and every metric
reads the LLM's *text*, so each returns an :class:`~darec.recexplainer.alignment_score.AlignmentScore`:
the value, the number of answers, and the answers that could not be read. An unreadable answer
counts as a miss, and its rate must be reported next to the value.

- :func:`hit_ndcg_at_k`: task 1 (next-item retrieval), HR@k and NDCG@k of a generated list of
  titles against the target's top item(s), with :func:`darec.metrics.functional.hit_rate_at_k`
  and :func:`darec.metrics.functional.ndcg_at_k`;
- :func:`graded_ndcg_at_5`: task 2 (ranking 5 candidates), NDCG with graded relevance by the
  target's order (weights 1000, 100, 10, 1, 0);
- :func:`yes_no_accuracy` (from the logits of "Yes" and "No", see :func:`yes_no_logits`) and
  :func:`yes_no_accuracy_from_text` (from generated answers): task 3 (interest classification);
- :func:`history_coverage_ratio`: task 6 (history reconstruction), the share of the history's
  titles that the answer names.

**How titles are matched.** Exactly, after :func:`normalize_title` on both sides: Unicode NFKC,
case folding, typographic quotes and dashes made plain, runs of whitespace made one space, and
wrapping quotes, backticks, ``*``/``_`` (Markdown emphasis) and trailing ``. , ; :`` removed. Nothing
else: ``"Heat"`` does not match ``"Heat (1995)"``, nor ``"The Usual Suspects (1995)"`` MovieLens'
``"Usual Suspects, The (1995)"``. Write the labels the way the model is trained to write titles.

**How an answer becomes a list of titles.** A generated answer is either one string, split by
:func:`split_titles` (at line breaks and semicolons by default, so both a numbered list and the
``"; "``-joined lists of :class:`~darec.recexplainer.AlignmentTaskBuilder` read; list markers such
as ``1.``, ``2)``, ``-`` or ``*`` removed; entries without a letter or digit dropped), or a
sequence of strings, one title each (e.g. the 5 sequences of a beam search). Entries keep their
positions: an entry that is not a candidate still takes a place in the ranking.

**What counts as a parse failure.** An answer with no entry at all (empty, whitespace,
punctuation); for the ranking, an answer that names none of the candidates; with a ``catalog``
(:func:`hit_ndcg_at_k`, :func:`history_coverage_ratio`), an answer that names no title of the
catalogue (without one, garbled words read as a wrong title: a miss, not a failure); for yes/no,
an answer that does not start with yes or no, or logits that tie or are ``NaN``.

- [0] Lei et al., "RecExplainer: Aligning Large Language Models for Explaining Recommendation
  Models", KDD 2024, arXiv:2311.10947 (Sec. 4.2, alignment effect).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence, Sized

import torch
from torch import Tensor

from darec.llm import ChoiceScorer
from darec.metrics.functional import hit_rate_at_k, ndcg_at_k
from darec.recexplainer.alignment_score import AlignmentScore

__all__ = [
    "GRADED_WEIGHTS",
    "graded_ndcg_at_5",
    "history_coverage_ratio",
    "hit_ndcg_at_k",
    "normalize_title",
    "parse_yes_no",
    "split_titles",
    "yes_no_accuracy",
    "yes_no_accuracy_from_text",
    "yes_no_logits",
]

#: The relevance of the target's ranks 1..5 in :func:`graded_ndcg_at_5` (RecExplainer's task 2).
GRADED_WEIGHTS: tuple[float, ...] = (1000.0, 100.0, 10.0, 1.0, 0.0)

_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
                        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-"})  # fmt: skip
_WRAPPING = "\"'`*_ \t"
_TRAILING = ".,;:"
_WHITESPACE = re.compile(r"\s+")
# A list marker at the start of an entry: "1.", "2)", "(3)", "[4]", "4:", "-", "*", "+", a bullet.
_MARKER = re.compile(r"^\s*(?:[-*+\u2022\u00b7]|\(?\d{1,3}[.):]|\(\d{1,3}\)|\[\d{1,3}\])(?:\s+|$)")
# A yes/no answer: optional Markdown or quotes, an optional "Answer:" label, then the word.
_YES_NO = re.compile(r"^[\s*_\"'`>#]*(?:answer\s*[:\-]\s*[*_\"'`]*)?(yes|no)\b", re.IGNORECASE)


def normalize_title(title: str) -> str:
    """The form in which two titles are compared: they match when these are equal.

    NFKC, case folding, typographic quotes and dashes made plain, whitespace runs made one space,
    wrapping quotes, backticks and Markdown emphasis removed, trailing ``. , ; :`` removed.

    Args:
        title (str): a title, as written in the data or by a model.

    Returns:
        str: the normalised title (may be empty).

    Example:
        >>> normalize_title("  **Schindler’s   List (1993).** ")
        "schindler's list (1993)"
        >>> normalize_title("Heat (1995)") == normalize_title('"HEAT (1995)"')
        True
    """
    if not isinstance(title, str):
        raise TypeError(f"a title must be a string, got {type(title).__name__}")
    text = unicodedata.normalize("NFKC", title).translate(_PLAIN).casefold()
    text = _WHITESPACE.sub(" ", text)
    previous = None
    while previous != text:  # peel wrapping and trailing characters in any order: '"heat."' -> heat
        previous = text
        text = text.strip(_WRAPPING).rstrip(_TRAILING)
    return text


def split_titles(text: str, separator: str | None = None) -> list[str]:
    """The titles of a generated list, in order, as written (stripped, list markers removed).

    Args:
        text (str): the generated answer.
        separator (str, optional): what separates the titles; :obj:`None` splits at line breaks
            and at semicolons (:class:`~darec.recexplainer.AlignmentTaskBuilder` joins lists with
            ``"; "``). Beware ``","``: many titles hold a comma. (default: :obj:`None`)

    Returns:
        list[str]: the entries; those without a letter or digit (blank lines, ``"---"``) are dropped.

    Example:
        >>> split_titles("Here you go:\\n1. Heat (1995)\\n2) Casino (1995)\\n\\n- Fargo (1996)")
        ['Here you go:', 'Heat (1995)', 'Casino (1995)', 'Fargo (1996)']
        >>> split_titles("Heat (1995); Casino (1995)")
        ['Heat (1995)', 'Casino (1995)']
        >>> split_titles("Heat (1995) | Casino (1995)", separator="|")
        ['Heat (1995)', 'Casino (1995)']
        >>> split_titles("  \\n ... \\n")
        []
    """
    if not isinstance(text, str):
        raise TypeError(f"a generated answer must be a string, got {type(text).__name__}")
    if separator is not None and not separator:
        raise ValueError("`separator` must be a non-empty string or None (line breaks and semicolons)")
    if separator is None:
        pieces = [piece for line in text.splitlines() for piece in line.split(";")]
    else:
        pieces = text.split(separator)
    entries = [_MARKER.sub("", piece, count=1).strip() for piece in pieces]
    return [entry for entry in entries if _has_content(entry)]


def hit_ndcg_at_k(
    generated: Sequence[str | Sequence[str]],
    targets: Sequence[str | Sequence[str]],
    k: int = 5,
    *,
    catalog: Iterable[str] | None = None,
    separator: str | None = None,
) -> tuple[AlignmentScore, AlignmentScore]:
    r"""HR@k and NDCG@k of generated title lists against the target's top item(s) (task 1).

    The first ``k`` entries of each answer are matched against the case's target titles (RecExplainer:
    the title of the target's top-1 item outside the history); a title named twice counts once.
    With binary relevance and :math:`R` target titles,

    .. math::
        \mathrm{HR@}k = \mathbb{1}\Big[\sum_{j \le k} \mathrm{hit}_j > 0\Big],
        \qquad
        \mathrm{NDCG@}k = \frac{\sum_{j \le k} \mathrm{hit}_j / \log_2(j + 1)}
                              {\sum_{j \le \min(k, R)} 1 / \log_2(j + 1)},

    computed by :func:`darec.metrics.functional.hit_rate_at_k` and
    :func:`darec.metrics.functional.ndcg_at_k`; both are averaged over cases, failures as ``0``.

    Args:
        generated (Sequence[str | Sequence[str]]): one answer per case: a string (see
            :func:`split_titles`) or a sequence of titles, best first.
        targets (Sequence[str | Sequence[str]]): one target title, or several, per case.
        k (int): the cut-off. (default: :obj:`5`)
        catalog (Iterable[str], optional): every valid title; with it an answer that names none
            of them is a parse failure (garbled text), without it only an empty answer is.
            (default: :obj:`None`)
        separator (str, optional): see :func:`split_titles`. (default: :obj:`None`, line breaks and ``;``)

    Returns:
        tuple[AlignmentScore, AlignmentScore]: ``hit@k`` and ``ndcg@k``, with the same failures.

    Raises:
        ValueError: ``k`` is not a positive integer, the lengths differ, there are no cases, or a
            case has no target title.

    Example:
        >>> answers = ["1. Heat (1995)\n2. Casino (1995)", ["Big (1988)", "Fargo (1996)", "heat (1995)"], "???"]
        >>> hit, ndcg = hit_ndcg_at_k(answers, ["Heat (1995)"] * 3, k=5)
        >>> hit.values, [round(v, 4) for v in ndcg.values], hit.failed
        ((1.0, 1.0, 0.0), [1.0, 0.5, 0.0], (2,))
        >>> print(ndcg)
        ndcg@5 = 0.5000 (n = 3; parse failures: 1 = 33.3%)
    """
    k = _check_k(k)
    _check_lengths(generated, "generated answers", targets, "targets")
    known = _catalog(catalog)
    hits = torch.zeros(len(generated), k, dtype=torch.bool)
    num_relevant = torch.zeros(len(generated), dtype=torch.long)
    failed = []
    for case, (answer, target) in enumerate(zip(generated, targets)):
        relevant = {title for title in map(normalize_title, _titles(target, case, "targets")) if title}
        if not relevant:
            raise ValueError(f"targets[{case}] holds no title")
        num_relevant[case] = len(relevant)
        entries = _entries(answer, case, separator)
        if not entries or (known is not None and known.isdisjoint(entries)):
            failed.append(case)
            continue
        found: set[str] = set()
        for position, entry in enumerate(entries[:k]):
            if entry in relevant and entry not in found:
                hits[case, position] = True
                found.add(entry)
    hit = hit_rate_at_k(hits, num_relevant).tolist()
    ndcg = ndcg_at_k(hits, num_relevant).tolist()
    failures = tuple(failed)
    return AlignmentScore(f"hit@{k}", tuple(hit), failures), AlignmentScore(f"ndcg@{k}", tuple(ndcg), failures)


def graded_ndcg_at_5(
    generated: Sequence[str | Sequence[str]],
    orders: Sequence[Sequence[str]],
    weights: Sequence[float] = GRADED_WEIGHTS,
    *,
    separator: str | None = None,
) -> AlignmentScore:
    r"""NDCG of a generated ordering of candidates, graded by the target's order (task 2).

    The case's candidates, in the target recommender's order, get the relevance ``weights``
    (RecExplainer: 1000, 100, 10, 1, 0 for the target's ranks 1 to 5). The answer's first
    :math:`K` = ``len(weights)`` entries are the model's ranking; an entry that is not a
    candidate, or names one a second time, gains nothing but takes its place:

    .. math::
        \mathrm{DCG} = \sum_{j=1}^{K} \frac{w(\mathrm{entry}_j)}{\log_2(j + 1)},
        \qquad
        \mathrm{NDCG} = \frac{\mathrm{DCG}}{\sum_{j=1}^{K} w_{(j)} / \log_2(j + 1)},

    with linear gains and :math:`w_{(j)}` the weights sorted in decreasing order. A random
    permutation of 5 candidates scores about 0.61 in expectation with the default weights; the
    target's exact order scores 1; an answer naming no candidate is a parse failure (0).

    Args:
        generated (Sequence[str | Sequence[str]]): one answer per case (see :func:`split_titles`).
        orders (Sequence[Sequence[str]]): the candidates of each case in the target's order, best
            first, ``len(weights)`` distinct titles each.
        weights (Sequence[float]): the relevance of the target's ranks. (default: :data:`GRADED_WEIGHTS`)
        separator (str, optional): see :func:`split_titles`. (default: :obj:`None`, line breaks and ``;``)

    Returns:
        AlignmentScore: ``graded_ndcg@K``.

    Raises:
        ValueError: weights negative, not finite or all zero; an order of the wrong length or with
            titles that are equal after :func:`normalize_title`; the lengths differ.

    Example:
        >>> order = ["A (1)", "B (2)", "C (3)", "D (4)", "E (5)"]
        >>> score = graded_ndcg_at_5(["A (1)\nB (2)\nC (3)\nD (4)\nE (5)", "E (5)\nD (4)\nC (3)\nB (2)\nA (1)", ""], [order] * 3)
        >>> [round(v, 4) for v in score.values], score.failed
        ([1.0, 0.4076, 0.0], (2,))
    """
    gains = [float(w) for w in weights]
    if not gains or any(not math.isfinite(w) or w < 0 for w in gains) or not any(gains):
        raise ValueError(f"`weights` must be finite, non-negative and not all zero, got {tuple(weights)}")
    size = len(gains)
    _check_lengths(generated, "generated answers", orders, "orders")
    discounts = [1.0 / math.log2(j + 2) for j in range(size)]
    ideal = math.fsum(w * d for w, d in zip(sorted(gains, reverse=True), discounts))
    values, failed = [], []
    for case, (answer, order) in enumerate(zip(generated, orders)):
        ranked = [normalize_title(title) for title in _titles(order, case, "orders")]
        if len(ranked) != size or len(set(ranked)) != size or not all(ranked):
            raise ValueError(
                f"orders[{case}] must hold {size} distinct titles (one per weight), got {len(ranked)} "
                f"with {len(set(filter(None, ranked)))} distinct after normalize_title"
            )
        gain = dict(zip(ranked, gains))
        entries = _entries(answer, case, separator)
        if not any(entry in gain for entry in entries):
            failed.append(case)
            values.append(0.0)
            continue
        seen: set[str] = set()
        dcg = []
        for position, entry in enumerate(entries[:size]):
            if entry in gain and entry not in seen:
                dcg.append(gain[entry] * discounts[position])
                seen.add(entry)
        values.append(math.fsum(dcg) / ideal)
    return AlignmentScore(f"graded_ndcg@{size}", tuple(values), tuple(failed))


def yes_no_logits(llm: ChoiceScorer, prompts: Sequence[str], *, yes: str = "Yes", no: str = "No") -> Tensor:
    """The scores of the answers "Yes" and "No" to every prompt, read from the model (no generation).

    Calls ``llm.choice_logits(prompt, [yes, no])`` (:class:`~darec.llm.ChoiceScorer`) for each
    prompt: the log-probability of each answer's first token at the answer's first position, as
    RecExplainer compares the logits of the two tokens.

    Args:
        llm (ChoiceScorer): a backend with ``choice_logits``, e.g. :class:`~darec.llm.HFCausalLM`.
        prompts (Sequence[str]): the task-3 prompts.
        yes (str): the positive answer. (default: :obj:`"Yes"`)
        no (str): the negative answer. (default: :obj:`"No"`)

    Returns:
        Tensor: ``(len(prompts), 2)`` float32, columns ``[yes, no]``, for :func:`yes_no_accuracy`.

    Raises:
        TypeError: ``llm`` has no ``choice_logits`` method.

    Example:
        >>> from darec.llm import FakeLLM
        >>> yes_no_logits(FakeLLM(logits={"Yes": -0.2, "No": -1.7}), ["Will user 3 like Heat (1995)?"])
        tensor([[-0.2000, -1.7000]])
    """
    if not callable(getattr(llm, "choice_logits", None)):
        raise TypeError(
            f"{type(llm).__name__} cannot score fixed answers (no choice_logits method); "
            "generate answers and use yes_no_accuracy_from_text instead"
        )
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts to score")
    rows = [torch.as_tensor(llm.choice_logits(prompt, [yes, no]), dtype=torch.float32).reshape(-1) for prompt in prompts]
    return torch.stack(rows)


def yes_no_accuracy(logits: Tensor | Sequence[Tensor], labels: Sequence[bool | str]) -> AlignmentScore:
    r"""Accuracy of yes/no answers read from the logits of "Yes" and "No" (task 3).

    The model answers yes when :math:`\ell_\mathrm{yes} > \ell_\mathrm{no}`. A row where the two
    are equal (e.g. both :math:`-\infty`: neither answer could be scored) or one is ``NaN`` is
    undecided: a parse failure.

    Args:
        logits (Tensor | Sequence[Tensor]): ``(N, 2)`` scores, columns ``[yes, no]``, e.g. from
            :func:`yes_no_logits`, or ``N`` tensors of shape ``(2,)`` from ``choice_logits``.
        labels (Sequence[bool | str]): the target's answers: :obj:`True`/``"Yes"`` or
            :obj:`False`/``"No"`` (case-insensitive).

    Returns:
        AlignmentScore: ``yes_no_accuracy``.

    Raises:
        ValueError: ``logits`` is not ``(N, 2)``, a label is not yes/no, or the lengths differ.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[-0.1, -2.0], [-3.0, -0.5], [-1.0, -1.0]])
        >>> score = yes_no_accuracy(logits, [True, True, "No"])
        >>> score.values, score.failed
        ((1.0, 0.0, 0.0), (2,))
    """
    scores = logits if isinstance(logits, Tensor) else _stack(logits)
    if scores.dim() != 2 or scores.shape[1] != 2:
        raise ValueError(f"`logits` must have shape (N, 2) with columns [yes, no], got {tuple(scores.shape)}")
    truth = _labels(labels)
    _check_lengths(scores, "rows of logits", truth, "labels")
    scores = scores.detach().to("cpu", torch.float64)
    undecided = (scores.isnan().any(dim=1) | (scores[:, 0] == scores[:, 1])).tolist()
    says_yes = (scores[:, 0] > scores[:, 1]).tolist()
    values = tuple(float(not skip and answer == label) for skip, answer, label in zip(undecided, says_yes, truth))
    return AlignmentScore("yes_no_accuracy", values, tuple(case for case, skip in enumerate(undecided) if skip))


def parse_yes_no(answer: str) -> bool | None:
    """Reads a generated yes/no answer: its first word, after Markdown, quotes or an ``Answer:`` label.

    Args:
        answer (str): the generated text.

    Returns:
        bool | None: :obj:`True` for yes, :obj:`False` for no, :obj:`None` when the answer does
        not start with either word.

    Example:
        >>> [parse_yes_no(a) for a in ["Yes, the user likes crime films.", "**No**.", "Answer: yes", "Nope", "I think yes"]]
        [True, False, True, None, None]
    """
    if not isinstance(answer, str):
        raise TypeError(f"an answer must be a string, got {type(answer).__name__}")
    match = _YES_NO.match(answer)
    return None if match is None else match[1].casefold() == "yes"


def yes_no_accuracy_from_text(answers: Sequence[str], labels: Sequence[bool | str]) -> AlignmentScore:
    """Accuracy of generated yes/no answers, read by :func:`parse_yes_no` (task 3, from text).

    An answer that does not start with yes or no is a parse failure. Prefer :func:`yes_no_accuracy`
    on the logits when the backend can score choices: it never fails to parse.

    Args:
        answers (Sequence[str]): the generated answers.
        labels (Sequence[bool | str]): the target's answers (see :func:`yes_no_accuracy`).

    Returns:
        AlignmentScore: ``yes_no_accuracy``.

    Example:
        >>> score = yes_no_accuracy_from_text(["Yes.", "No, too loud.", "Maybe"], [True, True, False])
        >>> score.values, score.failed
        ((1.0, 0.0, 0.0), (2,))
    """
    if isinstance(answers, str):
        raise TypeError("`answers` must be a sequence of strings, not one string")
    truth = _labels(labels)
    _check_lengths(answers, "answers", truth, "labels")
    read = [parse_yes_no(answer) for answer in answers]
    values = tuple(float(answer is not None and answer == label) for answer, label in zip(read, truth))
    return AlignmentScore("yes_no_accuracy", values, tuple(case for case, answer in enumerate(read) if answer is None))


def history_coverage_ratio(
    generated: Sequence[str | Sequence[str]],
    histories: Sequence[Sequence[str]],
    *,
    catalog: Iterable[str] | None = None,
    separator: str | None = None,
) -> AlignmentScore:
    r"""History coverage ratio (HCR): the share of a user's history that the answer names (task 6).

    .. math::
        \mathrm{HCR}(u) = \frac{|\{h \in H_u : h \text{ is an entry of the answer}\}|}{|H_u|}

    with :math:`H_u` the distinct (normalised) history titles; averaged over cases (failures as ``0``).
    Entries outside the history do not lower it.

    Args:
        generated (Sequence[str | Sequence[str]]): one reconstruction per case (see :func:`split_titles`).
        histories (Sequence[Sequence[str]]): the history titles of each case.
        catalog (Iterable[str], optional): every valid title; with it an answer that names none
            of them is a parse failure. (default: :obj:`None`)
        separator (str, optional): see :func:`split_titles`. (default: :obj:`None`, line breaks and ``;``)

    Returns:
        AlignmentScore: ``history_coverage``.

    Raises:
        ValueError: a history is empty, or the lengths differ.

    Example:
        >>> history = ["Heat (1995)", "Casino (1995)", "Fargo (1996)", "Big (1988)"]
        >>> score = history_coverage_ratio(["Heat (1995)\nFargo (1996)\nAlien (1979)", "\n"], [history, history])
        >>> score.values, score.failed
        ((0.5, 0.0), (1,))
    """
    _check_lengths(generated, "generated answers", histories, "histories")
    known = _catalog(catalog)
    values, failed = [], []
    for case, (answer, history) in enumerate(zip(generated, histories)):
        titles = {title for title in map(normalize_title, _titles(history, case, "histories")) if title}
        if not titles:
            raise ValueError(f"histories[{case}] holds no title")
        entries = set(_entries(answer, case, separator))
        if not entries or (known is not None and known.isdisjoint(entries)):
            failed.append(case)
            values.append(0.0)
            continue
        values.append(len(titles & entries) / len(titles))
    return AlignmentScore("history_coverage", tuple(values), tuple(failed))


def _has_content(text: str) -> bool:
    return any(char.isalnum() for char in text)


def _entries(answer: str | Sequence[str], case: int, separator: str | None) -> list[str]:
    """The normalised entries of one answer, in order (entries without a letter or digit dropped)."""
    if isinstance(answer, str):
        raw = split_titles(answer, separator)
    elif isinstance(answer, Sequence) and all(isinstance(entry, str) for entry in answer):
        raw = [_MARKER.sub("", entry, count=1) for entry in answer]
    else:
        raise TypeError(f"generated[{case}] must be a string or a sequence of strings, got {type(answer).__name__}")
    return [entry for entry in map(normalize_title, raw) if _has_content(entry)]


def _titles(value: str | Sequence[str], case: int, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(title, str) for title in value):
        return list(value)
    raise TypeError(f"{name}[{case}] must be a title or a sequence of titles, got {type(value).__name__}")


def _catalog(catalog: Iterable[str] | None) -> frozenset[str] | None:
    if catalog is None:
        return None
    if isinstance(catalog, str):
        raise TypeError("`catalog` must be a collection of titles, not one string")
    known = frozenset(title for title in map(normalize_title, catalog) if title)
    if not known:
        raise ValueError("`catalog` holds no title")
    return known


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive integer, got {k!r}")
    return k


def _check_lengths(first: Sized, first_name: str, second: Sized, second_name: str) -> None:
    if isinstance(first, str):
        raise TypeError(f"the {first_name} must be a sequence, not one string")
    if len(first) != len(second):
        raise ValueError(f"got {len(first)} {first_name} and {len(second)} {second_name}; give one per case")
    if len(first) == 0:
        raise ValueError(f"no {first_name} to score")


def _stack(rows: Sequence[Tensor]) -> Tensor:
    rows = [torch.as_tensor(row, dtype=torch.float64).reshape(-1) for row in rows]
    if not rows:
        raise ValueError("no rows of logits to score")
    if any(row.numel() != 2 for row in rows):
        sizes = sorted({row.numel() for row in rows})
        raise ValueError(f"every row of logits must hold 2 scores [yes, no], got rows of {sizes}")
    return torch.stack(rows)


def _labels(labels: Sequence[bool | str]) -> list[bool]:
    if isinstance(labels, str):
        raise TypeError("`labels` must be a sequence of labels, not one string")
    truth = []
    for case, label in enumerate(labels):
        if isinstance(label, bool):
            truth.append(label)
        elif isinstance(label, str) and label.strip().casefold() in ("yes", "no"):
            truth.append(label.strip().casefold() == "yes")
        else:
            raise ValueError(f"labels[{case}] must be True/False or 'Yes'/'No', got {label!r}")
    return truth
