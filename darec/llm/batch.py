"""One batch of prompts through a backend, each answer or the error that stands for it."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

from darec.llm.errors import GenerationError

__all__ = ["generate_each"]

K = TypeVar("K", bound=Hashable)


def generate_each(
    llm: Any,
    batch: Sequence[K],
    prompts: Mapping[K, str],
    options: Mapping[str, Any],
    *,
    label: str,
    noun: str,
    logger: logging.Logger | None = None,
) -> list[tuple[K, str | Exception]]:
    """``(key, answer)`` for every key of ``batch``, an exception in place of the answers the backend could not give.

    The batch is sent in one ``llm.generate`` call. A :class:`~darec.llm.GenerationError` that
    names the refused prompt (its ``index``) fails that key only and the rest are sent again; one
    that names none fails the whole batch; a :class:`TimeoutError` fails the whole batch with a
    warning. Each error message starts with ``"<label> <key>: "``. Any other error propagates.
    Jobs that retry their failures (:class:`~darec.lane.PreferenceExtractor`,
    :class:`~darec.ctr.ExplanationJob`) ask again for the keys that got an exception.

    Args:
        llm: an object with ``generate(prompts, **options) -> list[str]``.
        batch (sequence): the keys to ask for, in order.
        prompts (mapping): the prompt of every key.
        options (mapping): the generation options of the call.
        label (str): names a key in error messages, e.g. ``"user"``.
        noun (str): names the keys in the timeout warning, e.g. ``"user(s)"``.
        logger (logging.Logger, optional): where the timeout warning goes. (default: this module's)

    Raises:
        RuntimeError: the backend returned another number of answers than prompts.

    Example:
        >>> from darec.llm import FakeLLM
        >>> generate_each(FakeLLM("ok"), [3, 5], {3: "a", 5: "b"}, {}, label="user", noun="user(s)")
        [(3, 'ok'), (5, 'ok')]
    """
    if not batch:
        return []
    try:
        answers = llm.generate([prompts[k] for k in batch], **options)
    except GenerationError as err:
        index = getattr(err, "index", None)
        if not isinstance(index, int) or not 0 <= index < len(batch):
            return [(k, GenerationError(f"{label} {k}: {err}", i)) for i, k in enumerate(batch)]
        refused = batch[index]
        rest = [k for k in batch if k != refused]
        again = generate_each(llm, rest, prompts, options, label=label, noun=noun, logger=logger)
        return [(refused, GenerationError(f"{label} {refused}: {err}", index)), *again]
    except TimeoutError as err:
        (logger or logging.getLogger(__name__)).warning(
            "the backend timed out on a batch of %d %s (%s); they are asked again", len(batch), noun, err
        )
        return [(k, TimeoutError(f"{label} {k}: the backend timed out ({err})")) for k in batch]
    if not isinstance(answers, list) or len(answers) != len(batch):
        got = len(answers) if isinstance(answers, list) else type(answers).__name__
        raise RuntimeError(f"{type(llm).__name__}.generate returned {got} answers for {len(batch)} prompts")
    return list(zip(batch, answers))
