"""Class-distribution statistics of a :class:`~tailtune.data.LoadedData` (``tailtune analyze``).

Everything is vectorised over Arrow/numpy arrays (no Python loop per row), so a million rows take
seconds: counts with ``np.bincount``/column sums, token lengths with Arrow's regex counter,
duplicates with Arrow's hash-based ``is_in`` on normalised text.

The result is a JSON-serialisable dict; :func:`find_warnings` turns it into warnings with remedies.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailtune.data.kinds import task_kind
from tailtune.data.loading import LoadedData
from tailtune.data.splits import aspect_indicator
from tailtune.data.task import TaskSpec

RARE_THRESHOLD = 10
RATIO_THRESHOLD = 100.0
PERCENTILES = (5, 25, 50, 75, 95, 99)
MAX_EXAMPLES = 5


def split_texts(ds) -> pa.ChunkedArray:
    """The ``text`` column of a loaded split (honouring a ``select`` indices mapping)."""
    col = ds.data.table.column("text")
    if getattr(ds, "_indices", None) is None:
        return col
    # one Arrow take (datasets' own row gather builds one record batch per row: slow for 1M rows)
    return col.take(ds._indices.column(0))


def _row_map(ds) -> np.ndarray | None:
    """Rows of the underlying table that a split selects (None: all of them, in order)."""
    if getattr(ds, "_indices", None) is None:
        return None
    return ds._indices.column(0).to_numpy().astype(np.int64)


def class_names(task: TaskSpec) -> list[str]:
    """The classes counted: labels, or the present ``aspect#polarity`` cells for aspects."""
    if task.kind_info.per_aspect:
        return [f"{a}#{p}" for a in task.labels for p in task.polarities]
    return list(task.labels)


def class_matrix(y: np.ndarray, task: TaskSpec) -> np.ndarray | None:
    """(N, K) 0/1 membership of each row in each class of :func:`class_names`; None for single-label."""
    kind = task.kind_info
    if kind.multi_hot:
        return y > 0
    if kind.per_aspect:
        return aspect_indicator(y, len(task.polarities)).astype(bool)
    return None


def class_counts(y: np.ndarray, task: TaskSpec) -> np.ndarray:
    """Examples per class of :func:`class_names` (multi-label: positives per label)."""
    if task.kind_info.single_label:
        return np.bincount(y, minlength=len(task.labels)).astype(np.int64)
    return class_matrix(y, task).sum(axis=0).astype(np.int64)


def _summary(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"count": 0}
    q = np.percentile(values, PERCENTILES)
    out = {"count": int(values.size), "mean": float(values.mean()), "min": int(values.min()), "max": int(values.max())}
    out.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, q)})
    return out


def _batches(texts, rows: int = 65_536):
    """Slices of ``texts`` of about ``rows`` rows, so temporary token lists stay small."""
    arr = texts if isinstance(texts, pa.ChunkedArray) else pa.chunked_array([texts])
    for start in range(0, len(arr), rows):
        yield arr.slice(start, rows)


def text_features(texts) -> tuple[np.ndarray, np.ndarray]:
    """Whitespace token count and a 64-bit hash of the normalised text per row, in one pass.

    Normalisation (the leakage key): lower case, split on whitespace, joined with single spaces (so
    runs of whitespace collapse and the ends are stripped); the hash is pandas' SipHash
    (``pandas.util.hash_array``). Arrow kernels over slices of 64k rows keep the temporaries small.
    """
    import pandas as pd

    lengths, hashes = [], []
    for batch in _batches(texts):
        tokens = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(pc.utf8_lower(batch)))
        lengths.append(pc.list_value_length(tokens).to_numpy().astype(np.int64))
        norm = pc.binary_join(tokens, pa.scalar(" ", type=tokens.type.value_type))  # string or large_string (parquet)
        del tokens
        hashes.append(pd.util.hash_array(norm.to_numpy(zero_copy_only=False), categorize=False))
    if not lengths:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    return np.concatenate(lengths), np.concatenate(hashes)


def token_lengths(texts, *, tokenizer=None, batch_size: int = 1024) -> np.ndarray:
    """Whitespace token counts (vectorised Arrow) or, with ``tokenizer``, its token counts."""
    if tokenizer is None:
        return text_features(texts)[0]
    out = np.empty(len(texts), dtype=np.int64)
    flat = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    for start in range(0, len(flat), batch_size):
        batch = flat.slice(start, batch_size).to_pylist()
        ids = tokenizer(batch, add_special_tokens=True, truncation=False)["input_ids"]
        out[start : start + len(batch)] = [len(x) for x in ids]
    return out


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    a = np.sort(a)
    if a.size:
        a = a[np.concatenate(([True], a[1:] != a[:-1]))]
    return a


def _member(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    if sorted_unique.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_unique, values), sorted_unique.size - 1)
    return sorted_unique[pos] == values


def leakage(hashes: dict[str, np.ndarray], text_at) -> dict:
    """Rows of a later split whose normalised-text hash occurs in an earlier split; duplicates within.

    ``hashes`` maps split -> (N,) uint64 from :func:`text_features`; ``text_at(split, i)`` returns
    the text of row ``i`` (for the examples). Sort + binary search: O(N log N).
    """
    pairs = {}
    order = [s for s in ("train", "validation", "test") if s in hashes]
    uniques = {s: _sorted_unique(hashes[s]) for s in order}
    for i, later in enumerate(order):
        for earlier in order[:i]:
            hit = _member(hashes[later], uniques[earlier])
            idx = np.flatnonzero(hit)
            pairs[f"{later}_in_{earlier}"] = {
                "rows": int(idx.size),
                "fraction": float(idx.size / max(len(hit), 1)),
                "examples": [{"index": int(j), "text": str(text_at(later, int(j)))[:120]} for j in idx[:MAX_EXAMPLES]],
            }
    within = {s: int(len(hashes[s]) - len(uniques[s])) for s in order}
    return {"normalisation": "lower case, whitespace collapsed, stripped; 64-bit SipHash", "across": pairs,
            "within": within}


def _lengths_by_class(lengths: np.ndarray, y: np.ndarray, task: TaskSpec) -> dict:
    kind = task.kind_info
    names = class_names(task) if not kind.per_aspect else list(task.aspect_classes)
    per = {}
    if kind.single_label:
        order = np.argsort(y, kind="stable")
        bounds = np.searchsorted(y[order], np.arange(len(names) + 1))
        for c, name in enumerate(names):
            per[name] = _summary(lengths[order[bounds[c] : bounds[c + 1]]])
    elif kind.multi_hot:
        member = y > 0
        for c, name in enumerate(names):
            per[name] = _summary(lengths[member[:, c]])
    else:  # aspects: rows mentioning each polarity, and rows with every aspect absent
        p = len(task.polarities)
        for c, name in enumerate(task.polarities):
            per[name] = _summary(lengths[(y == c).any(axis=1)])
        per["absent (all aspects)"] = _summary(lengths[(y == p).all(axis=1)])
    return per


def _weights(task: TaskSpec, train_y: np.ndarray) -> dict:
    from tailtune.weighting import SCHEMES, class_weights, pos_weight  # a layer above data/: imported on use

    def safe(counts, names):
        out = {}
        for scheme in SCHEMES:
            try:
                w = class_weights(counts, scheme=scheme, names=names)
                out[scheme] = {n: float(v) for n, v in zip(names, w.tolist())}
            except ValueError as exc:
                out[scheme] = {"error": str(exc)}
        return out

    kind = task.kind_info
    result: dict = {"schemes": list(SCHEMES), "normalize": True}
    if kind.per_aspect:
        classes = task.aspect_classes
        result["per_aspect"] = {
            a: safe([int(v) for v in np.bincount(train_y[:, i], minlength=len(classes))], classes)
            for i, a in enumerate(task.labels)
        }
        return result
    counts = class_counts(train_y, task)
    result["per_scheme"] = safe([int(v) for v in counts], list(task.labels))
    n = len(train_y)
    if kind.sigmoid:
        pos = np.array([counts[1]]) if kind.is_binary else counts
        names = [task.labels[1]] if kind.is_binary else list(task.labels)
        # what training's apply_to: pos_weight uses under each scheme ("pos_weight": inverse, neg/pos)
        per = {scheme: _pos_weight(pos_weight, pos, n, names, scheme) for scheme in SCHEMES}
        result["pos_weight"] = per["inverse"]
        result["pos_weight_per_scheme"] = per
    return result


def _pos_weight(fn, pos: np.ndarray, n: int, names: list[str], scheme: str) -> dict:
    try:
        w = fn([int(v) for v in pos], [int(n - v) for v in pos], scheme=scheme).tolist()
    except ValueError as exc:
        return {"error": str(exc)}
    return dict(zip(names, w))


def compute_statistics(data: LoadedData, *, tokenizer=None, tokenizer_name: str | None = None,
                       max_tokenized: int = 200_000, seed: int = 13) -> dict:
    """Statistics of every split of ``data`` as a JSON-serialisable dict (see docs/data.md).

    Args:
        data: the output of :func:`tailtune.data.load_dataset`.
        tokenizer: optional Hugging Face tokenizer for the length statistics (default: whitespace
            tokens). With a tokenizer at most ``max_tokenized`` random rows per split are measured.
        tokenizer_name: recorded in the result.
        max_tokenized, seed: the tokenizer sample.
    """
    task = data.task
    kind = task.kind_info
    names = class_names(task)
    splits = list(data.splits)
    result: dict = {
        "task": task.to_dict(),
        "files": dict(data.files),
        "notes": list(data.notes),
        "rows": {s: int(len(data.targets[s])) for s in splits},
        "classes": names,
    }
    counts = {s: class_counts(data.targets[s], task) for s in splits}
    result["counts"] = {s: dict(zip(names, map(int, counts[s]))) for s in splits}
    train = counts["train"]
    present = train[train > 0]
    if present.size:
        hi, lo = int(np.argmax(np.where(train > 0, train, -1))), int(np.argmin(np.where(train > 0, train, np.iinfo(np.int64).max)))
        result["imbalance"] = {
            "ratio": float(present.max() / present.min()),
            "largest": names[hi], "largest_count": int(train[hi]),
            "smallest": names[lo], "smallest_count": int(train[lo]),
            "over": "train" + (" (present aspect#polarity cells)" if kind.per_aspect else ""),
        }
    if kind.multi_hot:
        per_row = {s: (data.targets[s] > 0).sum(axis=1) for s in splits}
        y = (data.targets["train"] > 0).astype(np.float32)
        co = (y.T @ y).astype(np.int64)
        result["multilabel"] = {
            "cardinality": {s: float(per_row[s].mean()) for s in splits},
            "density": {s: float(per_row[s].mean() / len(names)) for s in splits},
            "rows_without_label": {s: int((per_row[s] == 0).sum()) for s in splits},
            "max_labels_per_row": {s: int(per_row[s].max()) for s in splits},
            "co_occurrence": {"labels": names, "split": "train", "matrix": co.tolist()},
        }
    if kind.per_aspect:
        classes = task.aspect_classes
        table = {}
        for s in splits:
            y = data.targets[s]
            table[s] = {
                a: dict(zip(classes, map(int, np.bincount(y[:, i], minlength=len(classes)))))
                for i, a in enumerate(task.labels)
            }
        result["aspects"] = {"polarity_table": table, "classes": classes}
    # token lengths
    unit = "whitespace tokens" if tokenizer is None else f"tokenizer tokens ({tokenizer_name or type(tokenizer).__name__})"
    # one pass over each underlying Arrow table (a carved validation split shares train's table)
    features: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    lengths, hashes = {}, {}
    rng = np.random.default_rng(seed)
    for s in splits:
        ds = data.splits[s]
        key = id(ds.data)
        if key not in features:
            features[key] = text_features(ds.data.table.column("text"))
        rows = _row_map(ds)
        lens, hashes[s] = features[key] if rows is None else (features[key][0][rows], features[key][1][rows])
        y = data.targets[s]
        if tokenizer is not None:
            texts = split_texts(ds)
            if len(texts) > max_tokenized:
                pick = np.sort(rng.choice(len(texts), size=max_tokenized, replace=False))
                texts, y = texts.take(pa.array(pick)), y[pick]
            lens = token_lengths(texts, tokenizer=tokenizer)
        lengths[s] = {"rows_measured": int(len(lens)), "overall": _summary(lens), "per_class": _lengths_by_class(lens, y, task)}
    result["lengths"] = {"unit": unit, "splits": lengths}
    result["weights"] = _weights(task, data.targets["train"])

    def text_at(split: str, i: int) -> str:
        ds = data.splits[split]
        rows = _row_map(ds)
        return ds.data.table.column("text")[int(rows[i]) if rows is not None else i].as_py()

    result["leakage"] = leakage(hashes, text_at)
    result["warnings"] = find_warnings(result)
    return result


def find_warnings(stats: dict) -> list[dict]:
    """Warnings with remedies: rare classes, extreme ratios, leakage, classes absent from train/validation."""
    out = []
    names = stats["classes"]
    train = stats["counts"]["train"]
    what = "aspect#polarity cell" if task_kind(stats["task"]["kind"]).per_aspect else "class"
    rare = {n: c for n, c in train.items() if 0 < c < RARE_THRESHOLD}
    if rare:
        shown = ", ".join(f"{n} ({c})" for n, c in sorted(rare.items(), key=lambda kv: kv[1])[:15])
        out.append({
            "code": "rare_classes",
            "message": f"{len(rare)} {what}(s) have fewer than {RARE_THRESHOLD} training examples: {shown}"
            + (" ..." if len(rare) > 15 else ""),
            "remedy": "collect or augment examples, merge them into a related class, or drop them; expect "
                      "unstable per-class metrics; consider a capped class-weight scheme (weighting.cap)",
        })
    imb = stats.get("imbalance")
    if imb and imb["ratio"] > RATIO_THRESHOLD:
        out.append({
            "code": "extreme_imbalance",
            "message": f"imbalance ratio {imb['ratio']:.0f}:1 ({imb['largest']} {imb['largest_count']} vs "
                       f"{imb['smallest']} {imb['smallest_count']}) exceeds {RATIO_THRESHOLD:.0f}:1",
            "remedy": "use effective_number or sqrt_inverse weights with a cap (e.g. weighting.cap: 10) or a "
                      "focal/asymmetric loss rather than raw inverse-frequency weights; tune decision thresholds",
        })
    for pair, info in stats.get("leakage", {}).get("across", {}).items():
        if info["rows"]:
            later, earlier = pair.split("_in_")
            out.append({
                "code": "leakage",
                "message": f"{info['rows']} {later} row(s) ({info['fraction']:.1%}) duplicate a {earlier} text "
                           f"(after normalisation), e.g. {later} row {info['examples'][0]['index'] + 1}: "
                           f"{info['examples'][0]['text']!r}",
                "remedy": f"remove the duplicates from {later} (or deduplicate before splitting); scores on "
                          f"{later} are otherwise inflated",
            })
    for split in ("test", "validation"):
        if split not in stats["counts"]:
            continue
        counts = stats["counts"][split]
        unseen = [n for n in names if counts.get(n, 0) > 0 and train.get(n, 0) == 0]
        if unseen:
            out.append({
                "code": f"{split}_class_absent_from_train",
                "message": f"{len(unseen)} {what}(s) occur in {split} but never in train: {unseen[:15]}",
                "remedy": "add training examples of them (move some from a larger split) or drop them; the "
                          "model cannot learn them",
            })
    per_scheme = stats.get("weights", {}).get("per_scheme", {})
    eff, inv = per_scheme.get("effective_number", {}), per_scheme.get("inverse", {})
    if eff and inv and "error" not in eff and "error" not in inv and min(eff.values()) > 0 and min(inv.values()) > 0:
        eff_ratio = max(eff.values()) / min(eff.values())
        inv_ratio = max(inv.values()) / min(inv.values())
        if inv_ratio > 2 and eff_ratio < 1 + 0.1 * (inv_ratio - 1):
            from tailtune.weighting.schemes import (
                DEFAULT_BETA,  # the beta those weights used (a layer above data/)
            )

            smallest = min(c for c in train.values() if c > 0)
            out.append({
                "code": "effective_number_saturated",
                "message": f"effective_number weights (beta={DEFAULT_BETA}) span only {eff_ratio:.2f}:1 while inverse "
                           f"spans {inv_ratio:.1f}:1: with {smallest:,}+ examples per class, (1-beta^n) is ~1 for every "
                           f"class (1/(1-beta) = {1 / (1 - DEFAULT_BETA):,.0f} effective samples at most)",
                "remedy": f"raise beta so 1/(1-beta) exceeds the class sizes (e.g. weighting.beta: "
                          f"{1 - 1 / (10 * max(train.values())):.6f}) or use sqrt_inverse",
            })
    remedies = {
        "validation": "their validation recall/F1 is undefined and early stopping ignores them; carve a larger "
                      "stratified validation split (val_fraction) or collect examples",
        "test": "their test recall/F1 is undefined, so the test report cannot show them; add test examples "
                "or report them as not evaluated",
    }
    for split, remedy in remedies.items():
        counts = stats["counts"].get(split)
        if counts is None:
            continue
        missing = [n for n in names if train.get(n, 0) > 0 and counts.get(n, 0) == 0]
        if missing:
            out.append({
                "code": f"class_absent_from_{split}",
                "message": f"{len(missing)} {what}(s) have no {split} example: {missing[:15]}"
                           + (" ..." if len(missing) > 15 else ""),
                "remedy": remedy,
            })
    return out
