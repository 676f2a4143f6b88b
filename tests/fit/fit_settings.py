"""Settings the fit tests share (a module of its own: test files and the kill chain's child process
import it by this unique name; ``from conftest import ...`` resolved to another folder's conftest
when tests/fit ran together with tests/reports)."""

#: the options every end-to-end test uses: tiny, fast, still every stage
TINY = {"budget": "30m", "seeds": 2, "max_epochs": 1, "finalists": 1}

#: fewer resamples in the paired tests and rule fits of tiny fits (the statistics are tested elsewhere)
FAST_STATS = {"tailtune.fit.decide.N_RESAMPLES": 300, "tailtune.fit.decide.DECIDE_BOOTSTRAP": 20,
              "tailtune.fit.screening.SCREEN_N_RESAMPLES": 300, "tailtune.experiments.screen.SCREEN_TUNE_BOOTSTRAP": 10}
