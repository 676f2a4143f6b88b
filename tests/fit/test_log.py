"""decision-log.md: what each plan cut saves is worded as a saving (the number is the estimated time the
cut saves, not the plan's cost); the shipped temperature and a guard-stopped run's epochs are rounded."""

from __future__ import annotations

from tailtune.fit.log import render_log


def test_plan_cuts_read_as_savings_and_figures_are_rounded():
    state = {"options": {"budget_s": 180.0}, "spent_s": 132.0, "status": "done", "order": [], "units": {
        "plan": {"result": {"finalists": ["baseline", "a"], "seeds_asked": [13, 14], "arms": ["baseline"],
                            "seeds": [13], "epochs": 1, "train_size": 400, "estimate_s": 63.0,
                            "skipped": [{"what": "epochs lowered to 4", "estimated_s": 1483.4}]}},
        "replan": {"result": {"unit_s": 47.9, "factor": 0.76, "arms": ["baseline"], "seeds": [13, 14],
                              "skipped": [{"what": "dropped the last challenger a", "estimated_s": 95.8}]}},
        "train/baseline/seed-13": {"seconds": 348.4, "result": {"epochs_run": 0.9285714285714286,
                                                               "stopped_by_budget": True}},
        "final": {"result": {"shipped": ["candidates/baseline/seed-13"], "postprocess": {"temperature": 0.8498106894},
                             "validation": {"default": 0.46, "tuned": 0.93}, "test": None}}}}
    log = render_log(state)
    assert "- cut: epochs lowered to 4 (saves about 1483 s)" in log
    assert "- cut: dropped the last challenger a (saves about 96 s)" in log
    assert "temperature 0.850)" in log and "estimated 1483" not in log
    assert "| baseline/seed-13 | 348 | 0.93 | – | stopped by the budget guard |" in log  # a guard stop: part of an epoch
