"""RX-2: alignment records tokenised for the injector (chat template, response-only labels, vectors, errors)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from darec.recexplainer.alignment_task_builder import AlignmentTaskBuilder  # noqa: E402
from darec.recexplainer.recexplainer_dataset import RecExplainerDataset  # noqa: E402
from tests.recexplainer.tiny_lm import REC_DIM, TITLES, VOCAB, make_injector, task_one, tiny_tokenizer, users_and_tasks  # noqa: E402


def test_examples_use_the_chat_template_and_label_the_response_only():
    injector = make_injector()
    vectors, tasks = users_and_tasks()
    data = RecExplainerDataset(tasks, injector.tokenizer, user_vectors=vectors)
    words = "<|im_start|> user which movie next for the user <user> <|im_end|> <|im_start|> assistant".split()
    prompt = [VOCAB.get(word, injector.placeholder_token_ids["user"]) for word in words]
    example = data[2]
    assert example["input_ids"].tolist() == prompt + [VOCAB[TITLES[2]], VOCAB["</s>"]]
    assert example["labels"].tolist() == [-100] * len(prompt) + [VOCAB[TITLES[2]], VOCAB["</s>"]]
    torch.testing.assert_close(example["rec_vectors"], vectors[2:3])

    plain = make_injector(chat=False)
    example = RecExplainerDataset(tasks, plain.tokenizer, user_vectors=vectors)[2]
    assert example["input_ids"].tolist()[:8] == [VOCAB[w] for w in "which movie next for the user".split()] + [
        plain.placeholder_token_ids["user"],
        VOCAB[TITLES[2]],
    ]


def test_collate_pads_on_the_right_and_flattens_the_vectors_in_reading_order():
    injector = make_injector()
    records = [
        {"prompt": "the movie", "response": "Heat"},  # behaviour form: no placeholder
        {"prompt": "is <item> like <user>", "response": "Yes", "placeholders": [["item", 1], ["user", 0]]},
        {"prompt": "the <item> title", "response": "Heat Alien", "vectors": torch.full((1, REC_DIM), 7.0)},
    ]
    users, items = torch.randn(2, REC_DIM), torch.randn(3, REC_DIM)
    data = RecExplainerDataset(records, injector.tokenizer, user_vectors=users, item_vectors=items)
    batch = data.collate([data[0], data[1], data[2]])
    lengths = [len(data[k]["input_ids"]) for k in range(3)]
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (3, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    assert (batch["input_ids"][batch["attention_mask"] == 0] == injector.tokenizer.pad_token_id).all()
    torch.testing.assert_close(batch["rec_vectors"], torch.stack([items[1], users[0], torch.full((REC_DIM,), 7.0)]))
    assert data.collate([data[0]])["rec_vectors"] is None
    assert injector(**data.collate([data[0], data[1], data[2]])).loss.isfinite()


def test_records_of_the_task_builder_feed_the_injector(target, catalog, histories):
    injector = make_injector(context=512, rec_dim=target.dim)
    tasks = AlignmentTaskBuilder(target, catalog, histories, mode="hybrid", seed=0).build()
    data = RecExplainerDataset.from_target(tasks, injector.tokenizer, target, max_length=injector.context_length)
    assert len(data) == len(tasks)
    slots = [len(task.placeholders) for task in tasks]
    assert [0 if e["rec_vectors"] is None else len(e["rec_vectors"]) for e in data] == slots
    for task, example in zip(tasks, data):
        expected = [target.users[key] if kind == "user" else target.items[key] for kind, key in task.placeholders]
        torch.testing.assert_close(example["rec_vectors"], torch.stack(expected))
    batch = data.collate([data[k] for k in range(0, len(data), max(1, len(data) // 6))])  # mixed tasks
    assert injector(**batch).loss.isfinite()


def test_bad_records_are_refused_naming_the_record():
    injector = make_injector(context=32)
    tokenizer = injector.tokenizer
    users = torch.randn(2, REC_DIM)
    with pytest.raises(ValueError, match="tokenizer has no <user> or <item> token"):
        RecExplainerDataset([task_one(0, "Heat")], tiny_tokenizer(), user_vectors=users)
    with pytest.raises(ValueError, match="record 1 has a user placeholder but no user_vectors"):
        RecExplainerDataset([{"prompt": "the movie", "response": "Heat"}, task_one(0, "Heat")], tokenizer)
    with pytest.raises(ValueError, match="record 0: user 5 is outside the 2 rows of user_vectors"):
        RecExplainerDataset([task_one(5, "Heat")], tokenizer, user_vectors=users)
    with pytest.raises(ValueError, match=r"record 0: the prompt holds 1 placeholder token\(s\) but 2 vector\(s\)"):
        RecExplainerDataset([{"prompt": "the <user>", "response": "Heat", "vectors": torch.randn(2, REC_DIM)}], tokenizer)
    with pytest.raises(ValueError, match=r"record 0: the prompt holds 1 placeholder token\(s\) but 0 vector\(s\)"):
        RecExplainerDataset([{"prompt": "the <user>", "response": "Heat"}], tokenizer, user_vectors=users)
    with pytest.raises(ValueError, match=r"record 0 has 35 tokens \(33 of prompt, 2 of response\), more than max_length=32"):
        RecExplainerDataset([{"prompt": "the movie " * 14, "response": "Heat"}], tokenizer, max_length=32)
    with pytest.raises(ValueError, match="record 0 has an empty response"):
        RecExplainerDataset([{"prompt": "the movie", "response": " "}], tokenizer)
    with pytest.raises(ValueError, match="record 0: the response holds a placeholder"):
        RecExplainerDataset([{"prompt": "the movie", "response": "<user>"}], tokenizer)
    with pytest.raises(TypeError, match="record 0 is a str"):
        RecExplainerDataset(["the movie"], tokenizer)
    with pytest.raises(ValueError, match="same width"):
        RecExplainerDataset([], tokenizer, user_vectors=users, item_vectors=torch.randn(2, 3))
