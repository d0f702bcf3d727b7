"""RX-2: the Lightning module (response-only loss, optimiser, autocast, small checkpoints) and an over-fit run on task 1."""

from __future__ import annotations

import time

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

pytest.importorskip("transformers")
pytest.importorskip("peft")

from darec.recexplainer.rec_embedding_injector import RecEmbeddingInjector  # noqa: E402
from darec.recexplainer.recexplainer_dataset import RecExplainerDataset  # noqa: E402
from darec.recexplainer.recexplainer_module import RecExplainerModule  # noqa: E402
from tests.recexplainer.tiny_lm import REC_DIM, make_injector, task_one, tiny_llama, tiny_tokenizer, users_and_tasks  # noqa: E402

#: Steps of the over-fit run: 100% task-1 exact match came at 40-60 steps for four seeds (lr 3e-3).
OVERFIT_STEPS = 120


def make_trainer(tmp_path, steps: int) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )


# -- the module -------------------------------------------------------------------------------------
def test_loss_is_the_mean_cross_entropy_of_the_response_tokens():
    torch.manual_seed(0)
    module = RecExplainerModule(make_injector())
    records = [
        task_one(0, "Heat"),
        {"prompt": "the movie", "response": "Heat Alien Fargo"},
        {"prompt": "is <item> like the user <user>", "response": "Yes", "placeholders": [["item", 0], ["user", 1]]},
    ]
    data = RecExplainerDataset(records, module.injector.tokenizer, user_vectors=torch.randn(2, REC_DIM), item_vectors=torch.randn(1, REC_DIM))
    batch = data.collate([data[0], data[1], data[2]])
    loss = module.loss(batch)
    logits = module(batch["input_ids"], batch["attention_mask"], batch["rec_vectors"]).logits
    terms = []
    for b, example in enumerate(data):
        ids, labels = example["input_ids"], example["labels"]
        for t in range(1, len(ids)):
            if labels[t] != -100:  # a response token, predicted from the position before it
                terms.append(-torch.log_softmax(logits[b, t - 1].double(), -1)[ids[t]])
    assert len(terms) == 2 + 4 + 2  # title + eos, three titles + eos, "Yes" + eos
    torch.testing.assert_close(loss.double(), torch.stack(terms).mean(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no response token"):
        module.loss({**batch, "labels": torch.full_like(batch["labels"], -100)})


def test_the_optimiser_holds_the_trainable_parameters_only_and_warms_up():
    module = RecExplainerModule(make_injector(), lr=1e-3, warmup_steps=4)
    config = module.configure_optimizers()
    optimizer, schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.AdamW)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in module.parameters() if p.requires_grad}
    assert len(held) < len(list(module.parameters()))
    assert schedule.get_last_lr() == [pytest.approx(1e-3 / 4)]
    plain = RecExplainerModule(make_injector())
    assert isinstance(plain.configure_optimizers(), torch.optim.AdamW)
    with pytest.raises(ValueError, match="`lr` must be positive"):
        RecExplainerModule(make_injector(), lr=0)
    with pytest.raises(TypeError, match="must be a RecEmbeddingInjector"):
        RecExplainerModule(torch.nn.Linear(2, 2))


def test_cpu_runs_in_float32_and_bf16_autocast_on_request():
    injector = make_injector()
    vectors, tasks = users_and_tasks()
    data = RecExplainerDataset(tasks, injector.tokenizer, user_vectors=vectors)
    batch = data.collate([data[0], data[1]])
    assert RecExplainerModule(injector)(**batch).logits.dtype == torch.float32
    forced = RecExplainerModule(injector, bf16=True)
    assert forced(**batch).logits.dtype == torch.bfloat16
    assert forced.loss(batch).dtype == torch.float32 and forced.loss(batch).isfinite()


def test_overfit_reaches_exact_match_on_task_one(tmp_path):
    """<= 16 synthetic users, single-token titles: each user's vector must bring out their title."""
    torch.manual_seed(0)
    vectors, tasks = users_and_tasks(num_users=16, seed=1)
    module = RecExplainerModule(make_injector(lora_r=8), lr=3e-3)
    data = RecExplainerDataset(tasks, module.injector.tokenizer, user_vectors=vectors)
    start = time.perf_counter()
    make_trainer(tmp_path, OVERFIT_STEPS).fit(module, DataLoader(data, batch_size=16, shuffle=True, collate_fn=data.collate))
    answers = module.generate_text([task.prompt for task in tasks], vectors, max_new_tokens=3)
    seconds = time.perf_counter() - start
    assert answers == [task.response for task in tasks]
    assert seconds < 60, f"the over-fit run took {seconds:.1f} s"
    shuffled = module.generate_text([task.prompt for task in tasks], vectors.roll(1, 0), max_new_tokens=3)
    assert shuffled == [task.response for task in tasks[-1:] + tasks[:-1]]  # the vector, not the prompt, decides


# -- checkpoints ------------------------------------------------------------------------------------
def _fit_a_little(tmp_path, module: RecExplainerModule, steps: int = 2) -> L.Trainer:
    vectors, tasks = users_and_tasks()
    data = RecExplainerDataset(tasks, module.injector.tokenizer, user_vectors=vectors)
    trainer = make_trainer(tmp_path, steps)
    trainer.fit(module, DataLoader(data, batch_size=4, collate_fn=data.collate))
    return trainer


def _logits(module: RecExplainerModule) -> torch.Tensor:
    vectors, tasks = users_and_tasks()
    data = RecExplainerDataset(tasks, module.injector.tokenizer, user_vectors=vectors)
    with torch.no_grad():
        return module.eval()(**data.collate([data[0], data[3]])).logits


def test_checkpoints_hold_the_trainable_parts_only_and_reload(tmp_path):
    torch.manual_seed(0)
    module = RecExplainerModule(make_injector(), lr=1e-2)
    trainer = _fit_a_little(tmp_path, module)
    path = tmp_path / "explainer.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    trainable = {"injector." + name for name, p in module.injector.named_parameters() if p.requires_grad}
    assert set(checkpoint["state_dict"]) == trainable
    assert checkpoint["recexplainer"]["hidden_size"] == 32
    assert "injector" not in checkpoint["hyper_parameters"]  # built from a module: pass it in to load

    expected = _logits(module)
    fresh = make_injector()
    assert not torch.allclose(_logits(RecExplainerModule(fresh)), expected)
    loaded = RecExplainerModule.load_from_checkpoint(path, injector=fresh)
    torch.testing.assert_close(_logits(loaded), expected)

    with pytest.raises(ValueError, match="built for an LM of hidden size 32.*hidden size is 64"):
        RecExplainerModule.load_from_checkpoint(path, injector=make_injector(hidden_size=64))


def test_a_checkpoint_rebuilds_an_injector_loaded_from_a_folder(tmp_path):
    folder = tmp_path / "tiny-llama"
    tiny_llama().save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    torch.manual_seed(0)
    injector = RecEmbeddingInjector(str(folder), REC_DIM, lora_r=4, lora_target_modules=["q_proj", "v_proj"])
    module = RecExplainerModule(injector, lr=1e-2)
    assert module.hparams["injector"]["init_args"]["model"] == str(folder)
    trainer = _fit_a_little(tmp_path, module)
    trainer.save_checkpoint(tmp_path / "explainer.ckpt")
    size = (tmp_path / "explainer.ckpt").stat().st_size
    assert size < sum(f.stat().st_size for f in folder.glob("*.safetensors"))

    loaded = RecExplainerModule.load_from_checkpoint(tmp_path / "explainer.ckpt")
    assert loaded.injector.lora_target_modules == ("q_proj", "v_proj")
    torch.testing.assert_close(_logits(loaded), _logits(module))


def test_resuming_a_fit_from_a_small_checkpoint(tmp_path):
    torch.manual_seed(0)
    module = RecExplainerModule(make_injector(), lr=1e-2)
    trainer = _fit_a_little(tmp_path, module, steps=2)
    trainer.save_checkpoint(tmp_path / "two.ckpt")
    resumed = RecExplainerModule(make_injector(), lr=1e-2)
    vectors, tasks = users_and_tasks()
    data = RecExplainerDataset(tasks, resumed.injector.tokenizer, user_vectors=vectors)
    trainer = make_trainer(tmp_path, 3)
    trainer.fit(resumed, DataLoader(data, batch_size=4, collate_fn=data.collate), ckpt_path=tmp_path / "two.ckpt")
    assert trainer.global_step == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fits_on_a_gpu_under_bf16_autocast(tmp_path):
    module = RecExplainerModule(make_injector(), lr=1e-2)
    vectors, tasks = users_and_tasks()
    data = RecExplainerDataset(tasks, module.injector.tokenizer, user_vectors=vectors)
    trainer = L.Trainer(max_steps=3, accelerator="gpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(module, DataLoader(data, batch_size=4, collate_fn=data.collate))
    batch = {k: (v.cuda() if torch.is_tensor(v) else v) for k, v in data.collate([data[0]]).items()}
    module.cuda()
    assert module(**batch).logits.dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert len(module.generate_text([tasks[0].prompt], vectors[:1], max_new_tokens=2)) == 1
