from tailtune.cli.main import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert "tailtune" in capsys.readouterr().out


def test_tiny_encoder_loads(tiny_encoder_dir):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    model = AutoModel.from_pretrained(tiny_encoder_dir)
    out = model(**tok(["hello world"], return_tensors="pt"))
    assert out.last_hidden_state.shape[-1] == 32
