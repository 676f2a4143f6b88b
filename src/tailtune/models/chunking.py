"""Length chunking: run the encoder on length-sorted pieces of a batch, each padded to its own length.

A batch padded to its longest text wastes compute on the padding of every shorter one. Length-grouped
*sampling* (``train.group_by_length``) avoids it by changing which texts share a batch, which hurts
when text length correlates with the label (e.g. a minority class of long texts lands in a few
single-class batches). Chunking keeps the batch exactly as sampled: the texts are sorted by length,
cut into at most ``max_chunks`` contiguous pieces, each piece is trimmed to its own longest text
(rounded up to ``multiple``) and encoded separately, and the pooled states are put back in batch
order. Loss, gradient accumulation and every batch-level statistic (focal alpha normalisation,
supervised contrastive pairs, batch-mean sample weights) see the whole batch, so the result equals
the unchunked forward up to float rounding (dropout draws its masks per piece).

:func:`plan_chunks` chooses the cut points that minimise the padded token count (dynamic
programming over the sorted lengths; a batch of ``N`` texts costs ``O(max_chunks * N^2)`` integer
steps on the host).
"""

from __future__ import annotations

__all__ = ["PAD_MULTIPLE", "plan_chunks", "padded_tokens", "round_up"]

#: batches are padded to a multiple of this many tokens (the training collator and each chunk)
PAD_MULTIPLE = 8


def round_up(n: int, multiple: int = PAD_MULTIPLE) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (unchanged for ``multiple <= 1``)."""
    return -(-n // multiple) * multiple if multiple > 1 else n


def padded_tokens(sorted_lengths: list[int], bounds: list[tuple[int, int]], multiple: int = PAD_MULTIPLE) -> int:
    """Tokens computed when each ``(start, stop)`` piece of the descending lengths is padded on its own."""
    return sum((stop - start) * round_up(sorted_lengths[start], multiple) for start, stop in bounds)


def plan_chunks(sorted_lengths: list[int], max_chunks: int, multiple: int = PAD_MULTIPLE) -> list[tuple[int, int]]:
    """Cut points ``[(start, stop), ...]`` over lengths sorted in DESCENDING order.

    A piece's padded width is its first (longest) length rounded up to ``multiple``; the plan
    minimises the summed ``rows * width`` over at most ``max_chunks`` pieces, and never splits
    texts of the same padded width (a cut there saves nothing).

    >>> plan_chunks([64, 60, 20, 18, 17, 5], 3)
    [(0, 2), (2, 5), (5, 6)]
    >>> plan_chunks([30, 30, 29], 4)
    [(0, 3)]
    """
    n = len(sorted_lengths)
    if n == 0:
        return []
    if max_chunks < 1:
        raise ValueError(f"max_chunks must be >= 1, got {max_chunks}")
    width = [round_up(int(x), multiple) for x in sorted_lengths]
    if any(width[i] < width[i + 1] for i in range(n - 1)):
        raise ValueError("plan_chunks needs the lengths sorted in descending order")
    # starts worth cutting at: where the padded width drops
    starts = [0] + [i for i in range(1, n) if width[i] < width[i - 1]]
    k_max = min(max_chunks, len(starts))
    inf = float("inf")
    # best[k][j]: least tokens covering rows starts[j]..n-1 with k pieces, first piece beginning at starts[j]
    m = len(starts)
    best = [[inf] * (m + 1) for _ in range(k_max + 1)]
    nxt: list[list[int | None]] = [[None] * (m + 1) for _ in range(k_max + 1)]
    for j in range(m):
        best[1][j] = (n - starts[j]) * width[starts[j]]
    for k in range(2, k_max + 1):
        for j in range(m):
            for q in range(j + 1, m):
                cost = (starts[q] - starts[j]) * width[starts[j]] + best[k - 1][q]
                if cost < best[k][j]:
                    best[k][j], nxt[k][j] = cost, q
    k = min(range(1, k_max + 1), key=lambda kk: (best[kk][0], kk))
    bounds, j = [], 0
    while True:
        q = nxt[k][j] if k > 1 else None
        stop = starts[q] if q is not None else n
        bounds.append((starts[j], stop))
        if q is None:
            return bounds
        j, k = q, k - 1
