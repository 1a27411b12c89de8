"""Our own sampling loop for the transformers backend: one CUDA graph replayed per token.

``model.generate`` spends most of a GPU step outside the model's math: its Python loop,
logits processors, stopping criteria that copy to the host at every step, and the launch of
every kernel of every layer. This loop

* prefills the left-padded batch (each prompt repeated ``samples`` times) into a
  transformers ``StaticCache``, whose buffers keep their addresses;
* captures one decode step -- the forward pass of one token for every row, temperature,
  nucleus (top-p) filtering and sampling, all on the device, writing into preallocated
  buffers -- once into a CUDA graph, and replays it for every later token;
* looks for end-of-text and stop sequences on the host only every ``check_every`` steps,
  on a copy made without waiting, one chunk behind the device, and stops once every row
  has finished. Finished rows keep computing (cheaply); their later tokens are discarded.

Without CUDA (tests, CPU) the same step runs eagerly, so the CPU tests check the code that
the graph records. The sampling is the one of the ``generate`` path: temperature, then the
smallest set of most likely tokens whose mass reaches ``top_p`` (over the whole vocabulary,
no top-k), then one draw from the renormalised distribution -- here an exponential race,
``argmax(p / E)`` with ``E ~ Exp(1)``, which picks token ``i`` with probability ``p_i`` and
needs nothing but elementwise kernels and an argmax, seeded by a ``torch.Generator``.

Attention: while this loop runs, the model's attention implementation is swapped for
:func:`grouped_query_attention`, which takes our own boolean 4D masks and, for one query
token, folds the query heads that share a key/value head into the query length instead of
copying the keys and values once per head (transformers' SDPA path copies them as soon as
a mask is given; for StarCoder's multi-query attention that is 16 copies of the cache per
layer and step).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

ATTENTION_NAME = "multiplt_graph_decoding"
SUPPORTED_ATTENTION = ("sdpa", "eager", ATTENTION_NAME)


# --- sampling, graph-safe: fixed shapes, no host synchronisation ------------------------------


def nucleus_sorted(scores: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's scores sorted (most likely first) with the tokens outside the nucleus set
    to -inf, and the token ids in that order.

    The kept set is :class:`~multiplt.generation.nucleus.NucleusFilter`'s (and vLLM's and
    transformers'): token ``i`` stays when the mass of the tokens before it is below
    ``top_p``; the most likely token always stays. A full sort, not NucleusFilter's growing
    top-k: the number of candidates must not depend on the data inside a CUDA graph.
    """
    sorted_scores, tokens = torch.sort(scores, dim=-1, descending=True)
    probs = torch.softmax(sorted_scores, dim=-1)
    before = probs.cumsum(dim=-1) - probs
    keep = before < top_p
    keep[:, 0] = True
    return sorted_scores.masked_fill(~keep, float("-inf")), tokens


def nucleus_bisect(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Which tokens are in each row's nucleus (the same set as :func:`nucleus_sorted`),
    found without sorting: ``probs`` ([rows, vocabulary], float32) is searched for the
    threshold by bisection over the bit patterns of its values (which non-negative floats
    order as they do the values), 32 fixed passes: exact, and graph-safe wherever a sort
    is not.

    Token ``i`` stays when the mass of the strictly more likely tokens is below ``top_p``:
    that mass shrinks as ``p_i`` grows, so the kept tokens are those whose bits reach the
    smallest bit pattern ``b`` with ``mass(bits > b) < top_p``.
    """
    bits = probs.view(torch.int32).long()
    low = torch.full((probs.shape[0], 1), -1, dtype=torch.long, device=probs.device)
    high = bits.max(dim=-1, keepdim=True).values  # nothing above the maximum: below top_p
    for _ in range(32):
        middle = (low + high) // 2
        above = torch.where(bits > middle, probs, 0.0).sum(dim=-1, keepdim=True)
        inside = above < top_p
        high = torch.where(inside, middle, high)
        low = torch.where(inside, low, middle)
    return bits >= high


NUCLEUS_METHODS = ("fused", "sort", "bisect")


def default_nucleus(device: torch.device) -> str:
    """ "fused" (Triton kernels, :mod:`~multiplt.generation.nucleus_kernels`) on CUDA where
    Triton is installed, else "sort"."""
    if device.type == "cuda" and importlib.util.find_spec("triton") is not None:
        return "fused"
    return "sort"


def sample_tokens(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    nucleus: str = "sort",
) -> torch.Tensor:
    """One token per row of ``logits`` ([rows, vocabulary]); greedy when temperature is 0.
    ``nucleus``: how the top-p set is found, :func:`nucleus_sorted`, :func:`nucleus_bisect`
    or the Triton kernels of :func:`~multiplt.generation.nucleus_kernels.fused_nucleus_sample`
    (same set)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    if nucleus == "fused":
        from multiplt.generation.nucleus_kernels import fused_nucleus_sample

        return fused_nucleus_sample(logits, exponential_race(logits, generator), temperature, top_p)
    tokens = None
    if top_p < 1.0 and nucleus == "sort":
        # Sorted in the model's own dtype (bf16 keys: half the radix passes of float32);
        # dividing by the temperature keeps the order.
        logits, tokens = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0 and nucleus == "sort":
        before = probs.cumsum(dim=-1) - probs
        keep = before < top_p
        keep[:, 0] = True
        probs = probs.masked_fill(~keep, 0.0)
    elif top_p < 1.0:
        probs = probs.masked_fill(~nucleus_bisect(probs, top_p), 0.0)
    choice = (probs / exponential_race(probs, generator)).argmax(dim=-1)
    if tokens is None:
        return choice
    return tokens.gather(1, choice.unsqueeze(1)).squeeze(1)


def exponential_race(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Independent Exp(1) draws (float32) shaped like ``logits``, none of them zero (a zero
    would make 0 / 0 for a token outside the nucleus)."""
    race = torch.empty(logits.shape, dtype=torch.float32, device=logits.device)
    race.exponential_(generator=generator)
    return race.clamp_min_(torch.finfo(race.dtype).tiny)


# --- attention ------------------------------------------------------------------------------


def grouped_query_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Scaled dot-product attention for our boolean masks ([batch, 1, queries, keys]).

    ``query`` is [batch, heads, queries, dim], ``key``/``value`` [batch, kv_heads, keys,
    dim]; returns [batch, queries, heads, dim] as transformers' attention functions do.
    Heads ``h`` share key/value head ``h // (heads // kv_heads)`` (transformers'
    ``repeat_kv`` order).
    """
    batch, heads, queries, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    if queries == 1 and group > 1:
        # The heads of a group become the query positions of one kv head: same result,
        # and the cache is read once instead of copied ``group`` times.
        folded = query.reshape(batch, kv_heads, group, dim)
        output = torch.nn.functional.scaled_dot_product_attention(
            folded, key, value, attn_mask=attention_mask, scale=scaling
        )
        return output.reshape(batch, heads, 1, dim).transpose(1, 2), None
    if group > 1:
        key = key.repeat_interleave(group, dim=1)
        value = value.repeat_interleave(group, dim=1)
    output = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, scale=scaling
    )
    return output.transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, grouped_query_attention)


@contextmanager
def our_attention(model: PreTrainedModel) -> Iterator[None]:
    """The model's attention swapped for :func:`grouped_query_attention` meanwhile."""
    _register_attention()
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = ATTENTION_NAME
    try:
        yield
    finally:
        config._attn_implementation = previous


def unsupported_reason(model: PreTrainedModel) -> str | None:
    """Why this loop cannot drive ``model`` (None: it can)."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder models are not supported"
    if not getattr(model, "_can_compile_fullgraph", False) and not getattr(
        model, "_supports_static_cache", False
    ):
        return f"{type(model).__name__} does not support a static cache"
    implementation = config._attn_implementation
    if implementation not in SUPPORTED_ATTENTION:
        return f"attention implementation {implementation!r} is not supported"
    text = config.get_text_config(decoder=True)
    if (
        getattr(text, "sliding_window", None)
        or getattr(text, "layer_types", None)
        and any(kind != "full_attention" for kind in text.layer_types)
    ):
        return "sliding-window attention is not supported"
    return None


# --- stopping -------------------------------------------------------------------------------


class StopScanner:
    """Finds, on the host, where each row's completion ends: its first end-of-text token
    (kept, as ``generate`` keeps it) or the token that completes a stop sequence.

    A stop sequence counts where ``generate`` with
    :class:`~multiplt.generation.transformers_backend.StopOnSequences` would see it: in the
    decoded last ``window`` tokens, ``window`` being the longest stop sequence's bytes + 1.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        rows: int,
        eos_token_ids: Sequence[int] = (),
        stop: Sequence[str] = (),
    ) -> None:
        self.tokenizer = tokenizer
        self.eos_token_ids = tuple(eos_token_ids)
        self.stop = tuple(stop)
        self.window = max((len(s.encode("utf-8")) for s in self.stop), default=0) + 1
        self.lengths: list[int | None] = [None] * rows

    @property
    def done(self) -> bool:
        return all(length is not None for length in self.lengths)

    @property
    def active(self) -> bool:
        return bool(self.eos_token_ids or self.stop)

    def scan(self, tokens: torch.Tensor, start: int, end: int) -> None:
        """Look at the tokens ``start:end`` of each unfinished row (``tokens`` on the host
        holds at least the first ``end`` tokens of every row)."""
        from multiplt.generation.transformers_backend import decode

        candidates: list[tuple[int, int]] = []  # (row, last token index to consider + 1)
        chunk = tokens[:, start:end]
        for row, length in enumerate(self.lengths):
            if length is not None:
                continue
            limit = end
            if self.eos_token_ids:
                hits = torch.isin(chunk[row], torch.tensor(self.eos_token_ids)).nonzero()
                if len(hits):
                    limit = start + int(hits[0]) + 1
                    self.lengths[row] = limit
            if self.stop:
                candidates.append((row, limit))
        if not candidates:
            return
        tails = [
            tokens[row, max(0, start - self.window) : limit].tolist() for row, limit in candidates
        ]
        texts = decode(self.tokenizer, tails)
        for (row, limit), text in zip(candidates, texts, strict=True):
            if any(sequence in text for sequence in self.stop):
                self.lengths[row] = self._first_stop(tokens[row].tolist(), start, limit)

    def _first_stop(self, row: list[int], start: int, limit: int) -> int:
        """The smallest ``end`` in (start, limit] whose last ``window`` tokens hold a stop."""
        from multiplt.generation.transformers_backend import decode

        ends = range(start + 1, limit + 1)
        texts = decode(self.tokenizer, [row[max(0, e - self.window) : e] for e in ends])
        for end, text in zip(ends, texts, strict=True):
            if any(sequence in text for sequence in self.stop):
                return end
        return limit  # the straddling text of the check; generate would have seen it here


# --- the loop -------------------------------------------------------------------------------


@dataclass
class Decoded:
    """Generated tokens per row ([rows, steps] on the host; each row's tokens after its
    ``lengths`` are to be ignored), and how the loop ran."""

    tokens: torch.Tensor
    lengths: list[int]
    steps: int
    graph: bool
    graph_error: str | None = None


@dataclass
class GraphDecoder:
    """Runs the loop for one batch at a time; ``use_graphs`` None: on CUDA devices."""

    model: PreTrainedModel
    check_every: int = 32
    use_graphs: bool | None = None
    warmup_steps: int = 2
    # How the top-p set is found: "fused", "sort", "bisect" or "auto" (default_nucleus);
    # where a graph with one cannot be captured, the others are tried, then eager decoding.
    nucleus: str = "auto"
    # torch.compile the model for the decoding steps (Inductor fuses the norms and
    # element-wise ops, inside our graph): about a sixth off a 1B model's step on a GPU,
    # for a compilation of 15 s or so (and another at the first change of shape). Where
    # it fails, decoding goes on without it (compile_error says why).
    compile: bool = False
    last_graph_error: str | None = field(default=None, init=False)
    last_nucleus: str | None = field(default=None, init=False)
    compile_error: str | None = field(default=None, init=False)  # why compile was dropped

    def __post_init__(self) -> None:
        if self.nucleus not in ("auto", *NUCLEUS_METHODS):
            raise ValueError(
                f"nucleus must be auto or one of {NUCLEUS_METHODS}, got {self.nucleus!r}"
            )
        self._compiled: Any = None

    def decode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        samples: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None,
        scanner: StopScanner | None = None,
    ) -> Decoded:
        arguments = (
            input_ids, attention_mask, samples, max_new_tokens, temperature, top_p, generator,
            scanner,
        )  # fmt: skip
        with torch.inference_mode(), our_attention(self.model):
            if not self.compile:
                return self._decode(*arguments)
            try:
                return self._decode(*arguments)
            except torch._dynamo.exc.TorchDynamoException as error:  # compiling failed
                # Decoding is the same without it, only slower: say so and go on. Any other
                # error (bad input, out of memory) is the caller's, compiled or not.
                self.compile_error = f"{type(error).__name__}: {error}".splitlines()[0][:200]
                logger.warning("torch.compile failed, decoding without it: %s", self.compile_error)
                self.compile, self._compiled = False, None
                return self._decode(*arguments)

    def _decode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        samples: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None,
        scanner: StopScanner | None,
    ) -> Decoded:
        from transformers import StaticCache

        model = self.model
        device = input_ids.device
        prompts, prompt_length = input_ids.shape
        rows = prompts * samples
        prompt_padding = prompt_length - attention_mask.sum(dim=1)  # left padding
        positions = torch.arange(prompt_length, device=device)
        if not bool((attention_mask.bool() == (positions >= prompt_padding[:, None])).all()):
            raise ValueError("the prompts must be padded on the left")
        padding = prompt_padding.repeat_interleave(samples)  # each row's
        cache_length = prompt_length + max_new_tokens
        cache_keyword = _cache_keyword(model)
        keys = torch.arange(cache_length, device=device)
        valid = keys >= padding[:, None]  # [rows, cache_length]: not left padding

        # Prefill, each prompt once; its keys and values are then copied to its samples' rows.
        # A padding position attends to itself only, so that no row of the mask is empty
        # (which gives NaN that would then reach the cache).
        prompt_cache = StaticCache(config=model.config, max_cache_len=cache_length)
        prompt_valid = keys >= prompt_padding[:, None]
        causal = keys[None, :] <= positions[:, None]  # [prompt, cache]
        mask = causal & (prompt_valid[:, None, :] | (keys[None, :] == positions[:, None]))
        output = model(
            input_ids=input_ids,
            attention_mask=mask[:, None],
            position_ids=(positions - prompt_padding[:, None]).clamp_min(0),
            use_cache=True,
            logits_to_keep=1,
            **{cache_keyword: prompt_cache},
        )
        logits = output.logits[:, -1].repeat_interleave(samples, dim=0)
        del output
        cache = _expanded_cache(prompt_cache, samples, model.config, cache_length)
        del prompt_cache
        generated = torch.empty(rows, max_new_tokens, dtype=torch.long, device=device)
        nucleus = default_nucleus(device) if self.nucleus == "auto" else self.nucleus
        token = sample_tokens(logits, temperature, top_p, generator, nucleus)
        generated[:, 0] = token
        del logits

        # Static state of one decode step.
        token = token.unsqueeze(1).clone()
        cache_position = torch.full((), prompt_length, dtype=torch.long, device=device)
        index = torch.ones((), dtype=torch.long, device=device)
        step_model = self._step_model()

        def step(nucleus: str) -> None:
            attend = (valid & (keys <= cache_position))[:, None, None, :]
            logits = step_model(
                input_ids=token,
                attention_mask=attend,
                position_ids=(cache_position - padding)[:, None],
                use_cache=True,
                **{cache_keyword: cache},
            ).logits[:, -1]
            new = sample_tokens(logits, temperature, top_p, generator, nucleus)
            token.copy_(new[:, None])
            generated.index_copy_(1, index.view(1), new[:, None])
            cache_position.add_(1)
            index.add_(1)

        run, graph_error, done = self._runner(step, nucleus, generator, max_new_tokens, device)
        host = torch.empty(
            (rows, max_new_tokens), dtype=torch.long, pin_memory=device.type == "cuda"
        )
        # Each pass copies what the device has produced so far to the host (without
        # waiting), launches the next chunk of steps, then scans the previous copy: the
        # host looks one chunk behind while the device keeps busy.
        steps = 1 + done  # tokens produced (or queued) so far
        copied = 0
        pending: tuple[int, int, Any] | None = None
        while True:
            chunk = None
            if copied < steps:
                host[:, copied:steps].copy_(generated[:, copied:steps], non_blocking=True)
                chunk = (copied, steps, _record(device))
                copied = steps
            if steps < max_new_tokens:
                end = min(steps + self.check_every, max_new_tokens)
                for _ in range(steps, end):
                    run()
                steps = end
            if pending is not None:
                start, stop, event = pending
                _wait(event)
                if scanner is not None and scanner.active:
                    scanner.scan(host, start, stop)
                    if scanner.done:
                        break
            pending = chunk
            if pending is None and copied == steps:
                break
        _wait(_record(device))
        lengths = [copied] * rows
        if scanner is not None:
            lengths = [copied if n is None else n for n in scanner.lengths]
        return Decoded(
            host[:, :copied].clone(), lengths, steps, graph_error is None and done > 0, graph_error
        )

    def _step_model(self) -> Callable[..., Any]:
        if not self.compile:
            return self.model
        if self._compiled is None:
            self._compiled = torch.compile(self.model)
        return self._compiled  # type: ignore[no-any-return]

    def _runner(
        self,
        step: Callable[[str], None],
        nucleus: str,
        generator: torch.Generator | None,
        max_new_tokens: int,
        device: torch.device,
    ) -> tuple[Callable[[], None], str | None, int]:
        """What runs one step: a CUDA graph's replay, or ``step`` itself; why there is no
        graph; and how many steps were run here (the warm-up before capturing decodes)."""
        use_graphs = device.type == "cuda" if self.use_graphs is None else self.use_graphs
        self.last_graph_error = None
        self.last_nucleus = nucleus
        warmup = min(self.warmup_steps, max_new_tokens - 1)
        eager = functools.partial(step, nucleus)
        if not use_graphs or device.type != "cuda" or max_new_tokens - 1 <= warmup:
            return eager, None, 0
        side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                eager()
        torch.cuda.current_stream(device).wait_stream(side)
        errors = []
        methods = [nucleus] + [m for m in NUCLEUS_METHODS if m != nucleus]
        for method in methods:
            try:
                graph = torch.cuda.CUDAGraph()
                if generator is not None:
                    graph.register_generator_state(generator)
                with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                    step(method)
            except Exception as error:  # noqa: BLE001 - any capture failure: next way
                message = f"{type(error).__name__}: {error}".splitlines()[0][:200]
                logger.warning("CUDA graph capture (%s nucleus) failed: %s", method, message)
                errors.append(f"{method}: {message}")
                torch.cuda.synchronize(device)
                continue
            self.last_nucleus = method
            self.last_graph_error = "; ".join(errors) or None
            return graph.replay, None, warmup
        self.last_graph_error = "; ".join(errors)
        return eager, self.last_graph_error, warmup


def _expanded_cache(prompt_cache: Any, samples: int, config: Any, cache_length: int) -> Any:
    """A static cache with each row of ``prompt_cache`` repeated ``samples`` times."""
    from transformers import StaticCache

    if samples == 1:
        return prompt_cache
    cache = StaticCache(config=config, max_cache_len=cache_length)
    if len(cache.layers) != len(prompt_cache.layers):
        raise ValueError("a static cache of unexpected structure")
    # Static layers of attention models only (checked above by structure); typed loosely
    # because transformers' cache layers are a union with linear-attention and dummy layers.
    layers: list[Any] = list(cache.layers)
    prompt_layers: list[Any] = list(prompt_cache.layers)
    for layer, prompt_layer in zip(layers, prompt_layers, strict=True):
        keys = prompt_layer.keys.repeat_interleave(samples, dim=0)
        values = prompt_layer.values.repeat_interleave(samples, dim=0)
        layer.lazy_initialization(keys, values)  # allocates the buffers (static addresses)
        layer.keys.copy_(keys)
        layer.values.copy_(values)
        layer.cumulative_length.copy_(prompt_layer.cumulative_length)
    return cache


def _cache_keyword(model: PreTrainedModel) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` in 5.2x."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _record(device: torch.device) -> Any:
    if device.type != "cuda":
        return None
    event = torch.cuda.Event()  # type: ignore[no-untyped-call]
    event.record(torch.cuda.current_stream(device))
    return event


def _wait(event: Any) -> None:
    if event is not None:
        event.synchronize()
