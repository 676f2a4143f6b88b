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

from tailtune.data.loading import LoadedData
from tailtune.data.task import TaskSpec

RARE_THRESHOLD = 10
RATIO_THRESHOLD = 100.0
PERCENTILES = (5, 25, 50, 75, 95, 99)
MAX_EXAMPLES = 5


def split_texts(ds) -> pa.ChunkedArray:
    """The ``text`` column of a loaded split (honouring a ``select`` indices mapping)."""
    if getattr(ds, "_indices", None) is None:
        return ds.data.table.column("text")
    return ds.with_format("arrow", columns=["text"])[:].column("text")


def class_names(task: TaskSpec) -> list[str]:
    """The classes counted: labels, or the present ``aspect#polarity`` cells for aspects."""
    if task.kind == "aspects":
        return [f"{a}#{p}" for a in task.labels for p in task.polarities]
    return list(task.labels)


def class_matrix(y: np.ndarray, task: TaskSpec) -> np.ndarray | None:
    """(N, K) 0/1 membership of each row in each class of :func:`class_names`; None for single-label."""
    if task.kind == "multilabel":
        return y > 0
    if task.kind == "aspects":
        from tailtune.data.splits import aspect_indicator

        return aspect_indicator(y, len(task.polarities)).astype(bool)
    return None


def class_counts(y: np.ndarray, task: TaskSpec) -> np.ndarray:
    """Examples per class of :func:`class_names` (multi-label: positives per label)."""
    if task.kind in ("binary", "multiclass"):
        return np.bincount(y, minlength=len(task.labels)).astype(np.int64)
    return class_matrix(y, task).sum(axis=0).astype(np.int64)


def _summary(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"count": 0}
    q = np.percentile(values, PERCENTILES)
    out = {"count": int(values.size), "mean": float(values.mean()), "min": int(values.min()), "max": int(values.max())}
    out.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, q)})
    return out


def token_lengths(texts: pa.ChunkedArray, *, tokenizer=None, batch_size: int = 1024) -> np.ndarray:
    """Whitespace token counts (Arrow regex count, vectorised) or, with ``tokenizer``, its token counts."""
    if tokenizer is None:
        return pc.count_substring_regex(texts, r"\S+").to_numpy().astype(np.int64)
    out = np.empty(len(texts), dtype=np.int64)
    flat = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    for start in range(0, len(flat), batch_size):
        batch = flat.slice(start, batch_size).to_pylist()
        ids = tokenizer(batch, add_special_tokens=True, truncation=False)["input_ids"]
        out[start : start + len(batch)] = [len(x) for x in ids]
    return out


def normalise_text(texts: pa.ChunkedArray) -> pa.ChunkedArray:
    """Lower case, whitespace runs collapsed to one space, stripped: the key of the leakage check."""
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(texts), r"\s+", " "))


def leakage(texts: dict[str, pa.ChunkedArray]) -> dict:
    """Rows of a later split whose normalised text occurs in an earlier split; duplicates within splits."""
    norm = {s: normalise_text(t) for s, t in texts.items()}
    pairs = {}
    order = [s for s in ("train", "validation", "test") if s in norm]
    for i, later in enumerate(order):
        for earlier in order[:i]:
            hit = pc.is_in(norm[later], value_set=pc.unique(norm[earlier])).to_numpy(zero_copy_only=False)
            idx = np.flatnonzero(hit)
            pairs[f"{later}_in_{earlier}"] = {
                "rows": int(idx.size),
                "fraction": float(idx.size / max(len(hit), 1)),
                "examples": [
                    {"row": int(j), "text": str(texts[later][int(j)].as_py())[:120]} for j in idx[:MAX_EXAMPLES]
                ],
            }
    within = {s: int(len(norm[s]) - len(pc.unique(norm[s]))) for s in order}
    return {"normalisation": "lower case, whitespace collapsed, stripped", "across": pairs, "within": within}


def _lengths_by_class(lengths: np.ndarray, y: np.ndarray, task: TaskSpec) -> dict:
    names = class_names(task) if task.kind != "aspects" else list(task.aspect_classes)
    per = {}
    if task.kind in ("binary", "multiclass"):
        order = np.argsort(y, kind="stable")
        bounds = np.searchsorted(y[order], np.arange(len(names) + 1))
        for c, name in enumerate(names):
            per[name] = _summary(lengths[order[bounds[c] : bounds[c + 1]]])
    elif task.kind == "multilabel":
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
    from tailtune.weighting import SCHEMES, class_weights, pos_weight

    def safe(counts, names):
        out = {}
        for scheme in SCHEMES:
            try:
                w = class_weights(counts, scheme=scheme, names=names)
                out[scheme] = {n: float(v) for n, v in zip(names, w.tolist())}
            except ValueError as exc:
                out[scheme] = {"error": str(exc)}
        return out

    result: dict = {"schemes": list(SCHEMES), "normalize": True}
    if task.kind == "aspects":
        classes = task.aspect_classes
        result["per_aspect"] = {
            a: safe([int(v) for v in np.bincount(train_y[:, i], minlength=len(classes))], classes)
            for i, a in enumerate(task.labels)
        }
        return result
    counts = class_counts(train_y, task)
    result["per_scheme"] = safe([int(v) for v in counts], list(task.labels))
    n = len(train_y)
    if task.kind == "binary":
        pos = np.array([counts[1]])
        result["pos_weight"] = {task.labels[1]: _pos_weight(pos_weight, pos, n)}
    elif task.kind == "multilabel":
        pw = _pos_weight(pos_weight, counts, n)
        result["pos_weight"] = dict(zip(task.labels, pw)) if isinstance(pw, list) else pw
    return result


def _pos_weight(fn, pos: np.ndarray, n: int):
    try:
        w = fn([int(v) for v in pos], [int(n - v) for v in pos]).tolist()
    except ValueError as exc:
        return {"error": str(exc)}
    return w[0] if len(w) == 1 and len(pos) == 1 else w


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
    names = class_names(task)
    splits = list(data.splits)
    texts = {s: split_texts(data.splits[s]) for s in splits}
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
            "over": "train" + (" (present aspect#polarity cells)" if task.kind == "aspects" else ""),
        }
    if task.kind == "multilabel":
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
    if task.kind == "aspects":
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
    lengths = {}
    rng = np.random.default_rng(seed)
    for s in splits:
        t, y = texts[s], data.targets[s]
        if tokenizer is not None and len(t) > max_tokenized:
            pick = np.sort(rng.choice(len(t), size=max_tokenized, replace=False))
            t, y = t.take(pa.array(pick)), y[pick]
        lens = token_lengths(t, tokenizer=tokenizer)
        lengths[s] = {"rows_measured": int(len(lens)), "overall": _summary(lens), "per_class": _lengths_by_class(lens, y, task)}
    result["lengths"] = {"unit": unit, "splits": lengths}
    result["weights"] = _weights(task, data.targets["train"])
    result["leakage"] = leakage(texts)
    result["warnings"] = find_warnings(result)
    return result


def find_warnings(stats: dict) -> list[dict]:
    """Warnings with remedies: rare classes, extreme ratios, leakage, classes absent from train/validation."""
    out = []
    names = stats["classes"]
    train = stats["counts"]["train"]
    kind = stats["task"]["kind"]
    what = "aspect#polarity cell" if kind == "aspects" else "class"
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
                           f"(after normalisation), e.g. {later} row {info['examples'][0]['row'] + 1}: "
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
    val = stats["counts"].get("validation")
    if val is not None:
        missing = [n for n in names if train.get(n, 0) > 0 and val.get(n, 0) == 0]
        if missing:
            out.append({
                "code": "class_absent_from_validation",
                "message": f"{len(missing)} {what}(s) have no validation example: {missing[:15]}"
                           + (" ..." if len(missing) > 15 else ""),
                "remedy": "their validation recall/F1 is undefined and early stopping ignores them; carve a "
                          "larger stratified validation split (val_fraction) or collect examples",
            })
    return out
