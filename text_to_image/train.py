"""Flow-matching training of the text-conditional DiT, with text dropout for classifier-free guidance.

Convention (as cloneofsimo/minRF): x_t = (1 - t) x0 + t x1 with x1 ~ N(0, I), t ~ U(0, 1); the
model predicts the velocity x1 - x0. With probability text_drop_prob a caption is replaced by the
null text, the encoder's embedding of "". Both pieces are the notebook's exercises 2 and 3 (exercises.py).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .exercises import implementation
from .text_encoder import trim_padding


class CaptionEmbeddings:
    """Encodes each distinct caption once: class captions repeat on every batch."""

    def __init__(self, text_encoder, device):
        self.text_encoder, self.device = text_encoder, device
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, captions: list[str]):
        missing = sorted({c for c in captions if c not in self._cache})
        if missing:
            embeddings, masks = self.text_encoder(missing)
            for caption, embedding, mask in zip(missing, embeddings, masks):
                self._cache[caption] = (embedding.to(self.device), mask.to(self.device))
        pairs = [self._cache[c] for c in captions]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


class TextConditionalTrainer:
    def __init__(self, model, text_encoder, dataloader, caption_fn, lr=1e-4, weight_decay=0.01,
                 text_drop_prob=0.1, device=None, seed=0):
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device)
        self.text_encoder = text_encoder
        self.dataloader = dataloader
        self.caption_fn = caption_fn
        self.text_drop_prob = text_drop_prob
        self.embed = CaptionEmbeddings(text_encoder, self.device)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.generator = torch.Generator().manual_seed(seed)   # on the CPU, whatever the device
        self.losses: list[float] = []

    def _drop_text(self, context, mask):
        """Replace each sample's text by the null text with probability text_drop_prob (Exercise 3)."""
        null_context, null_mask = self.embed([""])
        return implementation("drop_text")(context, mask, null_context, null_mask, self.text_drop_prob,
                                           self.generator)

    def train_step(self, images, labels) -> float:
        x0 = images.to(self.device)
        context, mask = trim_padding(*self._drop_text(*self.embed(self.caption_fn(labels))))
        noise = torch.randn(x0.shape, generator=self.generator).to(self.device)
        t = torch.rand(x0.shape[0], generator=self.generator).to(self.device)
        x_t, target = implementation("flow_matching_pair")(x0, noise, t)
        loss = F.mse_loss(self.model(x_t, t, context, mask), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def train(self, num_epochs: int, progress: bool = True) -> list[float]:
        """Train; returns the mean loss of each epoch (also kept in self.losses)."""
        self.model.train()
        for epoch in tqdm(range(num_epochs), desc="training", unit="epoch", disable=not progress):
            total, batches = 0.0, 0
            for images, labels in self.dataloader:
                total += self.train_step(images, labels)
                batches += 1
            self.losses.append(total / max(batches, 1))
        self.model.eval()
        return self.losses

    def save_checkpoint(self, path) -> None:
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "losses": self.losses, "text_drop_prob": self.text_drop_prob}, Path(path))

    def load_checkpoint(self, path) -> None:
        state = torch.load(Path(path), map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.losses = list(state["losses"])
