"""Alignment examples tokenised for the embedding injector: prompt, response-only labels and the placeholders' vectors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from darec.recexplainer._prompting import PLACEHOLDERS, pad_rows, placeholder_ids, prompt_ids, response_ids
from darec.recexplainer.alignment_task import AlignmentTask

__all__ = ["RecExplainerDataset"]

#: The label of tokens that take no loss (prompt and padding), PyTorch's ``ignore_index``.
IGNORE_INDEX = -100


class RecExplainerDataset(Dataset):
    r"""Alignment examples as token ids, response-only labels and the vectors of their placeholders, for :class:`~darec.recexplainer.RecExplainerModule`.

    Each record is an :class:`~darec.recexplainer.AlignmentTask` (the output of
    :class:`~darec.recexplainer.AlignmentTaskBuilder`) or a mapping with ``"prompt"``,
    ``"response"`` and either ``"placeholders"`` (``[[kind, id], ...]`` as in a task) or
    ``"vectors"`` (the ``(p, d)`` vectors of the prompt's ``p`` placeholders, in order). The prompt
    is wrapped in the tokenizer's chat template when it has one (as the user turn, after an
    optional system turn, ready for the answer: the rendering of
    :meth:`RecEmbeddingInjector.generate_text <darec.recexplainer.RecEmbeddingInjector.generate_text>`),
    and the response follows, ended by the end-of-sequence token:

    .. code-block:: text

        input_ids: [ rendered prompt ............ ][ response ... ][eos]
        labels:    [ -100 ... -100 ............... ][ response ... ][eos]

    so that the loss is taken on the response only. A placeholder ``("user", u)`` takes row ``u``
    of ``user_vectors``, ``("item", i)`` row ``i`` of ``item_vectors``;
    :meth:`from_target` reads both tables from the target recommender. Everything is tokenised
    and checked when the dataset is built.

    Args:
        records (sequence): :class:`~darec.recexplainer.AlignmentTask` objects or mappings (see above).
        tokenizer: the tokenizer of a :class:`~darec.recexplainer.RecEmbeddingInjector`
            (``injector.tokenizer``: it knows the placeholder tokens).
        user_vectors (Tensor, optional): ``(num_users, d)`` vectors of the users. (default: :obj:`None`)
        item_vectors (Tensor, optional): ``(num_items, d)`` vectors of the items. (default: :obj:`None`)
        max_length (int, optional): the most tokens of an example, e.g. ``injector.context_length``.
            (default: :obj:`None`, no limit here; the injector still checks its context)
        system (str, optional): a system prompt for every example. (default: :obj:`None`)

    Raises:
        TypeError: a record of another type.
        ValueError: a tokenizer without the placeholder tokens; a record whose placeholders and
            vectors differ in number, whose ids fall outside the tables (or that has
            placeholders but no table to look them up in), whose response holds a placeholder or
            is empty, or that is longer than ``max_length`` (the message names the record).

    Example:
        >>> import torch
        >>> from tokenizers import Tokenizer, models, pre_tokenizers
        >>> from transformers import PreTrainedTokenizerFast
        >>> words = ["<unk>", "</s>", "<user>", "<item>", "next", "for", "Heat", "Alien"]
        >>> backend = Tokenizer(models.WordLevel({w: k for k, w in enumerate(words)}, unk_token="<unk>"))
        >>> backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        >>> tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="</s>",
        ...                                     pad_token="</s>")
        >>> records = [{"prompt": "next for <user>", "response": "Heat", "placeholders": [["user", 1]]},
        ...            {"prompt": "next for <user>", "response": "Alien", "placeholders": [["user", 0]]}]
        >>> data = RecExplainerDataset(records, tokenizer, user_vectors=torch.eye(2))
        >>> batch = data.collate([data[0], data[1]])
        >>> batch["input_ids"], batch["labels"]
        (tensor([[4, 5, 2, 6, 1],
                [4, 5, 2, 7, 1]]), tensor([[-100, -100, -100,    6,    1],
                [-100, -100, -100,    7,    1]]))
        >>> batch["rec_vectors"]
        tensor([[0., 1.],
                [1., 0.]])
    """

    def __init__(
        self,
        records: Sequence[AlignmentTask | Mapping[str, Any]],
        tokenizer: Any,
        *,
        user_vectors: Tensor | None = None,
        item_vectors: Tensor | None = None,
        max_length: int | None = None,
        system: str | None = None,
    ) -> None:
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2):
            raise ValueError(f"`max_length` must be an integer of at least 2, got {max_length!r}")
        self.tokenizer = tokenizer
        self.slot_ids = set(placeholder_ids(tokenizer).values())
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token: use `injector.tokenizer`, which has one")
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.tables = {"user": self._table(user_vectors, "user_vectors"), "item": self._table(item_vectors, "item_vectors")}
        widths = {table.size(1) for table in self.tables.values() if table is not None}
        if len(widths) > 1:
            raise ValueError(f"user_vectors and item_vectors must have the same width, got {sorted(widths)}")
        self.rec_dim = widths.pop() if widths else None
        self.max_length, self.system = max_length, system
        self.examples = [self._example(index, record) for index, record in enumerate(records)]

    @classmethod
    def from_target(
        cls, records: Sequence[AlignmentTask | Mapping[str, Any]], tokenizer: Any, target: Any, batch_size: int = 1024, **kwargs: Any
    ) -> RecExplainerDataset:
        """The dataset of ``records`` with the vectors of a :class:`~darec.recexplainer.Recommender` (frozen, no gradient).

        Args:
            records, tokenizer: as for the constructor.
            target (Recommender): gives ``user_embeddings(users)`` and ``item_embeddings()``.
            batch_size (int): users encoded at a time. (default: :obj:`1024`)
            **kwargs: the constructor's other arguments.
        """
        with torch.no_grad():
            users = torch.arange(int(target.num_users))
            user_vectors = torch.cat([torch.as_tensor(target.user_embeddings(users[s : s + batch_size])).cpu() for s in range(0, len(users), batch_size)])
            item_vectors = torch.as_tensor(target.item_embeddings()).cpu()
        return cls(records, tokenizer, user_vectors=user_vectors, item_vectors=item_vectors, **kwargs)

    @staticmethod
    def _table(table: Tensor | None, name: str) -> Tensor | None:
        if table is None:
            return None
        table = torch.as_tensor(table).detach().float().cpu()
        if table.dim() != 2:
            raise ValueError(f"`{name}` must be a (n, d) tensor, got shape {tuple(table.shape)}")
        return table

    # -- records -----------------------------------------------------------------------------------
    def _fields(self, index: int, record: AlignmentTask | Mapping[str, Any]) -> tuple[str, str, list, Any]:
        if isinstance(record, AlignmentTask):
            return record.prompt, record.response, list(record.placeholders), None
        if not isinstance(record, Mapping):
            raise TypeError(f"record {index} is a {type(record).__name__}, not an AlignmentTask or a mapping")
        missing = [key for key in ("prompt", "response") if not isinstance(record.get(key), str)]
        if missing:
            raise ValueError(f"record {index} has no {' or '.join(missing)} text")
        return record["prompt"], record["response"], list(record.get("placeholders") or ()), record.get("vectors")

    def _vectors(self, index: int, placeholders: list, vectors: Any) -> Tensor | None:
        if vectors is not None:
            vectors = torch.as_tensor(vectors).detach().float().cpu()
            vectors = vectors.unsqueeze(0) if vectors.dim() == 1 else vectors
            if vectors.dim() != 2 or (self.rec_dim is not None and vectors.size(1) != self.rec_dim):
                raise ValueError(f"record {index}: its vectors must be (p, {self.rec_dim or 'd'}), got shape {tuple(vectors.shape)}")
            return vectors
        if not placeholders:
            return None
        rows = []
        for kind, key in placeholders:
            table = self.tables.get(kind)
            if kind not in PLACEHOLDERS:
                raise ValueError(f"record {index}: unknown placeholder kind {kind!r}; expected 'user' or 'item'")
            if table is None:
                raise ValueError(f"record {index} has a {kind} placeholder but no {kind}_vectors were given (see from_target)")
            if not 0 <= int(key) < table.size(0):
                raise ValueError(f"record {index}: {kind} {key} is outside the {table.size(0)} rows of {kind}_vectors")
            rows.append(table[int(key)])
        return torch.stack(rows)

    def _example(self, index: int, record: AlignmentTask | Mapping[str, Any]) -> dict[str, Any]:
        prompt, response, placeholders, vectors = self._fields(index, record)
        if not response.strip():
            raise ValueError(f"record {index} has an empty response: there is nothing to learn")
        vectors = self._vectors(index, placeholders, vectors)
        prompt_part = prompt_ids(self.tokenizer, prompt, self.system)
        answer_part = response_ids(self.tokenizer, response)
        if self.slot_ids.intersection(answer_part):
            raise ValueError(f"record {index}: the response holds a placeholder token: {response!r}")
        slots = sum(token in self.slot_ids for token in prompt_part)
        given = 0 if vectors is None else vectors.size(0)
        if slots != given:
            raise ValueError(
                f"record {index}: the prompt holds {slots} placeholder token(s) but {given} vector(s) were given: {prompt!r}"
            )
        length = len(prompt_part) + len(answer_part)
        if self.max_length is not None and length > self.max_length:
            raise ValueError(
                f"record {index} has {length} tokens ({len(prompt_part)} of prompt, {len(answer_part)} of response), more "
                f"than max_length={self.max_length}: shorten it (e.g. the task builder's max_history)"
            )
        input_ids = torch.tensor(prompt_part + answer_part, dtype=torch.long)
        labels = input_ids.clone()
        labels[: len(prompt_part)] = IGNORE_INDEX
        return {"input_ids": input_ids, "labels": labels, "rec_vectors": vectors}

    # -- Dataset -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """``{"input_ids": (L,), "labels": (L,), "rec_vectors": (p, d) or None}`` of example ``index``."""
        return self.examples[index]

    def collate(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """A right-padded batch: ``input_ids``, ``attention_mask``, ``labels`` (``-100`` on padding), all ``(B, T)``,
        and ``rec_vectors``, the ``(P, d)`` vectors of the batch's placeholders in reading order (:obj:`None` without any).

        Use it as the ``collate_fn`` of a :class:`~torch.utils.data.DataLoader`.
        """
        input_ids, attention_mask = pad_rows([e["input_ids"].tolist() for e in examples], self.pad_token_id, "right")
        labels, _ = pad_rows([e["labels"].tolist() for e in examples], self.pad_token_id, "right", fill=IGNORE_INDEX)
        vectors = [e["rec_vectors"] for e in examples if e["rec_vectors"] is not None]
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "rec_vectors": torch.cat(vectors) if vectors else None,
        }
