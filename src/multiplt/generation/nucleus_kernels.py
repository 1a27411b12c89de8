"""Exact top-p sampling in a few Triton kernels, for the CUDA-graph decoder.

Sorting every row's vocabulary to find its nucleus costs a fifth of a decoding step of a
1B model at 200 rows (0.8 ms on an H200). This finds the same set without sorting, in a
fixed number of passes over the logits (which stay in L2):

1. per row, the maximum and the sum of ``e_i = 2^(x_i - max)`` with
   ``x = logits * log2(e) / temperature`` (an online softmax): ``p_i = e_i / Z``;
2. the nucleus threshold, by a ``ways``-ary search over the logits' order keys (the bit
   pattern of a float, turned so that integers order as the floats do: 2^16 keys for
   bf16 and fp16 logits, 2^32 for fp32). Token ``i`` stays when the mass of the strictly
   more likely tokens is below ``top_p * Z``, that is when its key reaches the smallest
   key ``k`` with ``mass(logits > value(k)) < top_p * Z``. Each pass measures the mass
   above ``ways`` evenly spaced pivots of the remaining interval and keeps the sub-interval
   that holds ``k``: eight passes of 4 ways for bf16 and fp16 logits, sixteen for fp32;
3. one draw: the kept token with the largest ``e_i / r_i``, where ``r_i ~ Exp(1)`` are
   drawn by the caller (a seeded ``torch.Generator``): token ``i`` wins with probability
   ``p_i`` over the kept mass.

Ties at the threshold are all kept (a sort would keep them in its arbitrary order). Each
row is cut into ``splits`` slices so that the whole GPU works on every pass; every program
of a row reads all slices' partial masses of the previous pass and refines the interval
itself, so one launch per pass suffices and nothing returns to the host: the whole
sampler can be captured in a CUDA graph. With ``TRITON_INTERPRET=1`` the kernels run on
CPU tensors (how the tests check them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl


@dataclass(frozen=True)
class Launch:
    """How the kernels are launched (benchmarks/bench_nucleus.py compares settings)."""

    ways: int = 4  # pivots per search pass (a power of two; 4 was fastest on an H200)
    block: int = 512  # logits per chunk of one program
    target_splits: int = 16  # slices per row (fewer for small vocabularies)
    num_warps: int = 4

    def __post_init__(self) -> None:
        for name, least in (("ways", 2), ("block", 2), ("num_warps", 1)):
            value = getattr(self, name)
            if value < least or value & (value - 1):
                raise ValueError(f"Launch.{name} must be a power of two, got {value}")
        if self.target_splits < 1:
            raise ValueError(f"Launch.target_splits must be positive, got {self.target_splits}")


DEFAULT_LAUNCH = Launch()
# How the kernels read each logits dtype: its code and the width of its order keys.
DTYPES = {torch.bfloat16: (0, 16), torch.float16: (1, 16), torch.float32: (2, 32)}


def order_key(value: float, dtype: torch.dtype) -> int:
    """The integer that orders as ``value`` (of ``dtype``) does among floats: the bit
    pattern with the sign bit set for non-negative values, all bits flipped for negative
    ones."""
    width = DTYPES[dtype][1]
    integer = {16: torch.int16, 32: torch.int32}[width]
    bits = int(torch.tensor(value, dtype=dtype).view(integer)) % (1 << width)
    sign = 1 << (width - 1)
    return (~bits % (1 << width)) if bits & sign else bits | sign


def search_interval(dtype: torch.dtype) -> tuple[int, int]:
    """The interval (low, high] of keys where the search starts: ``low`` below -inf (the
    mass above it is everything), ``high`` at +inf (nothing lies above it)."""
    return order_key(-math.inf, dtype) - 1, order_key(math.inf, dtype)


def passes_needed(dtype: torch.dtype, ways: int = DEFAULT_LAUNCH.ways) -> int:
    """Search passes that shrink the starting interval to a single key."""
    low, high = search_interval(dtype)
    width, passes = high - low, 0
    while width > 1:
        width, passes = math.ceil(width / ways), passes + 1
    return passes


@triton.jit
def _slice_bounds(row, split, row_stride, vocab, per_split):
    start = split * per_split
    end = tl.minimum(start + per_split, vocab)
    return row * row_stride + start, end - start


@triton.jit
def _weights(x, scale, row_max):
    """``e = 2^(x * scale - max)``: one helper, so that every kernel gets the same bits."""
    return tl.exp2(x * scale - row_max)


@triton.jit
def _key_value(keys, start_low, KIND: tl.constexpr):
    """The logit (as float32) of each order key (int64, from ``start_low``, the key just
    below that of -inf, which gives -inf, up to that of +inf). Comparing floats is exact,
    and cheaper than turning every logit into its key."""
    width: tl.constexpr = 32 if KIND == 2 else 16
    sign: tl.constexpr = 1 << (width - 1)
    everything: tl.constexpr = (1 << width) - 1
    bits = tl.where(keys >= sign, keys - sign, everything - keys)
    if KIND == 0:  # bf16: the upper half of a float32
        value = (bits << 16).to(tl.int32).to(tl.float32, bitcast=True)
    elif KIND == 1:
        value = bits.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
    else:
        value = bits.to(tl.int32).to(tl.float32, bitcast=True)
    return tl.where(keys > start_low, value, float("-inf"))


@triton.jit
def _row_stats(stats_ptr, row, SPLITS: tl.constexpr, SPLITS_P2: tl.constexpr):
    """Maximum and softmax sum of the whole row, from every slice's partial pair."""
    s = tl.arange(0, SPLITS_P2)
    inside = s < SPLITS
    maxima = tl.load(stats_ptr + (row * SPLITS + s) * 2, mask=inside, other=float("-inf"))
    sums = tl.load(stats_ptr + (row * SPLITS + s) * 2 + 1, mask=inside, other=0.0)
    row_max = tl.max(maxima, axis=0)
    return row_max, tl.sum(sums * tl.exp2(maxima - row_max), axis=0)


@triton.jit
def _refine(bounds_ptr, masses_ptr, row, threshold, SPLITS, SPLITS_P2, WAYS):
    """The sub-interval of the previous pass's interval (low, high] that holds the
    threshold, from the masses above that pass's pivots (summed over slices)."""
    low = tl.load(bounds_ptr + row * 2)
    high = tl.load(bounds_ptr + row * 2 + 1)
    s = tl.arange(0, SPLITS_P2)
    j = tl.arange(0, WAYS)
    offsets = (row * SPLITS + s[:, None]) * WAYS + j[None, :]
    masses = tl.sum(tl.load(masses_ptr + offsets, mask=s[:, None] < SPLITS, other=0.0), 0)
    # Pivot j + 1 splits off mass masses[j]; the last pivot is `high`, which always does.
    first = tl.min(tl.where(masses < threshold, j + 1, WAYS), axis=0)
    width = high - low
    return low + width * (first - 1) // WAYS, low + width * first // WAYS


@triton.jit
def _stats_kernel(
    logits_ptr,
    stats_ptr,
    row_stride,
    vocab,
    scale,
    SPLITS: tl.constexpr,
    PER_SPLIT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    split = tl.program_id(1)
    base, length = _slice_bounds(row, split, row_stride, vocab, PER_SPLIT)
    offsets = tl.arange(0, BLOCK)
    running_max = tl.full((), float("-inf"), tl.float32)
    running_sum = tl.zeros((), tl.float32)
    for start in range(0, PER_SPLIT, BLOCK):  # the last slice may be shorter: masked
        inside = start + offsets < length
        x = tl.load(logits_ptr + base + start + offsets, mask=inside, other=float("-inf"))
        x = x.to(tl.float32) * scale
        new_max = tl.maximum(running_max, tl.max(x, axis=0))
        shift = tl.where(new_max > float("-inf"), new_max, 0.0)  # an all -inf chunk: no NaN
        running_sum = running_sum * tl.exp2(running_max - shift) + tl.sum(tl.exp2(x - shift), 0)
        running_max = new_max
    tl.store(stats_ptr + (row * SPLITS + split) * 2, running_max)
    tl.store(stats_ptr + (row * SPLITS + split) * 2 + 1, running_sum)


@triton.jit
def _search_kernel(
    logits_ptr,
    stats_ptr,
    bounds_in_ptr,
    bounds_out_ptr,
    masses_in_ptr,
    masses_out_ptr,
    row_stride,
    vocab,
    scale,
    top_p,
    KIND: tl.constexpr,
    START_LOW: tl.constexpr,
    START_HIGH: tl.constexpr,
    SPLITS: tl.constexpr,
    SPLITS_P2: tl.constexpr,
    PER_SPLIT: tl.constexpr,
    WAYS: tl.constexpr,
    BLOCK: tl.constexpr,
    FIRST: tl.constexpr,
):
    row = tl.program_id(0)
    split = tl.program_id(1)
    row_max, row_sum = _row_stats(stats_ptr, row, SPLITS, SPLITS_P2)
    if FIRST:
        low = tl.full((), START_LOW, tl.int64)
        high = tl.full((), START_HIGH, tl.int64)
    else:
        low, high = _refine(
            bounds_in_ptr, masses_in_ptr, row, top_p * row_sum, SPLITS, SPLITS_P2, WAYS
        )
    if split == 0:
        tl.store(bounds_out_ptr + row * 2, low)
        tl.store(bounds_out_ptr + row * 2 + 1, high)
    pivots = _key_value(low + (high - low) * (tl.arange(0, WAYS) + 1) // WAYS, START_LOW, KIND)
    base, length = _slice_bounds(row, split, row_stride, vocab, PER_SPLIT)
    offsets = tl.arange(0, BLOCK)
    # Summed across threads once, at the end: a reduction per chunk would cost more than
    # the comparisons themselves.
    masses = tl.zeros((WAYS, BLOCK), tl.float32)
    for start in range(0, PER_SPLIT, BLOCK):  # the last slice may be shorter: masked
        inside = start + offsets < length
        x = tl.load(logits_ptr + base + start + offsets, mask=inside, other=float("-inf"))
        x = x.to(tl.float32)
        e = _weights(x, scale, row_max)
        masses += tl.where(x[None, :] > pivots[:, None], e[None, :], 0.0)
    offsets = (row * SPLITS + split) * WAYS + tl.arange(0, WAYS)
    tl.store(masses_out_ptr + offsets, tl.sum(masses, axis=1))


@triton.jit
def _draw_kernel(
    logits_ptr,
    race_ptr,
    stats_ptr,
    bounds_ptr,
    masses_ptr,
    best_ptr,
    best_index_ptr,
    row_stride,
    race_stride,
    vocab,
    scale,
    top_p,
    KIND: tl.constexpr,
    START_LOW: tl.constexpr,
    SPLITS: tl.constexpr,
    SPLITS_P2: tl.constexpr,
    PER_SPLIT: tl.constexpr,
    WAYS: tl.constexpr,
    BLOCK: tl.constexpr,
    FILTER: tl.constexpr,
):
    row = tl.program_id(0)
    split = tl.program_id(1)
    row_max, row_sum = _row_stats(stats_ptr, row, SPLITS, SPLITS_P2)
    threshold = tl.full((), float("-inf"), tl.float32)  # no top-p: every token stays
    if FILTER:
        low, high = _refine(bounds_ptr, masses_ptr, row, top_p * row_sum, SPLITS, SPLITS_P2, WAYS)
        threshold = _key_value(high, START_LOW, KIND)
    base, length = _slice_bounds(row, split, row_stride, vocab, PER_SPLIT)
    race_base = row * race_stride + split * PER_SPLIT
    offsets = tl.arange(0, BLOCK)
    best = tl.full((), -1.0, tl.float32)
    best_index = tl.zeros((), tl.int64)
    for start in range(0, PER_SPLIT, BLOCK):  # the last slice may be shorter: masked
        inside = start + offsets < length
        x = tl.load(logits_ptr + base + start + offsets, mask=inside, other=float("-inf"))
        race = tl.load(race_ptr + race_base + start + offsets, mask=inside, other=1.0)
        x = x.to(tl.float32)
        e = _weights(x, scale, row_max)
        kept = inside & (x >= threshold)
        score = tl.where(kept, e / race, -1.0)
        chunk_best = tl.max(score, axis=0)
        chunk_index = (tl.argmax(score, axis=0) + start).to(tl.int64)
        best_index = tl.where(chunk_best > best, chunk_index, best_index)
        best = tl.maximum(best, chunk_best)
    tl.store(best_ptr + row * SPLITS + split, best)
    tl.store(best_index_ptr + row * SPLITS + split, best_index + split * PER_SPLIT)


def plan_splits(vocab: int, launch: Launch = DEFAULT_LAUNCH) -> tuple[int, int]:
    """(slices per row, logits per slice): whole chunks per slice, at most
    ``launch.target_splits`` of them."""
    chunks = math.ceil(vocab / launch.block)
    per_split = math.ceil(chunks / min(launch.target_splits, chunks)) * launch.block
    return math.ceil(vocab / per_split), per_split


def fused_nucleus_sample(
    logits: torch.Tensor,
    race: torch.Tensor,
    temperature: float,
    top_p: float,
    launch: Launch = DEFAULT_LAUNCH,
) -> torch.Tensor:
    """One token per row of ``logits`` ([rows, vocabulary], float32, bf16 or fp16): the kept
    token (temperature, then top-p) with the largest ``softmax_i / race_i``. ``race``
    ([rows, vocabulary] float32, positive) holds independent Exp(1) draws."""
    if temperature <= 0:
        raise ValueError("temperature must be positive; greedy decoding needs no sampling")
    if logits.dim() != 2 or race.shape != logits.shape:
        raise ValueError("logits and race must both be [rows, vocabulary]")
    if logits.dtype not in DTYPES:
        logits = logits.float()
    logits = logits.contiguous()
    race = race.contiguous()
    kind = DTYPES[logits.dtype][0]
    start_low, start_high = search_interval(logits.dtype)
    rows, vocab = logits.shape
    splits, per_split = plan_splits(vocab, launch)
    splits_p2 = triton.next_power_of_2(splits)
    scale = math.log2(math.e) / temperature
    grid = (rows, splits)
    device, f32 = logits.device, torch.float32
    stats = torch.empty(rows, splits, 2, device=device, dtype=f32)
    _stats_kernel[grid](
        logits,
        stats,
        logits.stride(0),
        vocab,
        scale,
        SPLITS=splits,
        PER_SPLIT=per_split,
        BLOCK=launch.block,
        num_warps=launch.num_warps,
    )
    filtering = top_p < 1.0
    # Each pass reads one of each pair and writes the other. Separate tensors, not views
    # of one: Triton's interpreter copies every argument's whole storage back.
    bounds = [torch.empty(rows, 2, device=device, dtype=torch.int64) for _ in range(2)]
    masses = [torch.empty(rows, splits, launch.ways, device=device, dtype=f32) for _ in range(2)]
    last = 0
    for search in range(passes_needed(logits.dtype, launch.ways) if filtering else 0):
        last = search % 2
        previous = 1 - last
        _search_kernel[grid](
            logits,
            stats,
            bounds[previous],
            bounds[last],
            masses[previous],
            masses[last],
            logits.stride(0),
            vocab,
            scale,
            top_p,
            KIND=kind,
            START_LOW=start_low,
            START_HIGH=start_high,
            SPLITS=splits,
            SPLITS_P2=splits_p2,
            PER_SPLIT=per_split,
            WAYS=launch.ways,
            BLOCK=launch.block,
            FIRST=search == 0,
            num_warps=launch.num_warps,
        )
    best = torch.empty(rows, splits, device=device, dtype=f32)
    best_index = torch.empty(rows, splits, device=device, dtype=torch.int64)
    _draw_kernel[grid](
        logits,
        race,
        stats,
        bounds[last],
        masses[last],
        best,
        best_index,
        logits.stride(0),
        race.stride(0),
        vocab,
        scale,
        top_p,
        KIND=kind,
        START_LOW=start_low,
        SPLITS=splits,
        SPLITS_P2=splits_p2,
        PER_SPLIT=per_split,
        WAYS=launch.ways,
        BLOCK=launch.block,
        FILTER=filtering,
        num_warps=launch.num_warps,
    )
    choice = best.argmax(dim=1, keepdim=True)
    return best_index.gather(1, choice).squeeze(1)
