"""The rules that turn what the analysis measured into candidate recipes (one readable place).

Every rule is a condition on the *data features* (:class:`DataFeatures`, measured by the analysis
stage) and the *model* (:class:`ModelInfo`), and produces either a candidate (a packaged preset plus
dotted overrides) or a shared hyper-parameter, each with the reason that goes into the decision log.
Nothing here names a data set: the same rules run on data sets nobody has seen.

Candidates (``candidate_rules``), in the order they are tried when no screening can rank them:

====================  ===================================================  =========================================
name                  when                                                 recipe
====================  ===================================================  =========================================
``baseline``          always                                               plain CE / BCE, no class weights
``focal-pos-weight``  multilabel, rarest label positive rate < 5%          sigmoid focal gamma 2 + inverse pos_weight
                                                                           capped at 10
``asl``               multilabel, rarest label positive rate < 5%          asymmetric loss (gamma_neg 4, clip 0.05)
``db``                multilabel, >= 8 labels, label imbalance >= 20:1     distribution-balanced loss
``pos-weight``        multilabel, rarest rate < 20%; binary, ratio >= 3    BCE + sqrt-inverse pos_weight capped at 10
``logit-adjust``      multiclass / aspects, ratio >= 3                     logit-adjusted CE (tau 1)
``sqrt-weights``      multiclass / aspects, ratio >= 3                     CE + sqrt-inverse class weights cap 10
``focal-mild``        any kind, ratio >= 1.5                               focal gamma 1, no weights
``focal-balanced``    aspects, ratio >= 3                                  focal gamma 1 + effective-number alpha cap 3
``+hierarchy``        multilabel with a declared hierarchy                 the first multilabel remedy (or BCE) plus
                                                                           the hierarchy penalty (weight 0.1)
====================  ===================================================  =========================================

Shared hyper-parameters (``shared_settings``), the same for every candidate so that a comparison
isolates the loss: learning rate by encoder size, epochs by training-set size, ``max_length`` from
the measured text lengths, batch 32, precision and length chunking by device, no early stopping
(the planner needs predictable run lengths; the best epoch is still restored). The planner may
later lower the epochs or train on a subsample; it never changes a rule.

References:
    Lin et al. 2017 (focal loss); Ridnik et al. 2021 (asymmetric loss); Wu et al. 2020 and
    Huang et al., EMNLP 2021 (distribution-balanced loss, long-tailed multi-label text); Menon et
    al., ICLR 2021 (logit adjustment); Cui et al. 2019 (effective number of samples); Mosbach et
    al., ICLR 2021 and Sun et al. 2019 (fine-tuning learning rates, epochs).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from tailtune.data.kinds import task_kind

__all__ = ["Candidate", "DataFeatures", "ModelInfo", "Setting", "candidate_rules", "shared_settings",
           "BASELINE", "HIERARCHY_MODE"]

BASELINE = "baseline"
#: decoding repair used with a declared hierarchy (switch on a predicted label's ancestors)
HIERARCHY_MODE = "add_parent"

# thresholds the rules use (named once; docs/fit.md cites them)
SKEW = 3.0                 #: imbalance ratio from which re-weighting / logit adjustment are tried
MILD_SKEW = 1.5            #: imbalance ratio from which a mild focal loss is tried
SPARSE_RATE = 0.05         #: multilabel: rarest label positive in fewer than 5% of texts
SOME_RATE = 0.20           #: multilabel: rarest label positive in fewer than 20% of texts
LONG_TAIL = 20.0           #: multilabel: label imbalance from which distribution-balanced loss is tried
LONG_TAIL_LABELS = 8       #: ... and at least this many labels
WEIGHT_CAP = 10.0          #: cap of every inverse/sqrt-inverse weight (lint warns above 50x)
SMALL_ENCODER = 40e6       #: parameters up to which an encoder counts as small (MiniLM-L6: 22.7M)
BASE_ENCODER = 150e6       #: ... and as base-sized (BERT-base: 110M)


@dataclass(frozen=True)
class DataFeatures:
    """What the analysis measured; the only input of the rules besides the model."""

    kind: str
    n_train: int
    n_validation: int
    n_classes: int
    imbalance: float            # largest / smallest training count (present classes; aspects: the P+1
                                # polarities pooled over aspects, absent included: what class weights see)
    smallest: int               # training count of the rarest class
    min_positive_rate: float    # multilabel: rarest label's positives / n_train; else smallest / n_train
    labels_per_text: float      # multilabel cardinality; 1 otherwise
    hierarchy: bool
    length_p95: float           # whitespace tokens
    absent_share: float = 0.0   # aspects: share of (text, aspect) cells that are absent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelInfo:
    """The encoder, as far as the rules care: size and position limit."""

    name: str
    params: float
    hidden: int
    layers: int
    max_positions: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """A candidate recipe: ``preset`` + ``overrides`` (dotted paths), with why it was proposed."""

    name: str
    preset: str
    overrides: tuple[tuple[str, Any], ...]
    rule: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "preset": self.preset, "overrides": [list(o) for o in self.overrides],
                "rule": self.rule, "reason": self.reason}


@dataclass(frozen=True)
class Setting:
    """A shared hyper-parameter: dotted path, value, reason."""

    path: str
    value: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Rules:
    out: list[Candidate] = field(default_factory=list)

    def add(self, name, preset, overrides, rule, reason):
        self.out.append(Candidate(name, preset, tuple(overrides), rule, reason))


def _multilabel_rules(f: DataFeatures, r: _Rules) -> None:
    rate = f"{100 * f.min_positive_rate:.2g}%"
    if f.min_positive_rate < SPARSE_RATE:
        r.add("focal-pos-weight", "focal",
              [("loss.focal.gamma", 2.0), ("weighting.scheme", "inverse"), ("weighting.cap", WEIGHT_CAP),
               ("weighting.apply_to", "pos_weight")], "sparse_multilabel",
              f"the rarest label is positive in {rate} of the texts: plain BCE leaves such labels below 0.5; "
              f"focal gamma 2 down-weights the easy negatives and an inverse pos_weight (capped at {WEIGHT_CAP:g}) "
              "lifts the positives")
        r.add("asl", "asl", [], "sparse_multilabel",
              f"the rarest label is positive in {rate} of the texts: the asymmetric loss focuses and clips the "
              "many negatives only (Ridnik et al. 2021)")
    if f.imbalance >= LONG_TAIL and f.n_classes >= LONG_TAIL_LABELS:
        r.add("db", "ce", [("loss", {"db": {"weight": 1.0}})], "long_tail_multilabel",
              f"{f.n_classes} labels with a {f.imbalance:.0f}:1 long tail: distribution-balanced loss re-balances "
              "by label frequency and co-occurrence (best on long-tailed Reuters in Huang et al. 2021)")
    if f.min_positive_rate < SOME_RATE:
        r.add("pos-weight", "ce", [("weighting.scheme", "sqrt_inverse"), ("weighting.cap", WEIGHT_CAP),
                                   ("weighting.apply_to", "pos_weight")], "rare_positives",
              f"the rarest label is positive in {rate} of the texts: BCE with a square-root inverse pos_weight "
              f"(capped at {WEIGHT_CAP:g}) is the mildest re-weighting")
    if f.hierarchy:
        first = next((c for c in r.out if c.name != BASELINE), None)
        base = (first.preset, list(first.overrides)) if first else ("ce", [])
        r.add(f"{first.name if first else 'bce'}+hierarchy", base[0], base[1] + [("loss.hierarchy", {"weight": 0.1})],
              "hierarchy", "the data declares a label hierarchy: a penalty (weight 0.1) on a child scored above "
              f"its parent, added to {'the first remedy' if first else 'BCE'}; decisions are repaired with "
              f"{HIERARCHY_MODE}")


def _single_label_rules(f: DataFeatures, r: _Rules) -> None:
    ratio = f"{f.imbalance:.1f}:1"
    kind = task_kind(f.kind)
    if f.imbalance >= SKEW and kind.is_binary:
        r.add("pos-weight", "ce", [("weighting.scheme", "sqrt_inverse"), ("weighting.cap", WEIGHT_CAP),
                                   ("weighting.apply_to", "pos_weight")], "skewed_binary",
              f"classes at {ratio}: BCE with a square-root inverse pos_weight (capped at {WEIGHT_CAP:g}); "
              "raw inverse weights over-correct")
    if f.imbalance >= SKEW and kind.softmax:
        r.add("logit-adjust", "logit-adjust", [], "skewed_softmax",
              f"classes at {ratio}: logit-adjusted CE (tau 1) targets the balanced error without weights "
              "(Menon et al. 2021)")
        r.add("sqrt-weights", "ce", [("weighting.scheme", "sqrt_inverse"), ("weighting.cap", WEIGHT_CAP)],
              "skewed_softmax", f"classes at {ratio}: CE with square-root inverse class weights (capped at "
              f"{WEIGHT_CAP:g}), milder than inverse weights, which over-correct")
    if f.imbalance >= SKEW and kind.per_aspect:
        r.add("focal-balanced", "focal", [("loss.focal.gamma", 1.0), ("weighting.scheme", "effective_number"),
                                          ("weighting.cap", 3.0), ("weighting.apply_to", "alpha")],
              "absent_dominates", f"{100 * f.absent_share:.0f}% of the aspect cells are absent: focal gamma 1 with "
              "effective-number alpha capped at 3 keeps the sentiment cells in the gradient")


def candidate_rules(f: DataFeatures) -> list[Candidate]:
    """The candidates for data with features ``f``: the baseline first, then the remedies."""
    r = _Rules()
    kind = task_kind(f.kind)
    loss_name = "BCE" if kind.sigmoid else "CE"
    r.add(BASELINE, "ce", [], "always", f"plain {loss_name} without class weights: the baseline every "
          "candidate must beat outside the noise")
    if kind.multi_hot:
        _multilabel_rules(f, r)
    else:
        _single_label_rules(f, r)
    if f.imbalance >= MILD_SKEW:
        r.add("focal-mild", "focal", [("loss.focal.gamma", 1.0)], "mild_focal",
              f"classes at {f.imbalance:.1f}:1: a mild focal loss (gamma 1, no weights); gamma 2 over-focuses "
              "at moderate skew")
    return r.out


def _learning_rate(m: ModelInfo) -> Setting:
    if m.params <= SMALL_ENCODER:
        return Setting("optim.lr", 1.0e-4, f"a small encoder ({m.params / 1e6:.0f}M parameters) needs a larger "
                       "learning rate: at 2e-5 a MiniLM leaves rare labels unlearned in a few epochs")
    if m.params <= BASE_ENCODER:
        return Setting("optim.lr", 3.0e-5, f"a base-sized encoder ({m.params / 1e6:.0f}M parameters): 3e-5, "
                       "inside the usual 2e-5..5e-5")
    return Setting("optim.lr", 1.5e-5, f"a large encoder ({m.params / 1e6:.0f}M parameters): 1.5e-5 keeps "
                   "fine-tuning stable")


def _epochs(f: DataFeatures, max_epochs: int | None) -> Setting:
    n = f.n_train
    epochs = 8 if n < 1_000 else 5 if n < 5_000 else 4 if n < 20_000 else 3 if n < 100_000 else 2
    reason = (f"{n:,} training texts: {epochs} epochs (smaller sets need more passes; the planner lowers this when "
              "the budget is short)")
    if max_epochs is not None and epochs > max_epochs:
        return Setting("train.epochs", max_epochs, reason + f"; capped at {max_epochs} (max_epochs)")
    return Setting("train.epochs", epochs, reason)


def _max_length(f: DataFeatures, m: ModelInfo) -> Setting:
    limit = min(256, m.max_positions)
    want = int(16 * math.ceil(1.4 * max(f.length_p95, 1.0) / 16))  # ~1.4 word pieces per word
    value = max(32, min(limit, want))
    return Setting("data.max_length", value, f"95% of the texts have at most {f.length_p95:.0f} words "
                   f"(~{want} word pieces): max_length {value} (cap {limit})")


def shared_settings(f: DataFeatures, m: ModelInfo, *, device: str, bf16: bool,
                    max_epochs: int | None = None) -> list[Setting]:
    """Hyper-parameters every candidate shares (see the module docstring); ``max_epochs`` caps the epochs."""
    gpu = device.startswith("cuda")
    out = [
        Setting("model.name", m.name, "the encoder asked for"),
        Setting("model.pooling", "mean", "mean pooling: the sentence-embedding encoders' own pooling"),
        _learning_rate(m),
        _epochs(f, max_epochs),
        _max_length(f, m),
        Setting("train.batch_size", 32, "batch 32, the reference batch of the recipe lint"),
        Setting("train.precision", "bf16" if gpu and bf16 else "fp32",
                "bf16 on a GPU that supports it" if gpu and bf16 else "fp32 (CPU, or a GPU without bf16)"),
        Setting("train.length_chunks", 1 if gpu else 4, "length chunking saves padded tokens on a CPU "
                "(docs/training.md)" if not gpu else "no length chunking on a GPU (launch-bound)"),
        Setting("train.eval_sort_by_length", True, "evaluation in length order (same results, less padding)"),
        Setting("early_stopping.patience", 0, "no early stopping: the planner needs predictable run lengths "
                "(the best epoch on validation is still restored)"),
    ]
    return out
