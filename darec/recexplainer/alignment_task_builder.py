"""RecExplainer's alignment tasks (RX-1), labelled by the target recommender, in the behaviour, intention or hybrid style."""

from __future__ import annotations

import os
import string
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from darec.recexplainer.alignment_task import ITEM_TOKEN, TASK_NUMBERS, USER_TOKEN, AlignmentTask, write_tasks
from darec.recexplainer.recommender import Recommender, check_recommender

__all__ = ["AlignmentTaskBuilder"]

MODES = ("behavior", "intention", "hybrid")
#: The tasks of each mode, in the order :meth:`AlignmentTaskBuilder.build` writes them.
MODE_TASKS = {
    "behavior": ("next_item", "ranking", "interest", "similar_item"),
    "intention": ("next_item", "ranking", "interest", "item_title", "similar_item", "history"),
    "hybrid": ("next_item", "ranking", "interest", "item_title", "similar_item", "history"),
}
#: Tasks whose hybrid form would put the answer in the prompt: in hybrid mode they take the intention form.
_INTENTION_ONLY = ("item_title", "history")
#: The prompt of each task: ``{user}`` and ``{item}`` are the user's and the item's phrase in the
#: mode's form, ``{items}`` the ranking's candidates and ``{sep}`` the title separator.
TEMPLATES = {
    "next_item": "Which item would the recommender suggest next to {user}? Answer with its title.",
    "ranking": (
        "Rank these items for {user}, from the one the recommender scores highest to the lowest: {items}. "
        "Answer with their titles in that order, separated by '{sep}'."
    ),
    "interest": "Would the recommender consider {item} a good match for {user}? Answer Yes or No.",
    "item_title": "What is the title of the item {item}?",
    "similar_item": "Which item does the recommender find most similar to {item}? Answer with its title.",
    "history": "Which items has {user} interacted with? List their titles, separated by '{sep}'.",
}
_SEEDS = {name: index for index, name in enumerate(TASK_NUMBERS)}  # one random stream per task and entity


class AlignmentTaskBuilder:
    r"""Builds RecExplainer's alignment tasks for an LLM that is to imitate a trained recommender (RX-1).

    Every label comes from the *target*'s scores, never from the data's held-out interactions:
    the LLM learns what the model does, not what users did. For every user with a history
    (``histories``: the training items only; they are never recommended):

    - **task 1** ``"next_item"``: the target's top item outside the history (ties: the lowest id);
    - **task 2** ``"ranking"``: ``num_candidates`` items drawn at random positions of the target's
      ranking of the items outside the history, shown shuffled; the answer lists them in the
      target's order (descending score, ties by id);
    - **task 3** ``"interest"``: one item scoring above the ``positive_quantile`` quantile of the
      user's scores outside the history (answer ``"Yes"``) and one below the
      ``negative_quantile`` quantile (``"No"``), two examples;
    - **task 6** ``"history"`` (intention and hybrid modes): the user's vector alone, answered
      with the history's titles;

    and for every item:

    - **task 4** ``"similar_item"``: the item whose target embedding has the largest dot product
      with the item's (itself excluded), and ``"item_title"`` (intention and hybrid modes): the
      item's vector alone, answered with its title.

    The mode decides how users and items appear in prompts:

    - ``"behavior"``: as text, a user as the titles of the history, an item as its title; no
      placeholder;
    - ``"intention"``: as :data:`~darec.recexplainer.alignment_task.USER_TOKEN` and
      :data:`~darec.recexplainer.alignment_task.ITEM_TOKEN` placeholders that receive the
      target's vectors (:attr:`AlignmentTask.placeholders <darec.recexplainer.AlignmentTask.placeholders>`);
      no title in the prompt;
    - ``"hybrid"``: both, ``<user>`` followed by the history's titles, ``<item>`` followed by the
      title; ``"item_title"`` and ``"history"``, whose answer would then be in the prompt, take
      the intention form (as in RecExplainer's code).

    Task 5 (general instruction data against forgetting) needs no target and is not built here.

    **Long histories.** Prompts and task-6 answers show the last ``max_history`` items of a
    history, in the order given (for a sequence data set, the latest; for users x items data,
    the highest item ids, their order carrying no time). With ``on_long_history="truncate"``
    (the default) a warning counts the users concerned; ``"error"`` refuses them instead. The
    whole history is still excluded from the labels.

    **Randomness.** Draws come from :func:`numpy.random.default_rng` seeded by ``(seed, task,
    user or item)``: the same seed gives the same tasks, and a user's tasks do not depend on
    which other users are built (up to the last bit of a score computed in another batch).

    - [0] Lei et al., "RecExplainer: Aligning Large Language Models for Explaining Recommendation
      Models", KDD 2024, arXiv:2311.10947.

    Args:
        target (Recommender): the trained recommender (e.g.
            :class:`~darec.recexplainer.CFRecommender`, :func:`~darec.recexplainer.load_recommender`).
        catalog (sequence of str): the title of every item, ``catalog[i]`` for item ``i``
            (surrounding whitespace is dropped).
        histories (sequence or mapping): each user's training items, ``histories[u]`` (a sequence
            of ``num_users`` lists, or a mapping of user to items; users left out have none).
        mode (str): ``"behavior"``, ``"intention"`` or ``"hybrid"``.
        seed (int): seed of every draw. (default: :obj:`0`)
        tasks (sequence of str, optional): build only these (names of
            :data:`~darec.recexplainer.alignment_task.TASK_NUMBERS`); all of the mode's by default.
        max_history (int): the most items of a history in a prompt or a task-6 answer. (default: :obj:`20`)
        on_long_history (str): ``"truncate"`` (keep the last ``max_history``, with a warning) or
            ``"error"``. (default: :obj:`"truncate"`)
        num_candidates (int): candidates of a ranking task. (default: :obj:`5`)
        positive_quantile (float): a "Yes" item scores above this quantile. (default: :obj:`0.8`)
        negative_quantile (float): a "No" item scores below this quantile. (default: :obj:`0.5`)
        separator (str): between titles in lists (prompts and answers); no title may contain
            it. (default: :obj:`"; "`)
        batch_size (int): users scored at a time. (default: :obj:`256`)

    Raises:
        ValueError: an unknown mode or task, a task the mode has no form for, a catalog of another
            length than the target's items or with empty titles (or titles holding a placeholder
            or the separator), history ids out of range, a history longer than ``max_history``
            with ``on_long_history="error"``, or settings out of range.
        TypeError: ``target`` lacks a member of :class:`~darec.recexplainer.Recommender`.

    Example:
        >>> import torch
        >>> from darec import DaRecModule
        >>> from darec.backbones import MatrixFactorization
        >>> from darec.recexplainer import CFRecommender
        >>> _ = torch.manual_seed(0)
        >>> model = DaRecModule(MatrixFactorization(num_nodes=10, embedding_dim=4), num_users=2, num_items=8)
        >>> model.set_graph(torch.tensor([[0, 0], [0, 1], [1, 2]]))
        >>> target = CFRecommender(model)
        >>> titles = ["Heat", "Alien", "Fargo", "Ran", "Heat 2", "Big", "Jaws", "Up"]
        >>> builder = AlignmentTaskBuilder(target, titles, target.histories, mode="hybrid", seed=0)
        >>> tasks = builder.build()
        >>> first = tasks[0]
        >>> first.task, first.prompt
        ('next_item', 'Which item would the recommender suggest next to the user <user>, who has interacted with: Heat; Alien? Answer with its title.')
        >>> first.placeholders, first.response == titles[int(target.score(torch.tensor([0]))[0, 2:].argmax()) + 2]
        ((('user', 0),), True)
    """

    def __init__(
        self,
        target: Recommender,
        catalog: Sequence[str],
        histories: Sequence[Sequence[int]] | Mapping[int, Sequence[int]],
        mode: str,
        seed: int = 0,
        *,
        tasks: Sequence[str] | None = None,
        max_history: int = 20,
        on_long_history: str = "truncate",
        num_candidates: int = 5,
        positive_quantile: float = 0.8,
        negative_quantile: float = 0.5,
        separator: str = "; ",
        batch_size: int = 256,
    ) -> None:
        self.target = check_recommender(target)
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {list(MODES)}, got {mode!r}")
        self.mode = mode
        self.tasks = self._checked_tasks(tasks)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        for name, value in (("max_history", max_history), ("num_candidates", num_candidates), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if on_long_history not in ("truncate", "error"):
            raise ValueError(f"`on_long_history` must be 'truncate' or 'error', got {on_long_history!r}")
        if not 0.0 < negative_quantile <= positive_quantile < 1.0:
            raise ValueError(
                "the quantiles must satisfy 0 < negative_quantile <= positive_quantile < 1, got "
                f"negative_quantile={negative_quantile}, positive_quantile={positive_quantile}"
            )
        if not isinstance(separator, str) or not separator.strip():
            raise ValueError(f"`separator` must be a visible string such as '; ', got {separator!r}")
        self.max_history, self.num_candidates, self.batch_size = int(max_history), int(num_candidates), int(batch_size)
        self.on_long_history = on_long_history
        self.positive_quantile, self.negative_quantile = float(positive_quantile), float(negative_quantile)
        self.separator = separator
        self.num_users, self.num_items = int(self.target.num_users), int(self.target.num_items)
        self.catalog = self._checked_catalog(catalog)
        self.histories = self._checked_histories(histories)

    # -- checks -----------------------------------------------------------------------------------
    def _checked_tasks(self, tasks: Sequence[str] | None) -> tuple[str, ...]:
        available = MODE_TASKS[self.mode]
        if tasks is None:
            return available
        if isinstance(tasks, str):
            tasks = [tasks]
        unknown = [task for task in tasks if task not in TASK_NUMBERS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; the tasks are {list(TASK_NUMBERS)}")
        missing = [task for task in tasks if task not in available]
        if missing:
            raise ValueError(
                f"task(s) {missing} have no behaviour form: they ask about the target's vector alone (a title would "
                "give the answer away); use mode 'intention' or 'hybrid'"
            )
        return tuple(task for task in available if task in tasks)

    def _checked_catalog(self, catalog: Sequence[str]) -> list[str]:
        if isinstance(catalog, (str, bytes)) or not hasattr(catalog, "__len__"):
            raise TypeError(f"`catalog` must be a sequence of item titles, got {type(catalog).__name__}")
        titles = list(catalog)
        if len(titles) != self.num_items:
            raise ValueError(
                f"the catalog has {len(titles):,} titles but the target scores {self.num_items:,} items: give one title per "
                "internal item id, in id order"
            )
        not_text = [i for i, title in enumerate(titles) if not isinstance(title, str)]
        if not_text:
            raise ValueError(f"catalog titles must be strings; item {not_text[0]} has a {type(titles[not_text[0]]).__name__}")
        titles = [title.strip() for title in titles]
        for problem, bad in (
            ("empty titles", [i for i, title in enumerate(titles) if not title]),
            (f"titles holding a placeholder token ({USER_TOKEN} or {ITEM_TOKEN})",
             [i for i, title in enumerate(titles) if USER_TOKEN in title or ITEM_TOKEN in title]),
            (f"titles holding the separator {self.separator!r} (pass another `separator`)",
             [i for i, title in enumerate(titles) if self.separator.strip() in title]),
        ):  # fmt: skip
            if bad:
                raise ValueError(f"the catalog has {len(bad):,} {problem}, e.g. items {bad[:5]}")
        shared = len(titles) - len(set(titles))
        if shared:
            warnings.warn(
                f"{shared:,} catalog titles repeat another item's: answers naming them cannot be told apart by string "
                "matching (append a year or an id to make them unique)",
                UserWarning,
                stacklevel=3,
            )
        return titles

    def _checked_histories(self, histories: Sequence[Sequence[int]] | Mapping[int, Sequence[int]]) -> list[np.ndarray]:
        if isinstance(histories, Mapping):
            users = [int(u) for u in histories]
            outside = [u for u in users if not 0 <= u < self.num_users]
            if outside:
                raise ValueError(f"`histories` has users outside 0 .. {self.num_users - 1}, e.g. {outside[:5]}")
            rows: list[Any] = [[] for _ in range(self.num_users)]
            for user, items in histories.items():
                rows[int(user)] = items
        else:
            rows = list(histories)
            if len(rows) != self.num_users:
                raise ValueError(
                    f"`histories` has {len(rows):,} rows but the target has {self.num_users:,} users: give one (possibly "
                    "empty) history per user, or a mapping of user to items"
                )
        out = []
        for user, items in enumerate(rows):
            array = np.asarray(items.cpu() if isinstance(items, torch.Tensor) else items, dtype=np.int64).reshape(-1)
            if array.size and (array.min() < 0 or array.max() >= self.num_items):
                bad = array[(array < 0) | (array >= self.num_items)]
                raise ValueError(
                    f"the history of user {user} holds item {int(bad[0])}, outside 0 .. {self.num_items - 1} (the target's "
                    f"{self.num_items:,} items)"
                )
            out.append(array)
        long = [user for user, items in enumerate(out) if len(items) > self.max_history]
        if long and self.on_long_history == "error":
            user = long[0]
            raise ValueError(
                f"{len(long):,} history(ies) are longer than max_history={self.max_history}, e.g. user {user} with "
                f"{len(out[user])} items: raise max_history, or pass on_long_history='truncate'"
            )
        if long:
            warnings.warn(
                f"{len(long):,} of {self.num_users:,} users have more than max_history={self.max_history} training items: "
                f"prompts and history answers show their last {self.max_history} (all stay excluded from the labels)",
                UserWarning,
                stacklevel=3,
            )
        return out

    # -- phrases ----------------------------------------------------------------------------------
    def _form(self, task: str) -> str:
        return "intention" if self.mode == "hybrid" and task in _INTENTION_ONLY else self.mode

    def _shown_history(self, user: int) -> list[int]:
        return self.histories[user][-self.max_history :].tolist()

    def _titles(self, items: Sequence[int]) -> str:
        return self.separator.join(self.catalog[i] for i in items)

    def _user_phrase(self, user: int, form: str) -> tuple[str, list[tuple[str, int]]]:
        if form == "intention":
            return f"the user {USER_TOKEN}", [("user", user)]
        titles = self._titles(self._shown_history(user))
        if form == "behavior":
            return f"the user who has interacted with: {titles}", []
        return f"the user {USER_TOKEN}, who has interacted with: {titles}", [("user", user)]

    def _item_phrase(self, item: int, form: str) -> tuple[str, list[tuple[str, int]]]:
        if form == "behavior":
            return self.catalog[item], []
        if form == "intention":
            return ITEM_TOKEN, [("item", item)]
        return f"{ITEM_TOKEN} {self.catalog[item]}", [("item", item)]

    def _prompt(self, task: str, form: str, user: int | None = None, items: Sequence[int] = ()) -> tuple[str, list]:
        """The task's prompt in ``form`` and its placeholders in the order they appear."""
        parts: list[str] = []
        slots: list[tuple[str, int]] = []
        for text, field, _, _ in string.Formatter().parse(TEMPLATES[task]):
            parts.append(text)
            if field is None:
                continue
            if field == "user":
                phrase, found = self._user_phrase(user, form)
            elif field == "item":
                phrase, found = self._item_phrase(items[0], form)
            elif field == "items":
                phrases = [self._item_phrase(item, form) for item in items]
                phrase, found = self.separator.join(p for p, _ in phrases), [slot for _, s in phrases for slot in s]
            else:  # "sep"
                phrase, found = self.separator, []
            parts.append(phrase)
            slots += found
        return "".join(parts), slots

    def _task(self, task: str, user: int | None, items: Sequence[int], response: str, answer: Sequence[int],
              score: float | None = None) -> AlignmentTask:  # fmt: skip
        form = self._form(task)
        prompt, slots = self._prompt(task, form, user, items)
        return AlignmentTask(task, form, prompt, response, user=user, items=tuple(items), answer_items=tuple(answer),
                             placeholders=tuple(slots), score=score)  # fmt: skip

    def _rng(self, task: str, entity: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _SEEDS[task], entity])

    # -- building ---------------------------------------------------------------------------------
    def _scores(self, users: list[int]) -> np.ndarray:
        """``(len(users), num_items)`` float64 target scores."""
        scores = self.target.score(torch.as_tensor(users, dtype=torch.long))
        scores = scores.detach().float().cpu().numpy().astype(np.float64)
        if scores.shape != (len(users), self.num_items):
            raise ValueError(
                f"the target's score(users) returned shape {scores.shape}, expected ({len(users)}, {self.num_items}) "
                "(users x all items)"
            )
        bad = ~np.isfinite(scores).all(axis=1)
        if bad.any():
            raise ValueError(f"the target's scores of user {users[int(np.flatnonzero(bad)[0])]} hold NaN or infinite values")
        return scores

    def _user_tasks(self, user: int, scores: np.ndarray, skipped: dict[tuple[str, str], list[int]]) -> dict[str, list[AlignmentTask]]:
        allowed = np.setdiff1d(np.arange(self.num_items), self.histories[user])  # ascending ids
        out: dict[str, list[AlignmentTask]] = {task: [] for task in self.tasks}
        if not len(allowed):
            skipped["user", "every item is in their history"].append(user)
            return out
        values = scores[allowed]
        ranked = allowed[np.lexsort((allowed, -values))]  # descending score, ties by id
        if "next_item" in self.tasks:
            top = int(ranked[0])
            out["next_item"].append(self._task("next_item", user, (), self.catalog[top], (top,)))
        if "ranking" in self.tasks:
            if len(ranked) < self.num_candidates:
                skipped["ranking", f"fewer than {self.num_candidates} items are outside their history"].append(user)
            else:
                rng = self._rng("ranking", user)
                positions = np.sort(rng.choice(len(ranked), self.num_candidates, replace=False))
                answer = ranked[positions].tolist()
                shown = [answer[k] for k in rng.permutation(self.num_candidates)]
                out["ranking"].append(self._task("ranking", user, shown, self._titles(answer), answer))
        if "interest" in self.tasks:
            high, low = np.quantile(values, [self.positive_quantile, self.negative_quantile])
            positives, negatives = allowed[values > high], allowed[values < low]
            if not len(positives) or not len(negatives):
                reason = f"no item scores above the {self.positive_quantile} or below the {self.negative_quantile} quantile (tied scores?)"
                skipped["interest", reason].append(user)
            else:
                rng = self._rng("interest", user)
                for item, answer in ((int(rng.choice(positives)), "Yes"), (int(rng.choice(negatives)), "No")):
                    out["interest"].append(self._task("interest", user, (item,), answer, (), score=float(scores[item])))
        if "history" in self.tasks:
            shown = self._shown_history(user)
            out["history"].append(self._task("history", user, (), self._titles(shown), shown))
        return out

    def _similar_items(self, items: list[int]) -> list[int]:
        """The most similar other item of each of ``items``, by the dot product of the target's item embeddings."""
        table = self.target.item_embeddings().detach().float().cpu()
        if table.shape[0] != self.num_items:
            raise ValueError(f"the target's item_embeddings() has {table.shape[0]:,} rows for {self.num_items:,} items")
        found = []
        for start in range(0, len(items), self.batch_size):
            chunk = torch.as_tensor(items[start : start + self.batch_size], dtype=torch.long)
            similarity = (table[chunk] @ table.T).double()
            similarity[torch.arange(len(chunk)), chunk] = float("-inf")
            found += similarity.argmax(dim=1).tolist()  # the first maximum: ties go to the lowest id
        return found

    def _checked_ids(self, ids: Sequence[int] | None, count: int, what: str) -> list[int]:
        if ids is None:
            return list(range(count))
        ids = [int(i) for i in (ids.tolist() if isinstance(ids, (np.ndarray, torch.Tensor)) else ids)]
        bad = [i for i in ids if not 0 <= i < count]
        if bad:
            raise ValueError(f"{what} ids must be in 0 .. {count - 1}, got {bad[:5]}")
        return sorted(set(ids))

    def build(self, users: Sequence[int] | None = None, items: Sequence[int] | None = None) -> list[AlignmentTask]:
        """The tasks, grouped by task (in :data:`MODE_TASKS` order), then by user or item id.

        Args:
            users (sequence of int, optional): the users of tasks 1, 2, 3 and 6; every user by default.
                Users without a history get none (a warning counts them).
            items (sequence of int, optional): the items of task 4; every item by default.

        Returns:
            list[AlignmentTask]: the examples.

        Raises:
            ValueError: a user or item id is out of range, or the target's scores are not
                ``(n, num_items)`` finite values.
        """
        users = self._checked_ids(users, self.num_users, "user")
        items = self._checked_ids(items, self.num_items, "item")
        built: dict[str, list[AlignmentTask]] = {task: [] for task in self.tasks}
        skipped: dict[tuple[str, str], list[int]] = defaultdict(list)
        if any(task in self.tasks for task in ("next_item", "ranking", "interest", "history")):
            active = [user for user in users if len(self.histories[user])]
            if len(active) < len(users):
                skipped["user", "they have no history"] = [user for user in users if not len(self.histories[user])]
            for start in range(0, len(active), self.batch_size):
                chunk = active[start : start + self.batch_size]
                scores = self._scores(chunk)
                for row, user in enumerate(chunk):
                    for task, found in self._user_tasks(user, scores[row], skipped).items():
                        built[task] += found
        if "item_title" in self.tasks:
            built["item_title"] = [self._task("item_title", None, (i,), self.catalog[i], (i,)) for i in items]
        if "similar_item" in self.tasks:
            built["similar_item"] = [
                self._task("similar_item", None, (i,), self.catalog[j], (j,)) for i, j in zip(items, self._similar_items(items))
            ]
        for (task, reason), who in skipped.items():
            warnings.warn(f"{len(who):,} user(s) got no {task} task: {reason} (e.g. users {who[:5]})", UserWarning, stacklevel=2)
        return [task for name in self.tasks for task in built[name]]

    def write(self, path: str | os.PathLike, users: Sequence[int] | None = None, items: Sequence[int] | None = None) -> list[AlignmentTask]:
        """:meth:`build` and :func:`~darec.recexplainer.write_tasks` to ``path`` (JSON lines, one task a line).

        Returns:
            list[AlignmentTask]: the tasks written.
        """
        tasks = self.build(users, items)
        write_tasks(path, tasks)
        return tasks

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mode={self.mode!r}, seed={self.seed}, tasks={list(self.tasks)}, "
            f"users={self.num_users}, items={self.num_items}, max_history={self.max_history})"
        )
