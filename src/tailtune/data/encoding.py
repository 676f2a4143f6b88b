"""From parsed labels to a :class:`TaskSpec` and encoded targets (``encode_all``).

The class vocabulary: ``labels.txt`` when given (indices index it, names must be in it), else the
task's labels, else the training data (names sorted; indices ``"0"..str(C-1)``). Indices are bounded
by the vocabulary before anything the size of the class count is allocated; without one, an index
far beyond the others (``2000000000`` among 0..27) is refused at its row.

A task given with ``labels.txt`` *selects* classes by name: ``labels.txt`` names the indices of the
files, ``task.labels`` lists the classes to train (and their order). Labels of the vocabulary that
are not trained (no training example, or not selected) are an error unless
``unused_labels="drop"``: then they are left out without renumbering the others (multi-label rows
lose them; single-label rows holding one are dropped) and ``notes`` says how many.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailtune.data import label_patterns
from tailtune.data.aspects import encode_aspects, unknown_error
from tailtune.data.kinds import ASPECTS, BINARY, MULTICLASS, MULTILABEL, TaskKind, task_kind
from tailtune.data.labels import RawLabels, _first, _np, describe, parse_labels, resolve_strings
from tailtune.data.readers import SplitSource, nfc
from tailtune.data.task import TaskSpec
from tailtune.errors import DataError, did_you_mean

UNUSED_LABELS = ("error", "drop")
#: how to leave out labels without training examples, from each entry point
DROP_UNUSED_HINT = (
    "recipe data.unused_labels: drop (--set data.unused_labels=drop), tailtune analyze / tailtune fit "
    "--drop-unused-labels, "
    "Python load_dataset(..., unused_labels='drop')"
)
_DIGITS = re.compile(r"^\d+$")


@dataclass
class Encoded:
    """What :func:`encode_all` returns: the task, each split's targets, its raw labels, the rows to drop
    (single-label rows of a left-out label) and notes."""

    task: TaskSpec
    targets: dict[str, np.ndarray]
    raws: dict[str, RawLabels]
    drop_rows: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Vocabulary:
    """Where the class names come from: ``names`` (NFC, for matching; ``None``: infer from train),
    ``display`` (the same names as given, for the task), ``origin`` (for messages), ``selected`` (a
    task's labels choosing among ``names``), ``fixed`` (a task was given: its labels are never
    dropped) and ``by_value`` (the task's labels are index numbers such as ``"0"``, ``"7"``)."""

    names: list[str] | None = None
    display: list[str] | None = None
    origin: str | None = None
    selected: list[str] | None = None
    fixed: bool = False
    by_value: bool = False


def _vocabulary(task_labels: list[str] | None, declared, declared_from) -> Vocabulary:
    if declared is not None:
        return Vocabulary([nfc(x) for x in declared], list(declared), declared_from,
                          list(task_labels) if task_labels else None, fixed=bool(task_labels))
    if task_labels:
        names = [nfc(x) for x in task_labels]
        return Vocabulary(names, list(task_labels), "the task's labels (task.labels / task.json)", fixed=True,
                          by_value=all(_DIGITS.match(x) for x in names))
    return Vocabulary()


def _parse_all(sources, columns, name, vocab: Vocabulary, label_sep, notes) -> dict[str, RawLabels]:
    """Parse every split (train first) and insist on one layout across splits."""
    match = None if vocab.by_value else vocab.names
    train_src = sources[0]
    train = resolve_strings(parse_labels(train_src, columns, label_sep=label_sep, notes=notes), train_src, name,
                            match, None)
    raws = {"train": train}
    for src in sources[1:]:
        raw = resolve_strings(parse_labels(src, columns, label_sep=label_sep, notes=notes), src, name, match,
                              train.form)
        same = (raw.form == train.form) or (
            {raw.form, train.form} <= {"list_int", "list_str"} and len(raw.values) == 0
        )
        if not same:
            raise DataError(
                f"mixed label types across splits: {train_src.origin} has {describe(train.form)} labels but "
                f"{src.origin} has {describe(raw.form)} labels in column {name!r}; write them the same way"
            )
        raws[src.split] = raw
    return raws


def _infer_kind(raw: RawLabels, src: SplitSource, name: str) -> TaskKind:
    if raw.form in ("int", "str"):
        return MULTICLASS  # binary decided once the classes are known
    if raw.form == "dict":
        return ASPECTS
    label_patterns.check_pairs_minority(raw, src, name)
    if raw.form == "list_str" and len(raw.values) and pc.all(
        pc.match_substring_regex(raw.values, label_patterns.PAIR_RE)
    ).as_py():
        return ASPECTS
    return MULTILABEL


def encode_all(
    sources: list[SplitSource],
    columns: list[str],
    *,
    task: TaskSpec | None,
    kind: str | TaskKind | None,
    declared: list[str] | None,
    declared_from: str | None,
    label_sep: str | None,
    task_labels: list[str] | None = None,
    unused_labels: str = "error",
) -> Encoded:
    """Infer (or check) the task from train and encode every split.

    ``task`` is a complete spec to encode against; otherwise ``kind`` (may be ``None`` = infer), the
    ``declared`` label names (labels.txt) and ``task_labels`` (a task's labels given without a kind, or
    the aspects of an aspects task given without polarities) guide the inference.
    """
    name = columns[0] if len(columns) == 1 else ",".join(columns)
    kind_given = kind is not None or task is not None
    if task is not None:
        kind, task_labels = task.kind, list(task.labels)
    info = None if kind is None else task_kind(kind)
    notes: list[str] = []
    vocab = Vocabulary() if info is not None and info.per_aspect else _vocabulary(task_labels, declared, declared_from)
    raws = _parse_all(sources, columns, name, vocab, label_sep, notes)
    train_raw = raws["train"]
    if info is None:
        info = _infer_kind(train_raw, sources[0], name)
    kind = info.name
    if info.per_aspect:
        spec, enc = encode_aspects(sources, raws, name, task, task_labels)
        return Encoded(spec, enc, raws, notes=notes)
    form = train_raw.form
    if form == "dict":
        raise DataError(f"column {name!r} holds aspect dicts; use task kind 'aspects', not {kind!r}")
    if info.single_label and form not in ("int", "str"):
        raise DataError(
            f"column {name!r} of {sources[0].origin} holds {describe(form)} labels, which need kind "
            f"'multilabel' (or 'aspects'), not {kind!r}"
        )
    if vocab.names is None and label_sep is None and (not kind_given or info.multi_hot):
        label_patterns.check_joined(train_raw, sources[0], name)
    classes = _ClassEncoder(sources, raws, name, info, vocab, unused_labels, notes)
    spec, enc, drops = classes.run(infer_binary=not kind_given, hierarchy=task.hierarchy if task else None)
    return Encoded(spec, enc, raws, drops, notes)


def index_names(raw: RawLabels, src: SplitSource, name: str, at_least: int = 0) -> list[str]:
    """``"0".."C-1"`` for index labels without declared names, C = the largest index + 1, refusing an
    index so far beyond the others that it would make mostly empty classes (before allocating them)."""
    v = raw.values
    if v.size == 0:
        return [str(i) for i in range(at_least)]
    top = max(int(v.max()), at_least - 1)
    distinct = int(np.unique(v[v >= 0]).size) + at_least
    if top + 1 > 2 * distinct + 10:
        j = int(np.argmax(v))
        raise DataError(
            f"label index {int(v[j])} at {src.where(raw.row(j))} (column {name!r}) is far beyond the other indices: "
            f"the training rows use {int(np.unique(v).size)} distinct indices, so it would make {top + 1} classes, "
            f"most of them without an example; class indices run 0..C-1: fix the row, or write the labels as "
            f"names (or name the indices in labels.txt)"
        )
    return [str(i) for i in range(top + 1)]


def _encode_names(values, names: list[str], raw: RawLabels, src: SplitSource, vocab_from, name) -> np.ndarray:
    idx = pc.index_in(values, value_set=pa.array(names, pa.string()))
    missing = _np(idx.is_null())
    if missing.any():
        j = _first(missing)
        value = values[j].as_py()
        raise unknown_error(value, src.where(raw.row(j)), src.split, names, "label", vocab_from,
                            label_patterns.joined_hint(value, names))
    return _np(idx).astype(np.int64)


def _encode_ints(values: np.ndarray, num: int, raw: RawLabels, src: SplitSource, vocab_from, name) -> np.ndarray:
    bad = (values < 0) | (values >= num)
    if bad.any():
        j = _first(bad)
        where = src.where(raw.row(j))
        if values[j] < 0:
            raise DataError(
                f"label index {int(values[j])} at {where} is negative (column {name!r}); class indices start at 0, "
                f"fix the row"
            )
        if src.split == "train" and vocab_from:
            raise DataError(
                f"label index {int(values[j])} at {where} is out of range: {vocab_from} names {num} labels (indices "
                f"0..{num - 1}); add the missing names there (labels are indices into that list, so a name removed "
                f"from it renumbers the labels after it; to leave labels out use {DROP_UNUSED_HINT}) (column {name!r})"
            )
        raise DataError(
            f"label index {int(values[j])} at {where} does not occur in the training data "
            f"(training indices 0..{num - 1}); fix the row, or add training examples of it (column {name!r})"
        )
    return values.astype(np.int64)


class _ClassEncoder:
    """binary / multiclass / multilabel encoding in three steps: the vocabulary's names, each split in
    vocabulary space, then the classes kept (selected, trained) and the remap onto them."""

    def __init__(self, sources, raws, name, kind: TaskKind, vocab: Vocabulary, unused: str, notes: list[str]):
        self.sources, self.raws, self.name, self.kind = sources, raws, name, kind
        self.vocab, self.unused, self.notes = vocab, unused, notes
        self.train_src = sources[0]

    def run(self, *, infer_binary: bool, hierarchy):
        names = self._names()
        encoded = {src.split: self._encode(src, names) for src in self.sources}
        keep = self._keep(names, encoded["train"])
        encoded, drops = self._leave_out(names, keep, encoded)
        if self.vocab.selected is not None:
            kept = list(self.vocab.selected)
        else:
            shown = self.vocab.display if self.vocab.display is not None else names
            kept = [shown[i] for i in keep]
        kind = self.kind
        if kind.is_binary or (infer_binary and kind.is_multiclass and len(kept) == 2):
            if len(kept) != 2:
                raise DataError(
                    f"kind 'binary' needs 2 classes, {self.train_src.origin} has {len(kept)}: {kept[:10]}; use kind "
                    f"'multiclass' (recipe: task.kind)"
                )
            kind = BINARY
        if kind.is_multiclass and len(kept) < 2:
            raise DataError(
                f"the training data {self.train_src.origin} has a single class {kept}; a classifier needs at least "
                f"2: add examples of another class"
            )
        return TaskSpec(kind=kind.name, labels=kept, hierarchy=hierarchy), encoded, drops

    # ---------------------------------------------------------------- names
    def _names(self) -> list[str]:
        train, vocab = self.raws["train"], self.vocab
        if train.form == "indicator":
            names = list(vocab.names) if vocab.names is not None else list(train.fields)
            if len(names) != len(train.fields):
                raise DataError(
                    f"{len(train.fields)} indicator columns but {len(names)} declared labels; they must match one to one"
                )
            return names
        if vocab.names is not None and not (vocab.by_value and train.form in ("int", "list_int")):
            names = list(vocab.names)
        elif train.form in ("int", "list_int"):
            top = max((int(x) for x in vocab.names), default=-1) + 1 if vocab.by_value else 0
            names = index_names(train, self.train_src, self.name, at_least=top)
            if vocab.by_value:  # the task's labels are index numbers: they select the indices by value
                self.vocab = Vocabulary(names, None, vocab.origin, list(vocab.display), fixed=True)
        else:
            names = sorted(pc.unique(train.values).to_pylist())
            note = label_patterns.case_variant_note(names, self.train_src.origin)
            if note:
                self.notes.append(note)
        if not names:
            raise DataError(
                f"{self.train_src.origin} has no labels in column {self.name!r}; every row has an empty label list"
            )
        return names

    # ---------------------------------------------------------------- one split in vocabulary space
    def _encode(self, src: SplitSource, names: list[str]) -> np.ndarray:
        raw = self.raws[src.split]
        vocab_from = self.vocab.origin
        if raw.form == "indicator":
            return raw.matrix.astype(np.float32)
        if raw.form in ("int", "list_int"):
            enc = _encode_ints(raw.values, len(names), raw, src, vocab_from, self.name)
        else:
            enc = _encode_names(raw.values, names, raw, src, vocab_from, self.name)
        if raw.form in ("list_int", "list_str") or self.kind.multi_hot:
            parents = np.arange(raw.n) if raw.form in ("int", "str") else raw.parents
            matrix = np.zeros((raw.n, len(names)), dtype=np.float32)
            matrix[parents, enc] = 1.0
            return matrix
        return enc

    # ---------------------------------------------------------------- the classes kept
    def _keep(self, names: list[str], train_enc: np.ndarray) -> list[int]:
        counts = train_enc.sum(axis=0) if train_enc.ndim == 2 else np.bincount(train_enc, minlength=len(names))
        keep = list(range(len(names)))
        if self.vocab.selected is not None:
            index = {n: i for i, n in enumerate(names)}
            missing = [s for s in self.vocab.selected if nfc(s) not in index]
            if missing:
                raise DataError(
                    f"task label(s) {missing[:10]} are not in {self.vocab.origin}"
                    f"{did_you_mean(str(missing[0]), names)}; the task's labels select classes by name from it: "
                    f"fix task.labels or {self.vocab.origin}"
                )
            keep = [index[nfc(s)] for s in self.vocab.selected]
        zero = [i for i in keep if counts[i] == 0]
        if zero and (self.unused != "drop" or self.vocab.fixed):
            raise self._zero_error([names[i] for i in zero], len(names))
        if zero:
            keep = [i for i in keep if counts[i] > 0]
            self.notes.append(
                f"warning: left out label(s) {[names[i] for i in zero][:10]} of {self.vocab.origin or 'the data'}: "
                f"zero training examples in {self.train_src.origin} (unused_labels: drop); the other labels keep "
                f"their names"
            )
        return keep

    def _zero_error(self, zero: list[str], num: int) -> DataError:
        src0, vocab = self.train_src.origin, self.vocab
        indices = self.raws["train"].form in ("int", "list_int")
        head = f"label(s) {zero[:10]} have zero training examples in {src0}"
        if vocab.fixed:
            if indices and vocab.selected is None:
                return DataError(
                    f"{head} (declared by {vocab.origin}); the labels are indices into that list, so removing a name "
                    f"renumbers the labels after it: add training examples, or write every name to labels.txt next "
                    f"to the data and list the labels to train in task.labels"
                )
            return DataError(f"{head} (declared by {vocab.origin}); add training examples, or remove them from "
                             f"task.labels")
        if indices and vocab.origin:
            return DataError(
                f"{head} (declared by {vocab.origin}); the labels are indices into {vocab.origin}, so deleting a name "
                f"there renumbers the labels after it: add training examples, or leave them out without renumbering: "
                f"{DROP_UNUSED_HINT}"
            )
        if indices:
            return DataError(
                f"label index(es) {zero[:10]} have zero training examples in {src0} (the classes are the indices "
                f"0..{num - 1} it uses); add training examples, or leave them out: {DROP_UNUSED_HINT}"
            )
        return DataError(
            f"{head} (declared by {vocab.origin}); add training examples, remove them from {vocab.origin}, or leave "
            f"them out: {DROP_UNUSED_HINT}"
        )

    def _leave_out(self, names, keep, encoded):
        """Remap onto the kept classes; rows of left-out labels: an error, or dropped/stripped with a note."""
        if keep == list(range(len(names))):
            return encoded, {}
        out = sorted(set(range(len(names))) - set(keep))
        lut = np.full(len(names), -1, dtype=np.int64)
        lut[keep] = np.arange(len(keep))
        result: dict[str, np.ndarray] = {}
        drops: dict[str, np.ndarray] = {}
        for src in self.sources:
            enc = encoded[src.split]
            hit = (enc[:, out].sum(axis=1) > 0) if enc.ndim == 2 else np.isin(enc, out)
            if hit.any():
                self._left_out_rows(src, names, out, enc, hit)
            if enc.ndim == 2:
                result[src.split] = np.ascontiguousarray(enc[:, keep])
            else:
                result[src.split] = lut[enc]
                if hit.any():
                    drops[src.split] = hit
        return result, drops

    def _left_out_rows(self, src: SplitSource, names, out, enc, hit) -> None:
        i = _first(hit)
        label = names[int(enc[i])] if enc.ndim == 1 else names[next(c for c in out if enc[i, c] > 0)]
        if self.unused != "drop":
            raise DataError(
                f"label {label!r} at {src.where(i)} is not among the task's labels (it is in {self.vocab.origin} but "
                f"not in task.labels); add it to task.labels, fix the row, or leave such labels out: {DROP_UNUSED_HINT}"
            )
        what = "dropped" if enc.ndim == 1 else "removed left-out labels from"
        self.notes.append(
            f"warning: {what} {int(hit.sum())} row(s) of {src.origin} holding a left-out label such as {label!r} "
            f"(unused_labels: drop)"
        )
