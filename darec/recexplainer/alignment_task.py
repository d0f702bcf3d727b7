"""One RecExplainer alignment example (prompt, response, where the embeddings go) and its JSON-lines file."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from darec.utils.io import atomic_write
from darec.utils.jsonl import dumps_line

__all__ = ["ITEM_TOKEN", "TASK_NUMBERS", "USER_TOKEN", "AlignmentTask", "read_tasks", "write_tasks"]

#: The placeholder whose input embedding receives the target's (projected) user vector.
USER_TOKEN = "<user>"
#: The placeholder whose input embedding receives the target's (projected) item vector.
ITEM_TOKEN = "<item>"
#: The tasks and their numbers in RecExplainer (task 4 has two kinds; task 5, general
#: instruction data, needs no target and is not built here).
TASK_NUMBERS = {"next_item": 1, "ranking": 2, "interest": 3, "item_title": 4, "similar_item": 4, "history": 6}
FORMS = ("behavior", "intention", "hybrid")

_PLACEHOLDER = re.compile(f"{re.escape(USER_TOKEN)}|{re.escape(ITEM_TOKEN)}")
_KINDS = {USER_TOKEN: "user", ITEM_TOKEN: "item"}


@dataclasses.dataclass(frozen=True)
class AlignmentTask:
    """One alignment example of RecExplainer: a prompt, the answer the target recommender implies, and its slots.

    Built by :class:`~darec.recexplainer.AlignmentTaskBuilder`. Every recommendation label in
    :attr:`response` comes from the target's scores. In the ``"intention"`` and ``"hybrid"``
    forms the prompt holds :data:`USER_TOKEN` / :data:`ITEM_TOKEN` placeholders, and
    :attr:`placeholders` says, in the order they appear, whose vector each one receives: the
    ``k``-th placeholder gets the embedding of ``placeholders[k]`` (``("user", u)``: the
    target's ``user_embeddings([u])``; ``("item", i)``: row ``i`` of ``item_embeddings()``).
    The ``"behavior"`` form has none.

    Args:
        task (str): one of :data:`TASK_NUMBERS`: ``"next_item"`` (task 1), ``"ranking"`` (2),
            ``"interest"`` (3), ``"item_title"`` and ``"similar_item"`` (4), ``"history"`` (6).
        form (str): ``"behavior"`` (titles only), ``"intention"`` (placeholders only) or
            ``"hybrid"`` (placeholders followed by titles).
        prompt (str): the instruction.
        response (str): the answer to train on.
        user (int, optional): the user the task is about (also in the behaviour form, for the record).
        items (tuple[int, ...]): the items the task asks about, in the order the prompt shows
            them: the ranking's candidates, the item of an interest, title or similarity
            question (the user's history is not listed). (default: ``()``)
        answer_items (tuple[int, ...]): the items the response names, in its order (the
            target's top item, its order of the candidates, the most similar item, the history).
            (default: ``()``)
        placeholders (tuple[tuple[str, int], ...]): ``("user" | "item", id)`` for each placeholder
            of the prompt, in order. (default: ``()``)
        score (float, optional): the target's score of (``user``, the item asked about), for
            ``"interest"``. (default: :obj:`None`)

    Raises:
        ValueError: an unknown task or form, or placeholders that do not match the prompt's
            tokens (a placeholder without an id, an id without a placeholder, or another kind).

    Example:
        >>> task = AlignmentTask("interest", "intention", "Will <user> like <item>?", "Yes", user=3, items=(7,),
        ...                      placeholders=(("user", 3), ("item", 7)), score=2.5)
        >>> task.number, task.placeholder_users, task.placeholder_items
        (3, (3,), (7,))
        >>> AlignmentTask.from_dict(task.as_dict()) == task
        True
        >>> AlignmentTask("interest", "intention", "Will <user> like it?", "Yes", placeholders=(("user", 3), ("item", 7)))
        Traceback (most recent call last):
        ...
        ValueError: the prompt of an 'interest' task has the placeholders ['user'] but ids are given for ['user', 'item']: 'Will <user> like it?'
    """

    task: str
    form: str
    prompt: str
    response: str
    user: int | None = None
    items: tuple[int, ...] = ()
    answer_items: tuple[int, ...] = ()
    placeholders: tuple[tuple[str, int], ...] = ()
    score: float | None = None

    def __post_init__(self) -> None:
        if self.task not in TASK_NUMBERS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {sorted(TASK_NUMBERS)}")
        if self.form not in FORMS:
            raise ValueError(f"unknown form {self.form!r}; expected one of {list(FORMS)}")
        object.__setattr__(self, "items", tuple(int(i) for i in self.items))
        object.__setattr__(self, "answer_items", tuple(int(i) for i in self.answer_items))
        object.__setattr__(self, "placeholders", tuple((str(kind), int(index)) for kind, index in self.placeholders))
        found = [_KINDS[token] for token in _PLACEHOLDER.findall(self.prompt)]
        given = [kind for kind, _ in self.placeholders]
        if found != given:
            raise ValueError(
                f"the prompt of an {self.task!r} task has the placeholders {found} but ids are given for {given}: {self.prompt!r}"
            )
        if self.form == "behavior" and found:
            raise ValueError(f"a behaviour-form prompt must hold no placeholders, got {found}: {self.prompt!r}")
        if self.form != "behavior" and not found:
            raise ValueError(f"an {self.form}-form prompt must hold at least one placeholder: {self.prompt!r}")

    @property
    def number(self) -> int:
        """The task's number in RecExplainer (1, 2, 3, 4 or 6)."""
        return TASK_NUMBERS[self.task]

    @property
    def placeholder_users(self) -> tuple[int, ...]:
        """The user ids of the prompt's :data:`USER_TOKEN` placeholders, in order."""
        return tuple(index for kind, index in self.placeholders if kind == "user")

    @property
    def placeholder_items(self) -> tuple[int, ...]:
        """The item ids of the prompt's :data:`ITEM_TOKEN` placeholders, in order."""
        return tuple(index for kind, index in self.placeholders if kind == "item")

    def as_dict(self) -> dict[str, Any]:
        """The task as a JSON-able dict, with its ``number`` (ignored by :meth:`from_dict`)."""
        record = dataclasses.asdict(self)
        record["items"], record["answer_items"] = list(self.items), list(self.answer_items)
        record["placeholders"] = [list(slot) for slot in self.placeholders]
        return {"task": self.task, "number": self.number, **{k: v for k, v in record.items() if k != "task"}}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> AlignmentTask:
        """The task of an :meth:`as_dict` record.

        Raises:
            ValueError: a field is missing or unknown, or the values do not make a task.
        """
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(record) - fields - {"number"})
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; an alignment task has {sorted(fields)}")
        missing = [name for name in ("task", "form", "prompt", "response") if name not in record]
        if missing:
            raise ValueError(f"missing field(s) {missing}")
        values = {key: value for key, value in record.items() if key != "number"}
        try:
            values["placeholders"] = tuple((kind, index) for kind, index in values.get("placeholders", ()))
        except (TypeError, ValueError) as err:
            raise ValueError(f"`placeholders` must be a list of [kind, id] pairs, got {values.get('placeholders')!r}") from err
        return cls(**values)


def write_tasks(path: str | os.PathLike, tasks: Iterable[AlignmentTask]) -> Path:
    """Writes ``tasks`` to ``path``, one JSON object a line (:meth:`AlignmentTask.as_dict`), replacing it atomically.

    Returns:
        Path: the file.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "tasks.jsonl"
        >>> task = AlignmentTask("item_title", "intention", "What is the title of <item>?", "Heat (1995)",
        ...                      items=(4,), answer_items=(4,), placeholders=(("item", 4),))
        >>> _ = write_tasks(path, [task])
        >>> print(path.read_text().strip())
        {"task": "item_title", "number": 4, "form": "intention", "prompt": "What is the title of <item>?", "response": "Heat (1995)", "user": null, "items": [4], "answer_items": [4], "placeholders": [["item", 4]], "score": null}
        >>> read_tasks(path) == [task]
        True
    """
    path = Path(path).expanduser()
    with atomic_write(path, "w", encoding="utf-8") as handle:
        for task in tasks:
            if not isinstance(task, AlignmentTask):
                raise TypeError(f"write_tasks writes AlignmentTask records, got {type(task).__name__}")
            handle.write(dumps_line(task.as_dict()))
    return path


def read_tasks(path: str | os.PathLike) -> list[AlignmentTask]:
    """The tasks of a file written by :func:`write_tasks` (blank lines are skipped).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a line is not a JSON object or not a valid task; the message names the file and the line.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"task file {path} does not exist")
    tasks = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"a JSON {type(record).__name__}, not an object")
                tasks.append(AlignmentTask.from_dict(record))
            except (ValueError, TypeError) as err:  # json.JSONDecodeError is a ValueError
                raise ValueError(f"{path}, line {number}: not an alignment task ({err})") from err
    return tasks
