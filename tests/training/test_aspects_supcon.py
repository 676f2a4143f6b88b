"""Aspect-sentiment training with a classification loss plus supervised contrastive loss: the
softmax part sees one target per (text, aspect) cell, supcon one polarity row per text (positives
weighted by the overlap of the texts' (aspect, polarity) sets)."""

from __future__ import annotations

import torch
from tiny_runs import tiny_recipe

from tailtune.losses import get
from tailtune.recipe import recipe_from_dict
from tailtune.training import train
from tailtune.training.trainer import TrainModule
from tailtune.utils.io import read_jsonl


def test_aspects_ce_plus_supcon_trains_and_logs_both_parts(tiny_data, tiny_encoder_dir, tmp_path):
    raw = tiny_recipe("aspects", tiny_data("aspects"), tiny_encoder_dir, tmp_path / "run")
    raw["loss"] = {"cross_entropy": {"weight": 0.7}, "supcon": {"weight": 0.3, "temperature": 0.1}}
    raw["model"]["projection_dim"] = 16
    result = train(recipe_from_dict(raw, source="test"))
    rows = read_jsonl(result.run_dir / "history.jsonl")
    parts = rows[-1]["train"]["loss_parts"]
    assert set(parts) == {"cross_entropy", "supcon"} and all(v > 0 for v in parts.values())


def test_supcon_sees_text_level_rows_in_the_aspects_module():
    torch.manual_seed(0)
    n, a, k = 6, 2, 3  # 2 aspects, polarities {pos, neg} + absent (index 2)
    labels = torch.tensor([[0, 2], [0, 2], [1, 1], [1, 1], [2, 0], [2, 0]])
    emb = torch.nn.functional.normalize(torch.randn(n, 8), dim=1)
    supcon = get("supcon", kind="aspects", absent_index=k - 1)
    direct = supcon(None, labels, embeddings=emb)
    flat = supcon(None, labels.reshape(n * a), embeddings=emb)  # how the trainer passes aspect targets
    torch.testing.assert_close(direct, flat)

    class Stub(torch.nn.Module):
        def forward(self, input_ids, attention_mask, **_):
            from types import SimpleNamespace

            return SimpleNamespace(logits=torch.zeros(n, a * k), embeddings=emb)

    from tailtune.losses import CompositeLoss

    loss = CompositeLoss({"supcon": (1.0, supcon)})
    module = TrainModule(Stub(), loss, kind="aspects", num_aspects=a)
    out = module(input_ids=torch.zeros(n, 4, dtype=torch.long), attention_mask=torch.ones(n, 4), labels=labels)
    torch.testing.assert_close(out["parts"]["supcon"], direct)
