"""Options and the fit folder: budget parsing, bad data (exit 2, names file/row/field, writes
nothing), refusing another fit's folder, a folder that is not a fit, --restart."""

from __future__ import annotations

import json

import pytest

from tailtune.cli.main import main
from tailtune.errors import RecipeError, RunDirError
from tailtune.fit.options import Budget, parse_budget
from tailtune.fit.state import STATE_FILE, open_state, remove_leftovers


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("600", 600), (45, 45),
                                               ("1.5h", 5400), ("5 min", 300), ("5 minutes", 300), ("1h 30m", 5400),
                                               ("2 hours", 7200), ("90 sec", 90), ("10M", 600), ("2m 30s", 150)])
def test_parse_budget(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "0", "-5m", "5x", True, "1h30", "5 min later", "m"])
def test_bad_budget(bad):
    with pytest.raises(RecipeError, match="budget.*Fix: write e.g. 30m"):
        parse_budget(bad)


def test_a_negative_budget_is_called_negative_not_unreadable():
    with pytest.raises(RecipeError, match="must be a positive duration"):
        parse_budget("-1m")


@pytest.mark.parametrize(("argv", "flag"), [(["--seeds", "0"], "--seeds (seeds) 0"),
                                            (["--max-epochs", "0"], "--max-epochs (max_epochs) 0"),
                                            (["--finalists", "-1"], "--finalists (finalists) -1")])
def test_a_bad_number_names_the_flag_and_the_fix(argv, flag, tmp_path, capsys):
    out = tmp_path / "fit"
    assert main(["fit", str(_bad_rows(tmp_path)), "-o", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert flag in err and "Fix:" in err and "Traceback" not in err and not out.exists()


def test_budget_counts_earlier_sessions():
    now = [100.0]
    b = Budget(60, spent_s=20, clock=lambda: now[0])
    assert b.elapsed() == 20 and b.left() == 40
    now[0] = 130.0
    assert b.left() == 10 and b.end == 140.0


def _bad_rows(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"text": "good film", "labels": "pos"}, {"text": "bad film", "labels": "neg"},
            {"text": "fine film", "labels": None}]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def test_bad_data_exits_2_names_file_row_field_and_writes_nothing(tmp_path, capsys, tiny_encoder_dir):
    out = tmp_path / "fit"
    code = main(["fit", str(_bad_rows(tmp_path)), "-o", str(out), "--model", str(tiny_encoder_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "train.jsonl" in err and "line 3" in err and "label" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_missing_column_names_the_field(tmp_path, capsys, tiny_encoder_dir):
    data = tmp_path / "d"
    data.mkdir()
    (data / "train.jsonl").write_text(json.dumps({"body": "x", "labels": "a"}) + "\n")
    out = tmp_path / "fit"
    assert main(["fit", str(data), "-o", str(out), "--model", str(tiny_encoder_dir), "-q"]) == 2
    err = capsys.readouterr().err
    assert "train.jsonl" in err and "--text-column" in err and not out.exists()


def test_state_refuses_other_data_or_options_and_restart_clears(tmp_path):
    folder = tmp_path / "fit"
    state = open_state(folder, {"data": "abc", "options": {"seeds": 3}}, {})
    state.record("analyze", {"x": 1}, 2.0)
    (folder / ".leftover.json.x1.tmp").write_text("torn")
    again = open_state(folder, {"data": "abc", "options": {"seeds": 3}}, {})
    assert again.done("analyze") and again.spent_s == 2.0 and not (folder / ".leftover.json.x1.tmp").exists()
    with pytest.raises(RunDirError, match=r"seeds \(3 -> 2\).*--restart"):
        open_state(folder, {"data": "abc", "options": {"seeds": 2}}, {})
    with pytest.raises(RunDirError, match="the data"):
        open_state(folder, {"data": "xyz", "options": {"seeds": 3}}, {})
    fresh = open_state(folder, {"data": "xyz", "options": {"seeds": 2}}, {}, restart=True)
    assert not fresh.done("analyze") and sorted(p.name for p in folder.iterdir()) == [STATE_FILE]


def test_the_budget_may_change_until_the_plan_is_made(tmp_path):
    """A fit stopped by a budget too small (after the probe, or with the screen recorded) continues with
    a larger one: the measurements are kept, the screen (sized by the old budget) is redone. Once the
    plan is made, another budget is refused like any other option."""
    folder = tmp_path / "fit"
    small = {"data": "abc", "options": {"seeds": 2, "budget_s": 30.0}}
    large = {"data": "abc", "options": {"seeds": 2, "budget_s": 600.0}}
    state = open_state(folder, small, {"budget_s": 30.0})
    for unit in ("analyze", "candidates", "probe", "screen"):
        state.record(unit, {"unit": unit}, 1.0)
    again = open_state(folder, large, {"budget_s": 600.0})
    assert [u for u in ("analyze", "candidates", "probe", "screen") if again.done(u)] == ["analyze", "candidates",
                                                                                          "probe"]
    assert again.data["options"]["budget_s"] == 600.0 and again.data["order"] == ["analyze", "candidates", "probe"]
    assert again.spent_s == 4.0  # the time spent stays spent
    assert open_state(folder, large, {"budget_s": 600.0}).done("probe")  # written: the same command continues
    again.record("plan", {}, 1.0)
    with pytest.raises(RunDirError, match=r"budget_s \(600.0 -> 30.0\).*only until the plan is made.*--restart"):
        open_state(folder, small, {"budget_s": 30.0})
    with pytest.raises(RunDirError, match="the data"):  # another budget does not excuse other data
        open_state(tmp_path / "fit", {"data": "xyz", "options": small["options"]}, {})


def test_a_folder_that_is_not_a_fit_is_never_touched(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    for restart in (False, True):
        with pytest.raises(RunDirError, match="not a tailtune fit"):
            open_state(folder, {"data": "a", "options": {}}, {}, restart=restart)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_remove_leftovers_keeps_checkpoints(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / ".train.jsonl.abc.tmp").write_text("x")
    (tmp_path / ".model.tmp").mkdir()
    ckpt = tmp_path / "candidates" / "b" / "seed-1" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / ".keep.tmp").write_text("train --resume cleans these")
    removed = remove_leftovers(tmp_path)
    assert len(removed) == 2 and (ckpt / ".keep.tmp").exists()
