"""A frozen CLIP text encoder: prompts -> token embeddings (for cross-attention) and a pooled vector."""
from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

import torch
from torch import nn

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class TextEncoderUnavailable(RuntimeError):
    """CLIP could not be loaded; the message says how to get it, `reason` in a few words why not."""

    reason = "unknown"


def hub_unreachable(seconds: float = 5.0) -> str | None:
    """Why the Hugging Face hub cannot be asked, found within `seconds`; None when it answers. Without this,
    a machine with no network spends minutes in the hub client's retries before giving up."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    answer: list[str | None] = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=seconds).close()
            answer.append(None)
        except OSError as error:
            answer.append(f"{host} cannot be reached ({type(error).__name__})")

    thread = threading.Thread(target=probe, daemon=True)   # a name lookup can hang past any socket timeout
    thread.start()
    thread.join(seconds)
    return answer[0] if answer else f"{host} did not answer within {seconds:g} s"


def _load(model_name: str, **options):
    from transformers import CLIPTextModel, CLIPTokenizer

    return CLIPTokenizer.from_pretrained(model_name, **options), CLIPTextModel.from_pretrained(model_name, **options)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def make_cifar10_captions(labels) -> list[str]:
    """CIFAR-10 labels -> "a photo of an airplane", "a photo of a cat", ..."""
    return [f"a photo of {_article(CIFAR10_CLASSES[int(y)])} {CIFAR10_CLASSES[int(y)]}" for y in labels]


def make_digit_captions(labels) -> list[str]:
    """Digit labels -> "a photo of the digit seven", ..."""
    return [f"a photo of the digit {DIGIT_NAMES[int(y)]}" for y in labels]


class CLIPTextEncoder(nn.Module):
    """CLIP's text tower, frozen. Loads from the hub, the local cache or a local folder."""

    is_stand_in = False   # True for offline_clip's random-weight encoder: no sense of meaning

    def __init__(self, model_name: str = "openai/clip-vit-base-patch32", device=None):
        super().__init__()
        try:   # a local folder or the local cache first: nothing to wait for
            self.tokenizer, self.model = _load(model_name, local_files_only=True)
        except Exception as error:
            reason = type(error).__name__ if os.path.isdir(model_name) else hub_unreachable()
            if reason is None:   # the hub answers: download it (once; the cache keeps it)
                try:
                    self.tokenizer, self.model = _load(model_name)
                except Exception as failure:
                    reason = type(failure).__name__
            if reason is not None:
                problem = TextEncoderUnavailable(
                    f"could not load the CLIP text encoder {model_name!r} ({reason}). It is downloaded from the "
                    "Hugging Face hub on first use (for ViT-B/32 the whole CLIP checkpoint, about 600 MB): connect "
                    "to the internet once, or download it elsewhere (huggingface-cli download "
                    "openai/clip-vit-base-patch32) and pass that folder as model_name (the notebook reads it from "
                    "the CLIP_MODEL environment variable).")
                problem.reason = reason
                raise problem from None
        self.model.eval().requires_grad_(False)
        self.model_name = model_name
        self.embed_dim = self.model.config.hidden_size
        self.max_length = min(self.tokenizer.model_max_length, self.model.config.max_position_embeddings)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.to(self.device)

    def to(self, *args, **kwargs):
        module = super().to(*args, **kwargs)
        self.device = next(self.model.parameters()).device
        return module

    def _tokenize(self, prompts: list[str]):
        tokens = self.tokenizer(list(prompts), padding="max_length", max_length=self.max_length, truncation=True,
                                return_tensors="pt")
        return tokens.input_ids.to(self.device), tokens.attention_mask.to(self.device)

    @torch.no_grad()
    def encode(self, prompts, return_pooled: bool = False):
        """Token embeddings (B, max_length, embed_dim), and the pooled (end-of-text) vectors (B, embed_dim)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        input_ids, attention_mask = self._tokenize(prompts)
        output = self.model(input_ids=input_ids, attention_mask=attention_mask)
        if return_pooled:
            return output.last_hidden_state, output.pooler_output
        return output.last_hidden_state

    @torch.no_grad()
    def forward(self, prompts):
        """(embeddings, mask) for one prompt or a list: mask is True on real tokens, False on padding."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        input_ids, attention_mask = self._tokenize(prompts)
        output = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return output.last_hidden_state, attention_mask.bool()


def trim_padding(context, mask):
    """Drop the padding columns after the longest real prompt of the batch. Masked tokens get zero
    attention, so outputs are unchanged while cross-attention works on ~10 tokens instead of 77."""
    length = int(mask.any(dim=0).nonzero().max()) + 1 if mask.any() else 1
    return context[:, :length], mask[:, :length]
