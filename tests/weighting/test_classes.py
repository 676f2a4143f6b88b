import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tailtune.weighting import SCHEMES, class_weights, label_counts, pos_weight

COUNTS = [900, 90, 10]


def test_inverse_raw_values():
    w = class_weights(COUNTS, scheme="inverse", normalize=False)
    assert torch.allclose(w, torch.tensor([1000 / 900, 1000 / 90, 1000 / 10]))
    assert w.dtype == torch.float32


def test_sqrt_inverse_and_uniform():
    w = class_weights(COUNTS, scheme="sqrt_inverse", normalize=False)
    assert torch.allclose(w, torch.tensor([math.sqrt(1000 / n) for n in COUNTS]))
    assert torch.equal(class_weights(COUNTS, scheme="uniform"), torch.ones(3))


def test_effective_number_formula_and_limits():
    beta = 0.99
    w = class_weights(COUNTS, scheme="effective_number", beta=beta, normalize=False)
    ref = torch.tensor([(1 - beta) / (1 - beta**n) for n in COUNTS], dtype=torch.float32)
    assert torch.allclose(w, ref, rtol=1e-6)
    assert torch.allclose(class_weights(COUNTS, scheme="effective_number", beta=0.0), torch.ones(3))
    # beta -> 1 approaches inverse (normalised)
    near = class_weights(COUNTS, scheme="effective_number", beta=1 - 1e-9)
    assert torch.allclose(near, class_weights(COUNTS, scheme="inverse"), rtol=1e-4)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_normalize_gives_mean_one(scheme):
    w = class_weights(COUNTS, scheme=scheme)
    assert w.mean().item() == pytest.approx(1.0, rel=1e-6)


def test_cap_bounds_ratio_and_overrides_are_exact():
    w = class_weights({"earn": 900, "acq": 90, "rare": 10}, scheme="inverse", cap=3.0)
    assert (w.max() / w.min()).item() == pytest.approx(3.0, rel=1e-5)
    w2 = class_weights({"earn": 900, "acq": 90, "rare": 10}, scheme="inverse", cap=3.0, overrides={"rare": 50.0})
    assert w2[2].item() == 50.0  # never capped, never normalised
    assert w2[:2].mean().item() == pytest.approx(1.0)
    w3 = class_weights(COUNTS, scheme="inverse", overrides={1: 7.0})
    assert w3[1].item() == 7.0


def test_zero_count_names_class_and_remedies():
    with pytest.raises(ValueError, match=r"class 'ghost' has zero examples.*overrides"):
        class_weights([5, 0], scheme="inverse", names=["real", "ghost"])
    with pytest.raises(ValueError, match="index 1 has zero examples"):
        class_weights([5, 0], scheme="effective_number")
    # an override is a remedy; uniform needs no counts
    w = class_weights([5, 0], scheme="inverse", names=["real", "ghost"], overrides={"ghost": 2.0})
    assert w.tolist() == [1.0, 2.0]
    assert class_weights([5, 0], scheme="uniform").tolist() == [1.0, 1.0]


def test_buffer_usable():
    m = torch.nn.Module()
    m.register_buffer("weight", class_weights(COUNTS, scheme="inverse"))
    assert "weight" in m.state_dict()


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(scheme="inverted"), ValueError, r"scheme='inverted'.*did you mean 'inverse'"),
        (dict(scheme="effective_number", beta=1.0), ValueError, r"beta=1.0 must be a number in \[0, 1\)"),
        (dict(scheme="inverse", cap=0.5), ValueError, "cap=0.5 must be"),
        (dict(scheme="inverse", overrides={"x": 1.0}), ValueError, "no class names were given"),
        (dict(scheme="inverse", names=["a", "b", "c"], overrides={"d": 1.0}), ValueError, "unknown class 'd'"),
        (dict(scheme="inverse", overrides={5: 1.0}), ValueError, "index 5 is out of range"),
        (dict(scheme="inverse", overrides={0: -1.0}), ValueError, r"overrides\[0\]=-1.0"),
        (dict(scheme="inverse", names=["a"]), ValueError, "names has 1 entries"),
        (dict(scheme="inverse", normalize="yes"), TypeError, "normalize='yes'"),
    ],
)
def test_invalid_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        class_weights(COUNTS, **kwargs)


def test_invalid_counts():
    with pytest.raises(ValueError, match="non-negative"):
        class_weights([1, -1], scheme="inverse")
    with pytest.raises(ValueError, match="finite"):
        class_weights([1, float("nan")], scheme="inverse")
    with pytest.raises(ValueError, match="non-empty 1-D"):
        class_weights([], scheme="inverse")
    with pytest.raises(TypeError, match="sequence of numbers"):
        class_weights(["a"], scheme="inverse")


def test_pos_weight():
    assert pos_weight([10, 50], [990, 950]).tolist() == pytest.approx([99.0, 19.0])
    assert pos_weight([10, 50], [990, 950], cap=30.0).tolist() == pytest.approx([30.0, 19.0])
    assert pos_weight([10, 50], num_samples=1000).tolist() == pytest.approx([99.0, 19.0])
    with pytest.raises(ValueError, match="label 'b' has no positive examples"):
        pos_weight([3, 0], [5, 5], names=["a", "b"])
    with pytest.raises(ValueError, match="no negative examples"):
        pos_weight([3, 1], [0, 5])
    with pytest.raises(ValueError, match="exactly one of neg_counts or num_samples"):
        pos_weight([3, 1])
    with pytest.raises(ValueError, match="cap=-1"):
        pos_weight([3, 1], [1, 1], cap=-1)
    with pytest.raises(ValueError, match="smaller than a positive count"):
        pos_weight([3, 10], num_samples=5)



def _effective(n, beta):
    return (1 - beta**n) / (1 - beta)


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999, 0.9999])
def test_pos_weight_effective_number_is_the_ratio_of_effective_numbers(beta):
    pos, neg = [10, 50, 700], [6990, 950, 300]
    expected = [_effective(n, beta) / _effective(p, beta) for p, n in zip(pos, neg)]
    assert pos_weight(pos, neg, scheme="effective_number", beta=beta).tolist() == pytest.approx(expected, rel=1e-5)
    # diminishing returns: between 1 and the inverse ratio (shrunk towards 1), 1 when the counts tie
    assert all(min(1, n / p) - 1e-9 <= e <= max(1, n / p) + 1e-9 for e, p, n in zip(expected, pos, neg))
    assert pos_weight([40], [40], scheme="effective_number", beta=beta).item() == pytest.approx(1.0)


def test_pos_weight_schemes_and_their_limits():
    pos, neg = [10, 50], [990, 950]
    assert pos_weight(pos, neg, scheme="inverse").tolist() == pytest.approx([99.0, 19.0])
    assert pos_weight(pos, neg, scheme="sqrt_inverse").tolist() == pytest.approx([99.0**0.5, 19.0**0.5])
    assert pos_weight(pos, neg, scheme="uniform").tolist() == [1.0, 1.0]
    assert pos_weight(pos, neg, scheme="effective_number", beta=0.0).tolist() == [1.0, 1.0]
    # beta -> 1 approaches inverse; the cap applies last, to every scheme
    assert pos_weight(pos, neg, scheme="effective_number", beta=1 - 1e-9).tolist() == pytest.approx([99.0, 19.0],
                                                                                                   rel=1e-4)
    assert pos_weight(pos, neg, scheme="sqrt_inverse", cap=5.0).tolist() == pytest.approx([5.0, 19.0**0.5])
    a_700 = pos_weight([10], [7000], scheme="effective_number", beta=0.999).item()
    assert 90 < a_700 < 110  # a 1:700 label: about 100, not 700
    with pytest.raises(ValueError, match=r"scheme='inverted' is not one of .*did you mean 'inverse'"):
        pos_weight(pos, neg, scheme="inverted")
    with pytest.raises(ValueError, match=r"beta=1\.0 must be a number in \[0, 1\)"):
        pos_weight(pos, neg, scheme="effective_number", beta=1.0)

def test_label_counts():
    assert label_counts(torch.tensor([0, 2, 2, -100]), num_classes=4).tolist() == [1, 0, 2, 0]
    assert label_counts(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).tolist() == [2, 1]
    with pytest.raises(ValueError, match="num_classes=2"):
        label_counts(torch.tensor([0, 3]), num_classes=2)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 10_000), min_size=2, max_size=12),
    scheme=st.sampled_from(SCHEMES),
    cap=st.one_of(st.none(), st.floats(1.0, 20.0)),
)
def test_properties(counts, scheme, cap):
    w = class_weights(counts, scheme=scheme, cap=cap)
    assert torch.isfinite(w).all() and (w > 0).all()
    assert w.mean().item() == pytest.approx(1.0, rel=1e-5)
    if cap is not None:
        assert (w.max() / w.min()).item() <= cap * (1 + 1e-5)
    # rarer classes never get a smaller automatic weight
    order = sorted(range(len(counts)), key=lambda i: counts[i])
    ws = [w[i].item() for i in order]
    assert all(a >= b * (1 - 1e-5) for a, b in zip(ws, ws[1:]))


# ----------------------------------------------------------------- per-cell (aspect x class) weights
from tailtune.weighting import aspect_class_weights  # noqa: E402

CELLS = [[754, 255, 1298, 842], [72, 114, 136, 2827]]  # MAMS-ACSA train: food and price
ASPECTS, CLASSES4 = ["food", "price"], ["positive", "negative", "neutral", "absent"]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("cap", [None, 3.0])
def test_cells_are_classes_of_their_own(scheme, cap):
    """The scheme sees A * (P + 1) classes: the table is class_weights of the flattened cells."""
    got = aspect_class_weights(CELLS, aspects=ASPECTS, classes=CLASSES4, scheme=scheme, cap=cap)
    flat = class_weights([c for row in CELLS for c in row], scheme=scheme, cap=cap)
    assert got.shape == (2, 4) and torch.allclose(got.reshape(-1), flat)


def test_one_aspect_is_the_pooled_weights():
    got = aspect_class_weights([CELLS[0]], aspects=["food"], classes=CLASSES4, scheme="effective_number", beta=0.99)
    assert torch.allclose(got[0], class_weights(CELLS[0], scheme="effective_number", beta=0.99))


def test_rare_cells_weigh_more_and_the_cap_bounds_the_spread():
    w = aspect_class_weights(CELLS, aspects=ASPECTS, classes=CLASSES4, scheme="inverse", normalize=False)
    assert w[1, 0] > w[0, 1] > w[0, 2]  # price#positive (72) > food#negative (255) > food#neutral (1298)
    capped = aspect_class_weights(CELLS, aspects=ASPECTS, classes=CLASSES4, scheme="inverse", cap=5.0)
    assert capped.max() / capped.min() == pytest.approx(5.0)
    assert capped.mean() == pytest.approx(1.0)


def test_overrides_are_set_exactly_and_left_out_of_the_normalisation():
    w = aspect_class_weights(CELLS, aspects=ASPECTS, classes=CLASSES4, scheme="inverse", cap=4.0,
                             overrides={"absent": 1.0, "price#negative": 7.0})
    assert w[:, 3].tolist() == [1.0, 1.0] and w[1, 1] == 7.0
    auto = torch.tensor([w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 2]])
    assert auto.mean() == pytest.approx(1.0) and auto.max() / auto.min() == pytest.approx(4.0, rel=1e-5)


def test_a_cell_without_examples_gets_the_largest_automatic_weight():
    cells = [[50, 0, 30, 20], [10, 5, 40, 45]]
    w = aspect_class_weights(cells, aspects=ASPECTS, classes=CLASSES4, scheme="inverse")
    others = torch.cat([w[0, [0, 2, 3]], w[1]])
    assert w[0, 1] == others.max()
    assert others.mean() == pytest.approx(1.0)  # the empty cell is not in the normalisation
    set_by_hand = aspect_class_weights(cells, aspects=ASPECTS, classes=CLASSES4, scheme="inverse",
                                       overrides={"food#negative": 0.5})
    assert set_by_hand[0, 1] == 0.5


def test_shape_and_keys_are_checked():
    with pytest.raises(ValueError, match="cell_counts has 8 cells, expected 3 aspects x 4 classes"):
        aspect_class_weights(CELLS, aspects=["a", "b", "c"], classes=CLASSES4, scheme="inverse")
    with pytest.raises(ValueError, match="did you mean 'price#negative'"):
        aspect_class_weights(CELLS, aspects=ASPECTS, classes=CLASSES4, scheme="inverse", overrides={"price#negativ": 2})
