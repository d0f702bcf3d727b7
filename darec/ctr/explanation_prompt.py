"""The liked/disliked prompt of ExpCTR (EC-1): how would this user see the target item, and why."""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from typing import Any

from darec.ctr.ctr_samples import CTRSamples

__all__ = ["EXPLANATION_FIELDS", "EXPLANATION_TEMPLATE", "ExplanationPrompt"]

#: The default prompt (:meth:`str.format` fields of :data:`EXPLANATION_FIELDS`).
EXPLANATION_TEMPLATE = (
    "A user liked these items before (most recent first):\n{liked}\n"
    "The user disliked these items before (most recent first):\n{disliked}\n\n"
    "Target item: {target}\n"
    "In one sentence, say how this user would see the target item and why, given what they liked and "
    "disliked before."
)

#: The fields a template may use: the numbered liked and disliked titles, the target's title and the counts.
EXPLANATION_FIELDS = ("liked", "disliked", "target", "num_liked", "num_disliked")

#: What an empty history list renders as.
NONE = "(none)"


def _word_count(text: str) -> int:
    return len(text.split())


class ExplanationPrompt:
    r"""Builds the deterministic liked/disliked prompt of a (user, target item) pair (ExpCTR, EC-1).

    The prompt lists the titles of the user's liked and disliked items (each list most recent
    first, numbered) and the target item's title, and asks for one sentence on how the user would
    see the target and why. For a row of :class:`~darec.ctr.CTRSamples` (:meth:`for_row`) the
    histories are the pair's own: **training** items strictly earlier than the pair, so no
    prompt leaks a validation or test label.

    **Budgets.** At most ``max_liked`` liked and ``max_disliked`` disliked titles are kept (the
    most recent). With ``max_tokens`` the prompt must also fit in that many tokens, counted by
    ``tokenizer``: history titles are dropped, the oldest first, until it does. The two lists are
    each in time order but not against each other, so "oldest" means the last title of the
    *longer* list (the disliked list on a tie). A prompt that does not fit even with both lists
    empty raises a :class:`ValueError`.

    **Template.** ``template`` replaces the prompt; it is a :meth:`str.format` string over
    :data:`EXPLANATION_FIELDS` (``{liked}``, ``{disliked}``, ``{target}``, ``{num_liked}``,
    ``{num_disliked}``); an unknown field is refused when the object is built.

    Args:
        template (str, optional): the prompt. (default: :data:`EXPLANATION_TEMPLATE`)
        max_liked (int): the most liked titles. (default: :obj:`10`)
        max_disliked (int): the most disliked titles. (default: :obj:`10`)
        max_tokens (int, optional): the most tokens of the whole prompt. (default: :obj:`None`, no limit)
        tokenizer (optional): what counts tokens: an object with ``encode(text)`` (a Hugging Face
            tokenizer: the length of its ids) or a callable from text to a count. (default:
            whitespace-separated words)

    Example:
        >>> prompt = ExplanationPrompt(max_liked=2)
        >>> print(prompt.render("Up (2009)", ["Heat (1995)", "Big (1988)", "Jaws (1975)"], []))
        A user liked these items before (most recent first):
        1. Heat (1995)
        2. Big (1988)
        The user disliked these items before (most recent first):
        (none)
        <BLANKLINE>
        Target item: Up (2009)
        In one sentence, say how this user would see the target item and why, given what they liked and disliked before.
        >>> ExplanationPrompt(template="{user} and {target}")
        Traceback (most recent call last):
        ...
        ValueError: the explanation template uses the unknown field {user}; its fields are liked, disliked, target, num_liked, num_disliked
    """

    def __init__(
        self,
        template: str | None = None,
        *,
        max_liked: int = 10,
        max_disliked: int = 10,
        max_tokens: int | None = None,
        tokenizer: Any = None,
    ) -> None:
        for name, value in (("max_liked", max_liked), ("max_disliked", max_disliked)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an integer of at least 0, got {value!r}")
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
            raise ValueError(f"`max_tokens` must be a positive integer or None, got {max_tokens!r}")
        self.template = template if template is not None else EXPLANATION_TEMPLATE
        _check_template(self.template)
        self.max_liked = max_liked
        self.max_disliked = max_disliked
        self.max_tokens = max_tokens
        self.tokenizer = tokenizer
        self._count = _counter(tokenizer)

    # -- tokens ------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """The length of ``text`` in tokens of ``tokenizer`` (words without one)."""
        return int(self._count(text))

    # -- rendering ---------------------------------------------------------------------------
    def format(self, target: str, liked: Sequence[str], disliked: Sequence[str]) -> str:
        """The template filled with exactly these titles (no budget applied)."""
        return self.template.format(
            liked=_numbered(liked), disliked=_numbered(disliked), target=target,
            num_liked=len(liked), num_disliked=len(disliked),
        )  # fmt: skip

    def fit(self, target: str, liked: Sequence[str], disliked: Sequence[str]) -> tuple[list[str], list[str]]:
        """The liked and disliked titles (most recent first) that the prompt keeps within both budgets.

        Raises:
            ValueError: the prompt exceeds ``max_tokens`` even without history.
        """
        liked, disliked = list(liked)[: self.max_liked], list(disliked)[: self.max_disliked]
        if self.max_tokens is None:
            return liked, disliked
        while self.count_tokens(self.format(target, liked, disliked)) > self.max_tokens:
            if not liked and not disliked:
                raise ValueError(
                    f"the explanation prompt of target {target!r} has "
                    f"{self.count_tokens(self.format(target, [], []))} tokens without any history, more than "
                    f"max_tokens={self.max_tokens}: raise max_tokens or shorten the template"
                )
            if len(disliked) >= len(liked):
                disliked.pop()
            else:
                liked.pop()
        return liked, disliked

    def render(self, target: str, liked: Sequence[str], disliked: Sequence[str]) -> str:
        """The prompt of a target title and the liked and disliked titles, each most recent first, within budget."""
        return self.format(target, *self.fit(target, liked, disliked))

    def for_row(self, samples: CTRSamples, row: int) -> str:
        """The prompt of pair ``row`` of ``samples``: its leak-free histories and its item's title."""
        liked, disliked = samples.history(int(row))
        return self.render(_title(samples, int(samples.item[row])), [_title(samples, i) for i in liked],
                           [_title(samples, i) for i in disliked])  # fmt: skip

    def fingerprint(self) -> dict[str, Any]:
        """Everything that shapes the prompts: the part of a job's cache key that comes from here."""
        counter = self.tokenizer
        name = None if counter is None else getattr(counter, "name_or_path", None) or getattr(counter, "__name__", None)
        return {
            "template": self.template,
            "max_liked": self.max_liked,
            "max_disliked": self.max_disliked,
            "max_tokens": self.max_tokens,
            "tokenizer": None if counter is None else str(name or type(counter).__name__),
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_liked={self.max_liked}, max_disliked={self.max_disliked}, "
            f"max_tokens={self.max_tokens})"
        )


def _numbered(titles: Sequence[str]) -> str:
    return "\n".join(f"{k}. {title}" for k, title in enumerate(titles, start=1)) if titles else NONE


def _title(samples: CTRSamples, item: int) -> str:
    return samples.title(item)


def _counter(tokenizer: Any) -> Callable[[str], int]:
    if tokenizer is None:
        return _word_count
    encode = getattr(tokenizer, "encode", None)
    if callable(encode):
        return lambda text: len(encode(text))
    if callable(tokenizer):
        return tokenizer
    raise TypeError(f"`tokenizer` must have an encode(text) method or be a callable counting tokens, got {type(tokenizer).__name__}")


def _check_template(template: str) -> None:
    try:
        used = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise ValueError(f"the explanation template is not a valid str.format string: {err}") from err
    for name in used:
        base = name.split(".")[0].split("[")[0]
        if base not in EXPLANATION_FIELDS:
            shown = "{" + name + "}" if name else "{} (a positional field)"
            raise ValueError(
                f"the explanation template uses the unknown field {shown}; its fields are {', '.join(EXPLANATION_FIELDS)}"
            )
