"""ExpCTR's three-stage loop (EC-4): LC-rewarded generator, CTR model on its explanations, IC-rewarded refinement."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darec.expctr.expctr_config import ExpCTRConfig
from darec.utils.io import atomic_write, ensure_writable_dir

__all__ = ["ExpCTRLoop"]

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


class ExpCTRLoop:
    r"""Trains an explanation generator inside CTR prediction (ExpCTR), stage by stage, resumable.

    The stages, each in a folder of ``out_dir`` and recorded in ``out_dir/state.json`` once done:

    1. ``ids``: the ID-only CTR model (the baseline of every comparison).
    2. ``explain-zs``, ``ctr-zs`` (with ``zero_shot``): every pair explained by the untrained
       generator, and the text-augmented CTR model (ExpCTR-Aug) trained on those explanations.
    3. For each round ``r`` of ``rounds``:

       - ``lc-r``: ``lc_steps`` RL steps on the training pairs with the **LC reward**
         (:func:`~darec.expctr.lc_reward`: a frozen LLM reads each sampled explanation alone and
         predicts the click, :class:`~darec.expctr.LCScorer`);
       - ``explain-lc-r``: fresh explanations of every pair by the LC-tuned generator;
       - ``ctr-lc-r``: the text-augmented CTR model trained on them;
       - ``ic-r``: ``ic_steps`` RL steps with the **IC reward** (:func:`~darec.expctr.ic_reward`:
         that frozen CTR model fed each sampled explanation, :class:`~darec.expctr.ICScorer`);
       - ``explain-ic-r``, ``ctr-ic-r``: explanations of the refined generator and the CTR model
         on them (the round's ExpCTR-Aug).

    4. ``evaluate``: ExpCTR-LLM (the LC scorer reading each stage's test explanations as a click
       predictor: AUC, LogLoss, agreement) next to ExpCTR-Aug (AUC, LogLoss, relative AUC
       improvement over ``ids``, the shuffled-explanations control, IC agreement); written to
       ``results.json`` and ``results.md``.

    **Policy optimisation.** The paper optimises the rewards with PPO; TRL (1.16) has no PPO any
    more, so the loop uses TRL's :class:`~trl.GRPOTrainer` (default) or :class:`~trl.RLOOTrainer`
    on the same rewards: both compare ``num_generations`` sampled explanations of a pair with each
    other instead of training a value model, which also saves a second model's memory. Only LoRA
    weights of the generator change; each RL stage saves its adapter, and the next one trains it
    further.

    **Resume.** A stage is done once its entry is in ``state.json`` (written atomically after
    the stage's files); ``run()`` again skips done stages. An interrupted explanation stage resumes
    where its file ends (:class:`~darec.ctr.ExplanationJob`); an interrupted RL or CTR stage
    starts over. A run folder refuses a config that differs in anything but threads, progress
    and batch size.

    Args:
        config (ExpCTRConfig): the settings.
        out_dir (str): the run folder.
        scorer (callable, optional): the LC click predictor, ``scorer(explanations) -> (B,)``
            probabilities. (default: :class:`~darec.expctr.LCScorer` over ``config.scorer`` or the
            generator's base model)
        text_encoder (TextEncoder, optional): the encoder of explanations, in place of
            ``config.text_encoder``.
        data_factory (callable, optional): ``data_factory(**kwargs) -> CTRDataModule`` in place of
            the module built from ``config.data`` (e.g. ``CTRDataModule.from_log`` of your own log);
            it receives ``explanations``, ``shuffle_explanations``, ``text_encoder``, the subsample
            and batch settings.

    Example:
        >>> loop = ExpCTRLoop(ExpCTRConfig(users=10, users_from="test", lc_steps=20, ic_steps=20), "runs/expctr")
        >>> loop.stages()
        ['ids', 'explain-zs', 'ctr-zs', 'lc-1', 'explain-lc-1', 'ctr-lc-1', 'ic-1', 'explain-ic-1', 'ctr-ic-1', 'evaluate']
        >>> results = loop.run()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: ExpCTRConfig,
        out_dir: str | os.PathLike[str],
        *,
        scorer: Callable[..., Any] | None = None,
        text_encoder: Any = None,
        data_factory: Callable[..., Any] | None = None,
    ) -> None:
        if not isinstance(config, ExpCTRConfig):
            raise TypeError(f"config must be an ExpCTRConfig, got {type(config).__name__}")
        self.config = config
        self.out_dir = Path(out_dir).expanduser()
        self._scorer = scorer
        self._text_encoder = text_encoder
        self._data_factory = data_factory
        self._base: str | None = None
        self._data: Any = None

    # -- plan and state ---------------------------------------------------------------------------
    def stages(self) -> list[str]:
        """The stage names of this config, in order."""
        c = self.config
        out = ["ids"] + (["explain-zs", "ctr-zs"] if c.zero_shot else [])
        for r in range(1, c.rounds + 1):
            if c.lc_steps:
                out += [f"lc-{r}", f"explain-lc-{r}", f"ctr-lc-{r}"]
            if c.ic_steps:
                if not c.lc_steps and not c.zero_shot and r == 1:
                    raise ValueError("the IC reward needs a CTR model trained on explanations: set lc_steps or zero_shot")
                out += [f"ic-{r}", f"explain-ic-{r}", f"ctr-ic-{r}"]
        return out + ["evaluate"]

    @property
    def state_path(self) -> Path:
        return self.out_dir / STATE_FILE

    def state(self) -> dict[str, Any]:
        """The run's state on disk (the config and the done stages), or a fresh one."""
        if not self.state_path.is_file():
            return {"config": self.config.as_dict(), "done": {}}
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.state_path} is not valid JSON ({err}); it was not written by ExpCTRLoop") from err
        saved = ExpCTRConfig.from_dict(state.get("config", {}), where=str(self.state_path)).fingerprint()
        diff = sorted(key for key, value in self.config.fingerprint().items() if saved.get(key) != value)
        if diff:
            raise ValueError(
                f"{self.out_dir} holds a run with another config (it differs in {', '.join(diff)}); resume it with the "
                "same config, or choose another out_dir"
            )
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        with atomic_write(self.state_path, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2, default=str)

    def next_stage(self) -> str | None:
        """The first stage not done yet (:obj:`None` when the run is complete)."""
        done = self.state()["done"]
        return next((name for name in self.stages() if name not in done), None)

    # -- the run ------------------------------------------------------------------------------------
    def run(self, until: str | None = None) -> dict[str, Any]:
        """Runs every stage not done yet (up to and including ``until``) and returns the state's ``done`` entries."""
        stages = self.stages()
        if until is not None and until not in stages:
            raise ValueError(f"unknown stage {until!r}; the stages are {', '.join(stages)}")
        ensure_writable_dir(self.out_dir, what="the run folder", hint="choose another out_dir")
        state = self.state()
        self._save_state(state)
        for name in stages:
            if name not in state["done"]:
                log.info("ExpCTR stage %s", name)
                start = time.perf_counter()
                with self._threads():
                    info = self._run_stage(name, state["done"])
                info["seconds"] = round(time.perf_counter() - start, 1)
                state["done"][name] = info
                self._save_state(state)
            if name == until:
                break
        return state["done"]

    def _run_stage(self, name: str, done: dict[str, Any]) -> dict[str, Any]:
        folder = self.out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        kind, _, rnd = name.partition("-")
        if name == "ids":
            return self._fit_ctr(folder, None)
        if name == "evaluate":
            return self._evaluate(done)
        if kind == "explain":
            source = rnd  # "zs", "lc-1", "ic-1"
            adapter = None if source == "zs" else done[source]["adapter"]
            return self._explain(folder, adapter, tag=source)
        if kind == "ctr":
            return self._fit_ctr(folder, done[f"explain-{rnd}"]["explanations"])
        if kind in ("lc", "ic"):
            return self._train_policy(folder, kind, int(rnd), done)
        raise AssertionError(name)

    # -- parts ---------------------------------------------------------------------------------------
    def _threads(self):
        from darec.utils.threads import torch_threads

        return torch_threads(self.config.threads)

    @property
    def base_model(self) -> str:
        """The generator's local folder (SmolLM2 is fetched and converted on first use)."""
        if self._base is None:
            from darec.llm import HFCausalLM

            self._base = HFCausalLM._resolve(self.config.generator)
        return self._base

    def data(self, explanations: str | None = None, shuffle: bool = False) -> Any:
        """The CTR data module of the config (with ``explanations`` as its text feature)."""
        c = self.config
        kwargs: dict[str, Any] = {
            "explanations": explanations, "shuffle_explanations": shuffle, "users": c.users, "user_seed": c.user_seed,
            "users_from": c.users_from, "batch_size": c.ctr_batch_size, "seed": c.seed,
            "text_encoder": self._text_encoder if self._text_encoder is not None else c.text_encoder,
            "positive_threshold": c.positive_threshold, "history_len": max(1, c.max_liked, c.max_disliked),
        }  # fmt: skip
        if self._data_factory is not None:
            return self._data_factory(**kwargs)
        from darec.ctr import CTRDataModule, MovieLens100KCTR

        if str(c.data).lower() in ("ml100k", "ml-100k", "movielens100k"):
            return MovieLens100KCTR(**kwargs)
        return CTRDataModule(str(Path(c.data).expanduser()), item_info=c.item_info, **kwargs)

    @property
    def samples(self) -> Any:
        if self._data is None:
            self._data = self.data()
        return self._data.samples

    def prompt_builder(self) -> Any:
        from darec.ctr import ExplanationPrompt

        return ExplanationPrompt(max_liked=self.config.max_liked, max_disliked=self.config.max_disliked)

    def generator(self, adapter: str | None = None) -> Any:
        """The generator as a :class:`~darec.llm.HFCausalLM` (with an RL stage's LoRA ``adapter``); its own
        progress bar is off (the explanation job has one)."""
        from darec.llm import HFCausalLM

        return HFCausalLM(self.base_model, adapter=adapter, max_batch_size=self.config.explain_batch_size,
                          num_threads=self.config.threads, progress=False)  # fmt: skip

    def lc_scorer(self) -> Callable[..., Any]:
        """The LC click predictor: ``scorer`` given to the loop, else :class:`~darec.expctr.LCScorer` over the base model."""
        if self._scorer is None:
            from darec.expctr.lc_scorer import LCScorer
            from darec.llm import HFCausalLM

            self._scorer = LCScorer(HFCausalLM(self.config.scorer or self.base_model, num_threads=self.config.threads,
                                               progress=False))  # fmt: skip
        return self._scorer

    def _explain(self, folder: Path, adapter: str | None, tag: str) -> dict[str, Any]:
        from darec.ctr import ExplanationJob

        self._data = self._data or self.data()
        out = folder / "explanations.jsonl"
        job = ExplanationJob(
            self.generator(adapter), self.prompt_builder(), batch_size=self.config.explain_batch_size,
            options={"max_new_tokens": self.config.max_new_tokens},
            model=self.config.generator if tag == "zs" else f"{self.config.generator}@{tag}",
            progress=self.config.progress,
        )  # fmt: skip
        report = job.run(self._data.samples, "all", out, pairs=self._data.kept_rows.tolist())
        if report.failed:
            raise RuntimeError(
                f"{len(report.failed)} pair(s) got no explanation after retries (listed in {job.failed_path(out)}); "
                "run again to retry them"
            )
        return {"explanations": str(out), "adapter": adapter, **report.as_dict()}

    def _fit_ctr(self, folder: Path, explanations: str | None) -> dict[str, Any]:
        info = {"model": self.fit_ctr(folder / "model", explanations, shuffle=False)}
        if explanations is not None:
            info["explanations"] = explanations
            if self.config.shuffled_control:
                info["shuffled"] = self.fit_ctr(folder / "shuffled", explanations, shuffle=True)
        return info

    def fit_ctr(self, folder: str | os.PathLike[str], explanations: str | None = None, shuffle: bool = False) -> dict[str, Any]:
        """Trains one CTR model of the config (ids only, or with ``explanations``, optionally shuffled) into ``folder``.

        The best epoch by validation AUC is tested. Returns its checkpoint, ``val_auc``,
        ``test_auc``, ``test_logloss``, ``ic_agreement`` (the share of test pairs whose
        thresholded prediction is the label) and the data protocol. The CTR stages and
        ``benchmarks/expctr.py`` (more seeds and backbones on a run's explanations) use it.
        """
        import lightning as L
        from lightning.pytorch.callbacks import ModelCheckpoint
        from lightning.pytorch.loggers import CSVLogger

        from darec.ctr import CTRModule
        from darec.data.datamodule import quiet_lightning_warnings
        from darec.expctr.reward import agreement_rate

        c = self.config
        L.seed_everything(c.seed, workers=True, verbose=False)
        dm = self.data(explanations, shuffle)
        module = CTRModule(self._backbone(dm.num_users, dm.num_items, dm.text_dim), lr=c.ctr_lr,
                           weight_decay=c.ctr_weight_decay)  # fmt: skip
        folder = Path(folder)
        checkpoint = ModelCheckpoint(dirpath=folder, filename="best", monitor="val/auc", mode="max")
        with quiet_lightning_warnings():
            trainer = L.Trainer(
                max_epochs=c.ctr_epochs, accelerator="auto", devices=1, logger=CSVLogger(folder, name="", version=""),
                callbacks=[checkpoint], enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                log_every_n_steps=1,
                deterministic=True,
            )  # fmt: skip
            trainer.fit(module, datamodule=dm)
            [test] = trainer.test(module, datamodule=dm, ckpt_path=checkpoint.best_model_path, verbose=False)
            predictions = torch.cat(trainer.predict(module, datamodule=dm, ckpt_path=checkpoint.best_model_path))
        labels = torch.from_numpy(dm.samples.label[dm.split_rows("test")])
        return {
            "checkpoint": checkpoint.best_model_path, "val_auc": float(checkpoint.best_model_score),
            "test_auc": float(test["test/auc"]), "test_logloss": float(test["test/logloss"]),
            "ic_agreement": agreement_rate(predictions, labels), "text_dim": int(dm.text_dim), "protocol": dm.protocol,
        }  # fmt: skip

    def _backbone(self, num_users: int, num_items: int, text_dim: int) -> torch.nn.Module:
        from darec.ctr import DCNv2, DeepFM, FM

        cls = {"fm": FM, "deepfm": DeepFM, "dcnv2": DCNv2}[self.config.ctr_model]
        return cls(num_users=num_users, num_items=num_items, embedding_dim=self.config.ctr_embedding_dim, text_dim=text_dim)

    def _records(self) -> list[dict[str, Any]]:
        """The RL training set: one record per distinct training pair of the (sub)sample, in a seeded order."""
        from darec.ctr import ExplanationJob

        self._data = self._data or self.data()
        samples = self._data.samples
        rows = ExplanationJob.rows(samples, "train", pairs=self._data.kept_rows.tolist())
        if not rows:
            raise ValueError("the training split of the (sub)sample has no pair: the RL stages need training pairs")
        prompt = self.prompt_builder()
        order = np.random.default_rng(self.config.seed).permutation(len(rows))
        return [
            {"prompt": prompt.for_row(samples, rows[k]), "label": int(samples.label[rows[k]]),
             "user": int(samples.user[rows[k]]), "item": int(samples.item[rows[k]])}
            for k in order.tolist()
        ]  # fmt: skip

    def _train_policy(self, folder: Path, kind: str, rnd: int, done: dict[str, Any]) -> dict[str, Any]:
        from darec.expctr._policy import completion_text, train_policy
        from darec.expctr.reward import ic_reward, lc_reward

        c = self.config
        previous = self._previous_adapter(kind, rnd, done)
        history: list[dict[str, Any]] = []
        if kind == "lc":
            scorer = self.lc_scorer()

            def lc_alignment(completions: list[Any], label: list[int], **_: Any) -> list[float]:
                result = lc_reward([completion_text(x) for x in completions], label, scorer, on_nan="neutral")
                history.append(result.as_dict())
                return result.rewards.tolist()

            reward: Callable[..., list[float]] = lc_alignment
            against = None
        else:
            from darec.ctr import CTRModule
            from darec.expctr.ic_scorer import ICScorer

            source = f"ctr-lc-{rnd}" if c.lc_steps else (f"ctr-ic-{rnd - 1}" if rnd > 1 else "ctr-zs")
            against = done[source]["model"]["checkpoint"]
            ctr = CTRModule.load_from_checkpoint(against, map_location="cpu", weights_only=False)
            ic = ICScorer(ctr, self._text_encoder if self._text_encoder is not None else c.text_encoder)

            def ic_alignment(completions: list[Any], label: list[int], user: list[int], item: list[int], **_: Any) -> list[float]:
                result = ic_reward([completion_text(x) for x in completions], user, item, label, ic, on_nan="neutral")
                history.append(result.as_dict())
                return result.rewards.tolist()

            reward = ic_alignment
        steps = c.lc_steps if kind == "lc" else c.ic_steps
        lora = {"r": c.lora_r, "lora_alpha": c.lora_alpha, "lora_dropout": c.lora_dropout,
                "target_modules": c.lora_target_modules}  # fmt: skip
        result = train_policy(
            self.base_model, previous, folder / "adapter", self._records(), reward, algorithm=c.algorithm, steps=steps,
            num_generations=c.num_generations, prompts_per_step=c.prompts_per_step, learning_rate=c.learning_rate,
            temperature=c.temperature, max_new_tokens=c.max_new_tokens, lora=lora, seed=c.seed + rnd,
            work_dir=folder / "trainer", progress=c.progress,
        )  # fmt: skip
        with open(folder / "rewards.jsonl", "w", encoding="utf-8") as handle:
            for entry in history:
                handle.write(json.dumps(entry) + "\n")
        agreements = [h["agreement"] for h in history if h["agreement"] == h["agreement"]]
        return {
            "adapter": str(folder / "adapter"), "from_adapter": previous, "reward": kind, "against": against,
            "steps": result["steps"], "trainable_parameters": result["trainable_parameters"],
            "reward_first": history[0]["reward"] if history else None, "reward_last": history[-1]["reward"] if history else None,
            "agreement_mean": float(np.mean(agreements)) if agreements else None,
            "empty": sum(h["empty"] for h in history), "invalid": sum(h["invalid"] for h in history),
        }  # fmt: skip

    def _previous_adapter(self, kind: str, rnd: int, done: dict[str, Any]) -> str | None:
        """The adapter the stage starts from: the latest RL stage's before it, or none."""
        order = [name for name in self.stages() if name.startswith(("lc-", "ic-"))]
        earlier = order[: order.index(f"{kind}-{rnd}")]
        return done[earlier[-1]]["adapter"] if earlier else None

    def _evaluate(self, done: dict[str, Any]) -> dict[str, Any]:
        from darec.ctr.relative_improvement import relative_auc_improvement

        ids = done["ids"]["model"]
        rows = [{"variant": "ID-only", "ctr_test_auc": ids["test_auc"], "ctr_test_logloss": ids["test_logloss"],
                 "rela_impr": 0.0}]  # fmt: skip
        for name in self.stages():
            if not name.startswith("ctr-"):
                continue
            tag = name[len("ctr-"):]
            ctr = done[name]["model"]
            row: dict[str, Any] = {
                "variant": {"zs": "zero-shot"}.get(tag, tag.replace("lc-", "after LC, round ").replace("ic-", "after IC, round ")),
                "ctr_test_auc": ctr["test_auc"], "ctr_test_logloss": ctr["test_logloss"],
                "rela_impr": relative_auc_improvement(ctr["test_auc"], ids["test_auc"]) if ids["test_auc"] > 0.5 else None,
                "ic_agreement": ctr["ic_agreement"],
            }  # fmt: skip
            if "shuffled" in done[name]:
                row["shuffled_test_auc"] = done[name]["shuffled"]["test_auc"]
            row.update(self._llm_ctr(done[name]["explanations"]))
            rows.append(row)
        rl = {name: {k: info[k] for k in ("steps", "reward_first", "reward_last", "agreement_mean", "seconds")}
              for name, info in done.items() if name.startswith(("lc-", "ic-"))}  # fmt: skip
        results = {"rows": rows, "rl": rl, "protocol": done["ids"]["model"]["protocol"], "config": self.config.as_dict()}
        (self.out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        (self.out_dir / "results.md").write_text(_markdown(rows, rl), encoding="utf-8")
        return {"results": str(self.out_dir / "results.json"), "rows": rows}

    def _llm_ctr(self, explanations: str) -> dict[str, Any]:
        """ExpCTR-LLM on the test pairs: the LC scorer's p(click) from each pair's explanation alone."""
        import torch.nn.functional as F
        from torchmetrics.functional.classification import binary_auroc

        from darec.expctr.reward import agreement_rate

        dm = self.data(explanations)
        samples = dm.samples
        texts = dm.read_explanations()
        rows = dm.split_rows("test")
        keys = [(str(samples.user_ids[samples.user[r]]), str(samples.item_ids[samples.item[r]])) for r in rows]
        probabilities = torch.as_tensor(self.lc_scorer()([texts.get(key, "") for key in keys]), dtype=torch.float32)
        labels = torch.from_numpy(samples.label[rows]).float()
        return {
            "llm_test_auc": float(binary_auroc(probabilities, labels.long())),
            "llm_test_logloss": float(F.binary_cross_entropy(probabilities.clamp(1e-7, 1 - 1e-7), labels)),
            "lc_agreement": agreement_rate(probabilities, labels),
        }

    # -- using a trained run -----------------------------------------------------------------------------
    def final_stages(self) -> tuple[str | None, str]:
        """The last RL stage (its adapter is the trained generator; :obj:`None` without RL) and the last CTR stage."""
        stages = self.stages()
        rl = [name for name in stages if name.startswith(("lc-", "ic-"))]
        ctr = [name for name in stages if name.startswith("ctr-")] or ["ids"]
        return (rl[-1] if rl else None), ctr[-1]

    def explain(self, user: str, item: str, max_new_tokens: int | None = None) -> dict[str, Any]:
        """Explains one (user, item) pair (raw ids) with the trained generator and scores it three ways.

        Returns a dict with ``explanation``, ``prompt``, ``ctr_with`` (the final ExpCTR-Aug model's
        click probability with the explanation), ``ctr_without`` (the ID-only model's),
        ``lc_verdict`` (the LC scorer's p(click) from the explanation alone) and ``label`` when the
        pair is in the data. A pair not in the data uses the user's latest training history.

        Raises:
            ValueError: the run is not complete, or the user or the item is unknown.
        """
        from darec.ctr import CTRModule
        from darec.expctr.ic_scorer import ICScorer

        done = self.state()["done"]
        missing = [name for name in self.stages() if name != "evaluate" and name not in done]
        if missing:
            raise ValueError(f"the run in {self.out_dir} is not complete (next stage: {missing[0]}); run it first")
        samples = self.samples
        row, prompt = self._pair_prompt(samples, str(user), str(item))
        rl, ctr_stage = self.final_stages()
        adapter = done[rl]["adapter"] if rl else None
        options = {"max_new_tokens": max_new_tokens or self.config.max_new_tokens}
        [text] = self.generator(adapter).generate([prompt], **options)
        text = " ".join(text.split())
        u = torch.tensor([samples.user_index(str(user))])
        i = torch.tensor([samples.item_index(str(item))])
        ids = CTRModule.load_from_checkpoint(done["ids"]["model"]["checkpoint"], map_location="cpu", weights_only=False)
        with torch.no_grad():
            without = float(ids.eval().backbone(u, i).sigmoid())
        out: dict[str, Any] = {"user": str(user), "item": str(item), "prompt": prompt, "explanation": text,
                               "ctr_without": without, "label": None if row is None else int(samples.label[row])}  # fmt: skip
        if ctr_stage != "ids":
            aug = CTRModule.load_from_checkpoint(done[ctr_stage]["model"]["checkpoint"], map_location="cpu", weights_only=False)
            encoder = self._text_encoder if self._text_encoder is not None else self.config.text_encoder
            out["ctr_with"] = float(ICScorer(aug, encoder)([text] if text else [""], u, i)[0])
        out["lc_verdict"] = float(self.lc_scorer()([text])[0]) if text else None
        out["stages"] = {"generator": rl, "ctr": ctr_stage}
        return out

    def _pair_prompt(self, samples: Any, user: str, item: str) -> tuple[int | None, str]:
        prompt = self.prompt_builder()
        u, i = samples.user_index(user), samples.item_index(item)
        rows = np.flatnonzero((samples.user == u) & (samples.item == i))
        if len(rows):
            return int(rows[0]), prompt.for_row(samples, int(rows[0]))
        train = samples.split("train")
        mine = train[samples.user[train] == u][::-1]  # most recent first
        liked = [samples.title(samples.item[r]) for r in mine if samples.label[r] == 1]
        disliked = [samples.title(samples.item[r]) for r in mine if samples.label[r] == 0]
        return None, prompt.render(samples.title(i), liked, disliked)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(out_dir={str(self.out_dir)!r}, next_stage={self.next_stage()!r})"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _markdown(rows: list[dict[str, Any]], rl: dict[str, Any]) -> str:
    head = ("| explanations | ExpCTR-Aug test AUC | LogLoss | RelaImpr | shuffled-control AUC | IC agreement | "
            "ExpCTR-LLM test AUC | LLM LogLoss | LC agreement |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")  # fmt: skip
    lines = [
        f"| {r['variant']} | {_fmt(r['ctr_test_auc'])} | {_fmt(r['ctr_test_logloss'])} | {_fmt(None if r['rela_impr'] is None else 100 * r['rela_impr'], 2)}% | "
        f"{_fmt(r.get('shuffled_test_auc'))} | {_fmt(r.get('ic_agreement'), 3)} | {_fmt(r.get('llm_test_auc'))} | "
        f"{_fmt(r.get('llm_test_logloss'))} | {_fmt(r.get('lc_agreement'), 3)} |"
        for r in rows
    ]
    rl_lines = [
        f"| {name} | {info['steps']} | {_fmt(info['reward_first'], 3)} | {_fmt(info['reward_last'], 3)} | "
        f"{_fmt(info['agreement_mean'], 3)} | {_fmt(info['seconds'], 0)} |"
        for name, info in rl.items()
    ]
    rl_table = ("\n\n| RL stage | steps | first reward | last reward | mean agreement | seconds |\n"
                "| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rl_lines)) if rl_lines else ""  # fmt: skip
    return head + "\n".join(lines) + rl_table + "\n"
