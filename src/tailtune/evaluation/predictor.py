"""``Predictor``: a run directory (or ensemble directory) as a text -> labels function.

``tailtune.load(run_dir).predict(texts)`` loads ``model/`` with
:func:`tailtune.models.load_classifier` (safetensors only), applies the decision rule of
``postprocess.json`` (temperature, thresholds/biases, hierarchy repair) and returns one dict per
text with label names and probabilities:

=============  =====================================================================================
kind           one result
=============  =====================================================================================
binary         ``{"label": "spam", "probabilities": {"ham": 0.1, "spam": 0.9}}``
multiclass     ``{"label": "joy", "probabilities": {"anger": 0.1, ...}}``
multilabel     ``{"labels": ["earn", "acq"], "probabilities": {"earn": 0.97, ...}}``
aspects        ``{"aspects": {"food": {"label": "positive", "probabilities": {...}}, ...}}``
=============  =====================================================================================

Speed: texts are tokenised once without padding, sorted by token length and batched, so each batch
is padded only to its own longest text (no padding to the model maximum); the forward pass runs
under ``torch.inference_mode`` and skips the projection head, which prediction does not need.
Texts longer than the limit are truncated: the model's limit (the smaller of the tokenizer's
``model_max_length`` and the encoder's ``max_position_embeddings``), lowered to ``max_length`` when
given, else to the run's ``recipe.yaml`` ``data.max_length`` (what training and the stored
predictions used); the count is reported once
per call through :mod:`warnings` and kept in :attr:`Predictor.last_truncated`. As in training,
characters beyond ``max_length * 32`` are dropped before tokenising
(:mod:`tailtune.models.truncation`), so one 10 MB line costs no more than a 16k-character one.

Ensemble directories (``members.json``) load every member's Predictor, average the members'
temperature-scaled probabilities with the ensemble's weights, and apply the ensemble's own rule.

Example:
    >>> import tailtune  # doctest: +SKIP
    >>> tailtune.load("runs/emotion").predict(["what a lovely day"])  # doctest: +SKIP
    [{'label': 'joy', 'probabilities': {'anger': 0.02, 'joy': 0.91, 'optimism': 0.05, 'sadness': 0.02}}]
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.data.kinds import task_kind
from tailtune.errors import RunDirError
from tailtune.evaluation.postprocess import PostProcess, probs_to_logits
from tailtune.evaluation.run_dir import MEMBERS, RunInfo, open_run, read_members, recipe_max_length
from tailtune.utils import rundir

__all__ = ["Predictor", "probs_to_logits"]  # probs_to_logits lives in evaluation.postprocess

_HUGE = 1_000_000


class Predictor:
    """Predict with a run directory's model and decision rule (see the module docstring).

    Args (of :meth:`from_run_dir`):
        run_dir: a run or ensemble directory.
        device: ``"cpu"``, ``"cuda"``, ...
        batch_size: texts per forward pass.
        max_length: truncate at this many tokens (default: the model's limit).
        dtype: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"`` for the encoder.
    """

    def __init__(
        self,
        run: RunInfo,
        *,
        model: Any = None,
        tokenizer: Any = None,
        members: list[tuple[Predictor, float]] | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        max_length: int | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
            raise ValueError(f"max_length must be an integer >= 2 or None, got {max_length!r}")
        self.run = run
        self.task = run.task
        self.postprocess: PostProcess = run.postprocess
        self.model = model
        self.tokenizer = tokenizer
        self.members = members or []
        self.device = device
        self.batch_size = batch_size
        self.last_truncated = 0
        self.max_length = self._model_limit() if max_length is None else max_length
        if max_length is not None and model is not None:
            self.max_length = min(max_length, self._model_limit())

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def from_run_dir(
        cls,
        run_dir: str | os.PathLike,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        max_length: int | None = None,
        dtype: str = "float32",
        trust_remote_code: bool = False,
    ) -> Predictor:
        import torch

        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if dtype not in dtypes:
            raise ValueError(f"dtype must be one of {list(dtypes)}, got {dtype!r}")
        run = open_run(run_dir, need_model=True)
        if run.is_ensemble:
            members = [
                (
                    cls.from_run_dir(m, device=device, batch_size=batch_size, max_length=max_length, dtype=dtype,
                                     trust_remote_code=trust_remote_code),
                    w,
                )
                for m, w in read_members(run.path)
            ]
            for m, _ in members:
                if m.task.to_dict() != run.task.to_dict():
                    raise RunDirError(
                        f"{run.path / MEMBERS}: member {m.run.path} has a different task.json. "
                        "Fix: rebuild the ensemble from runs of the same task"
                    )
            return cls(run, members=members, device=device, batch_size=batch_size, max_length=max_length)
        from tailtune.models import load_classifier

        if max_length is None:
            max_length = recipe_max_length(run.path)

        model, tokenizer = load_classifier(
            run.path / rundir.MODEL_DIR, device=device, dtype=dtypes[dtype], trust_remote_code=bool(trust_remote_code)
        )
        if model.task.to_dict() != run.task.to_dict():
            raise RunDirError(
                f"{run.path}: model/tailtune_model.json and task.json describe different tasks. "
                "Fix: restore the files of one training run"
            )
        return cls(run, model=model, tokenizer=tokenizer, device=device, batch_size=batch_size, max_length=max_length)

    def _model_limit(self) -> int:
        if self.model is None:
            limits = [m.max_length for m, _ in self.members]
            return min(limits) if limits else 512
        limits = []
        tl = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tl, int) and 0 < tl < _HUGE:
            limits.append(tl)
        mp = getattr(self.model.encoder.config, "max_position_embeddings", None)
        if isinstance(mp, int) and mp > 0:
            cfg = self.model.encoder.config
            # RoBERTa-style position ids start after the padding index
            roberta = getattr(cfg, "model_type", "") in ("roberta", "xlm-roberta", "camembert")
            limits.append(mp - ((getattr(cfg, "pad_token_id", 1) or 1) + 1 if roberta else 0))
        return min(limits) if limits else 512

    # ------------------------------------------------------------------------------------ forward
    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, as training made them (:mod:`tailtune.models.truncation`: characters
        beyond ``max_length * CHARS_PER_TOKEN`` are dropped first, then tokens beyond ``max_length``)."""
        from tailtune.models.truncation import char_limit, clip_texts, tokenize_truncated

        tok = self.tokenizer
        import transformers

        clipped, _ = clip_texts(texts, self.max_length)
        level = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # "sequence longer than max" is reported by us, once
        try:
            ids = tok(clipped, add_special_tokens=True, truncation=False, padding=False)["input_ids"]
        finally:
            transformers.logging.set_verbosity(level)
        limit = char_limit(self.max_length)
        long = [i for i, x in enumerate(ids) if len(x) > self.max_length or len(texts[i]) > limit]
        if long:
            cut = tokenize_truncated(tok, [clipped[i] for i in long], max_length=self.max_length,
                                     padding=False)["input_ids"]
            for i, x in zip(long, cut, strict=True):
                ids[i] = x
        self.last_truncated = len(long)
        if long:
            warnings.warn(
                f"{len(long)} of {len(texts)} texts are longer than the model's limit of {self.max_length} "
                "tokens and were truncated",
                stacklevel=3,
            )
        return ids

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits ``(N, num_outputs)`` float32 (for ensembles: log of the averaged probabilities)."""
        texts = self._check_texts(texts)
        if self.members:
            return probs_to_logits(self._member_probs(texts), self.task).astype(np.float32)
        import torch

        n = len(texts)
        out = np.zeros((n, self.task.num_outputs), dtype=np.float32)
        if n == 0:
            return out
        ids = self._encode(texts)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")  # longest first: memory peaks at the start
        pad_id = self.tokenizer.pad_token_id or 0
        model = self.model
        with torch.inference_mode():
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                width = int(lengths[idx].max())
                batch = np.full((len(idx), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for r, i in enumerate(idx):
                    batch[r, : lengths[i]] = ids[i]
                    mask[r, : lengths[i]] = 1
                input_ids = torch.from_numpy(batch).to(self.device)
                attention = torch.from_numpy(mask).to(self.device)
                hidden = model.encoder(input_ids=input_ids, attention_mask=attention, return_dict=True)
                hidden = hidden.last_hidden_state if hasattr(hidden, "last_hidden_state") else hidden[0]
                logits = model.head(model.pool(hidden, attention))
                out[idx] = logits.float().cpu().numpy()
        return out

    def _member_probs(self, texts: list[str]) -> np.ndarray:
        acc = None
        total = 0.0
        for member, w in self.members:
            p = member.predict_proba(texts)
            acc = p * w if acc is None else acc + p * w
            total += w
        self.last_truncated = max((m.last_truncated for m, _ in self.members), default=0)
        return acc / total

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Temperature-scaled probabilities: binary ``(N,)``, multiclass/multilabel ``(N, C)``,
        aspects ``(N, A, P + 1)``."""
        return self.postprocess.probabilities(self.predict_logits(texts), self.task)

    def predict(self, texts: Sequence[str] | str) -> list[dict[str, Any]]:
        """Label names and probabilities per text under the run's decision rule (module docstring)."""
        if isinstance(texts, str):
            texts = [texts]
        logits = self.predict_logits(texts)
        probs = self.postprocess.probabilities(logits, self.task)
        pred = self.postprocess.decide(logits, self.task)
        return self.format(pred, probs)

    def format(self, pred: np.ndarray, probs: np.ndarray) -> list[dict[str, Any]]:
        task = self.task
        info = task_kind(task)
        names = list(task.labels)
        rows: list[dict[str, Any]] = []
        if info.is_binary:
            for y, p in zip(pred.tolist(), probs.tolist(), strict=True):
                rows.append({"label": names[y], "probabilities": {names[0]: 1.0 - p, names[1]: p}})
        elif info.is_multiclass:
            for y, p in zip(pred.tolist(), probs.tolist(), strict=True):
                rows.append({"label": names[y], "probabilities": dict(zip(names, p, strict=True))})
        elif info.multi_hot:
            for y, p in zip(pred.tolist(), probs.tolist(), strict=True):
                rows.append(
                    {
                        "labels": [n for n, on in zip(names, y, strict=True) if on],
                        "probabilities": dict(zip(names, p, strict=True)),
                    }
                )
        else:
            classes = list(task.aspect_classes)
            for y, p in zip(pred.tolist(), probs.tolist(), strict=True):
                rows.append(
                    {
                        "aspects": {
                            a: {"label": classes[y[i]], "probabilities": dict(zip(classes, p[i], strict=True))}
                            for i, a in enumerate(names)
                        }
                    }
                )
        return rows

    @staticmethod
    def _check_texts(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            return [texts]
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(t).__name__}")
        return texts

    def __repr__(self) -> str:
        what = f"ensemble of {len(self.members)}" if self.members else "model"
        return f"Predictor({str(Path(self.run.path))!r}, {self.task.kind}, {what}, max_length={self.max_length})"
