"""A small random-weight CLIP text encoder that needs no download, for offline runs and tests.

Its tokenizer knows the words of the course's prompts and captions, and its embeddings tell prompts
apart, so conditioning on them still works; but it has none of CLIP's knowledge of meaning.
"""
from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import torch

WORDS = ["a", "an", "lighthouse", "on", "cliff", "at", "sunset", "oil", "painting", "red", "bicycle", "photo", "of",
         "the", "digit", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "airplane",
         "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck", "car", "driving", "fast",
         "furry", "sitting", "fluffy", "running", "flying", "number", "handwritten", "1", "3", ","]


@contextlib.contextmanager
def quiet_progress():
    """No progress bars from transformers, diffusers or the hub client while a stand-in is saved and loaded: they
    would be the only output of a notebook cell that has one line to say."""
    switches = []
    for module in ("transformers.utils.logging", "diffusers.utils.logging"):
        with contextlib.suppress(ImportError):
            logging = __import__(module, fromlist=["disable_progress_bar"])
            if logging.is_progress_bar_enabled():
                logging.disable_progress_bar()
                switches.append(logging.enable_progress_bar)
    with contextlib.suppress(ImportError):
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
        if not are_progress_bars_disabled():
            disable_progress_bars()
            switches.append(enable_progress_bars)
    try:
        yield
    finally:
        for switch_on in switches:
            switch_on()


def write_tokenizer_files(folder: Path) -> None:
    """vocab.json + merges.txt in CLIP's byte-level BPE format (one whole-word token per word)."""
    letters = sorted({c for word in WORDS for c in word})
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in letters + [c + "</w>" for c in letters]:
        vocab.setdefault(token, len(vocab))
    merges = []
    for word in WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            vocab.setdefault(pieces[0], len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")


def tiny_clip(folder: Path, hidden_size: int = 32):
    """(tokenizer, text model): a 2-layer CLIP text tower over the small vocabulary, seeded."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    write_tokenizer_files(folder)
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=hidden_size,
                                                intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
                                                num_hidden_layers=2, max_position_embeddings=77,
                                                vocab_size=max(tokenizer.get_vocab().values()) + 1))
    torch.random.set_rng_state(generator_state)
    return tokenizer, text_encoder


def build_tiny_clip(folder: Path, hidden_size: int = 32) -> Path:
    """Save the tiny CLIP (tokenizer + model) to `folder`, loadable with from_pretrained(folder)."""
    folder = Path(folder)
    tokenizer, text_encoder = tiny_clip(folder / "_tokenizer_source", hidden_size)
    tokenizer.save_pretrained(folder)
    text_encoder.save_pretrained(folder)
    return folder


def offline_text_encoder(device=None):
    """A CLIPTextEncoder over the tiny CLIP, built in a temporary folder and loaded the usual way."""
    from .text_encoder import CLIPTextEncoder

    with tempfile.TemporaryDirectory(prefix="offline-clip-") as folder, quiet_progress():
        encoder = CLIPTextEncoder(str(build_tiny_clip(Path(folder) / "clip")), device=device)
    encoder.is_stand_in = True
    return encoder
