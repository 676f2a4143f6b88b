"""save_classifier / load_classifier: safetensors round trip, no downloads, pickle never loaded."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from tailtune.data import TaskSpec
from tailtune.errors import RunDirError
from tailtune.models import build_classifier, load_classifier, save_classifier, state_dict_for_safetensors

TASKS = [
    TaskSpec(kind="binary", labels=["ham", "spam"]),
    TaskSpec(kind="multiclass", labels=["anger", "joy", "optimism", "sadness"]),
    TaskSpec(kind="multilabel", labels=["grain", "wheat", "corn"], hierarchy={"wheat": "grain", "corn": "grain"}),
    TaskSpec(kind="aspects", labels=["food", "service", "price"], polarities=["positive", "negative", "neutral"]),
]


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_encoder_dir))


def _inputs(tokenizer):
    return dict(tokenizer(["a fine film", "the plot, the plot and nothing but the plot"], padding=True, return_tensors="pt"))


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.kind)
def test_round_trip_logits_equal(tiny_encoder_dir, tokenizer, tmp_path, task):
    torch.manual_seed(1)
    cfg = {"name": str(tiny_encoder_dir), "pooling": "cls", "projection_dim": 6, "freeze_layers": 1}
    model = build_classifier(cfg, task).eval()
    with torch.no_grad():  # move the head away from its init so a re-init could not pass
        model.head.weight.add_(0.5)
    out_dir = save_classifier(model, tokenizer, tmp_path / "model")
    names = {p.name for p in out_dir.iterdir()}
    assert {"model.safetensors", "tailtune_model.json", "config.json", "tokenizer.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)

    loaded, tok = load_classifier(out_dir)
    assert not loaded.training
    assert loaded.task == task
    assert (loaded.pooling, loaded.projection_dim, loaded.freeze_layers_count) == ("cls", 6, 1)
    batch = _inputs(tok)
    assert batch["input_ids"].tolist() == _inputs(tokenizer)["input_ids"].tolist()
    with torch.no_grad():
        a, b = model(**batch), loaded(**batch)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    torch.testing.assert_close(a.embeddings, b.embeddings, rtol=0, atol=0)
    meta = json.loads((out_dir / "tailtune_model.json").read_text())
    assert meta["task"] == task.to_dict()
    assert meta["head"]["num_outputs"] == task.num_outputs
    assert meta["encoder"]["config"]["hidden_size"] == 32


def test_load_builds_from_config_without_network(tiny_encoder_dir, tokenizer, tmp_path, monkeypatch):
    import transformers

    model = build_classifier({"name": str(tiny_encoder_dir)}, TASKS[0])
    save_classifier(model, tokenizer, tmp_path)

    def no_download(*a, **k):  # load must never call from_pretrained on the encoder
        raise AssertionError("from_pretrained called")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_download)
    loaded, _ = load_classifier(tmp_path)
    assert loaded.encoder.config.hidden_size == 32


def test_dtype_and_device_arguments(tiny_encoder_dir, tokenizer, tmp_path):
    model = build_classifier({"name": str(tiny_encoder_dir)}, TASKS[1])
    save_classifier(model.to(torch.bfloat16), tokenizer, tmp_path)
    loaded, _ = load_classifier(tmp_path)  # float32 by default, whatever the checkpoint holds
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    half, _ = load_classifier(tmp_path, dtype=torch.bfloat16, device="cpu")
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}


def test_shared_tensors_are_stored_once_and_restored(tiny_encoder_dir, tokenizer, tmp_path):
    model = build_classifier({"name": str(tiny_encoder_dir), "projection_dim": 32}, TASKS[1])
    # tie the projection's last layer to its first (same shape 32x32)
    model.projection.net[2].weight = model.projection.net[0].weight
    tensors, aliases = state_dict_for_safetensors(model)
    assert aliases == {"projection.net.2.weight": "projection.net.0.weight"}
    save_classifier(model, tokenizer, tmp_path)
    loaded, _ = load_classifier(tmp_path)
    torch.testing.assert_close(loaded.projection.net[2].weight, model.projection.net[0].weight)


def test_pickle_next_to_weights_is_never_loaded(tiny_encoder_dir, tokenizer, tmp_path, monkeypatch):
    model = build_classifier({"name": str(tiny_encoder_dir)}, TASKS[0])
    save_classifier(model, tokenizer, tmp_path)
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("pytorch_model.bin", "model.pt", "weights.pkl"):
        (tmp_path / name).write_bytes(pickle.dumps(Boom()))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load called"))
    load_classifier(tmp_path)
    assert not marker.exists()
    # without safetensors the load refuses, naming the file and the fix, and still unpickles nothing
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(RunDirError, match=r"model.safetensors: missing\. Found model.pt, pytorch_model.bin, weights.pkl"):
        load_classifier(tmp_path)
    assert not marker.exists()


def test_corrupt_and_missing_files(tiny_encoder_dir, tokenizer, tmp_path):
    with pytest.raises(RunDirError, match=r"model folder not found"):
        load_classifier(tmp_path / "nothing")
    with pytest.raises(RunDirError, match=r"tailtune_model.json: missing"):
        load_classifier(tmp_path)
    model = build_classifier({"name": str(tiny_encoder_dir)}, TASKS[0])
    save_classifier(model, tokenizer, tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(RunDirError, match=r"not a readable safetensors file"):
        load_classifier(tmp_path)
    # weights from a different head
    other = build_classifier({"name": str(tiny_encoder_dir), "projection_dim": 4}, TASKS[0])
    save_classifier(other, tokenizer, tmp_path / "other")
    (tmp_path / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(RunDirError, match=r"does not match tailtune_model.json"):
        load_classifier(tmp_path)
    (tmp_path / "tailtune_model.json").write_text("{broken")
    with pytest.raises(RunDirError, match=r"tailtune_model.json: corrupt"):
        load_classifier(tmp_path)


def test_missing_tokenizer_is_a_run_dir_error(tiny_encoder_dir, tmp_path):
    model = build_classifier({"name": str(tiny_encoder_dir)}, TASKS[0])
    save_classifier(model, None, tmp_path)
    loaded, tok = load_classifier(tmp_path, load_tokenizer=False)
    assert tok is None and loaded.num_outputs == 1
    with pytest.raises(RunDirError, match=r"tokenizer files missing"):
        load_classifier(tmp_path)


def test_wrapped_models_are_saved_under_plain_names(tiny_encoder_dir, tokenizer, tmp_path):
    model = build_classifier({"name": str(tiny_encoder_dir)}, TASKS[0]).eval()

    class Wrapper(torch.nn.Module):  # what DDP / accelerate put around a model
        def __init__(self, module):
            super().__init__()
            self.module = module

    save_classifier(Wrapper(model), tokenizer, tmp_path)
    loaded, _ = load_classifier(tmp_path)
    batch = _inputs(tokenizer)
    torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=0, atol=0)
    with pytest.raises(TypeError, match=r"model must be a TailtuneClassifier, got Linear"):
        save_classifier(torch.nn.Linear(2, 2), tokenizer, tmp_path / "x")
