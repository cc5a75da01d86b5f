"""A tiny random-weight StableDiffusionPipeline, built offline and saved like a hub checkout.

The sizes follow diffusers' own pipeline tests (get_dummy_components): a 2-level UNet of width
32/64, a 4-level VAE, a 2-layer CLIP text model of width 32 and a tokenizer over a small
vocabulary written here. Loading it back with from_pretrained(folder) runs the real loading code.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ["a", "lighthouse", "on", "cliff", "at", "sunset", "oil", "painting", "red", "bicycle", "photo", "of",
         "the", "cat", "dog", ","]


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
    unique_merges = list(dict.fromkeys(merges))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(unique_merges) + "\n")


def build_tiny_pipeline(folder: Path):
    """Build, save to `folder` and return the pipeline (seeded, so every build is identical)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=(8, 16, 32, 32), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                        norm_num_groups=8)
    tokenizer_dir = Path(folder) / "_tokenizer_source"
    write_tokenizer_files(tokenizer_dir)
    tokenizer = CLIPTokenizer(str(tokenizer_dir / "vocab.json"), str(tokenizer_dir / "merges.txt"),
                              model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
                                                intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
                                                num_hidden_layers=2, vocab_size=max(tokenizer.get_vocab().values()) + 1))
    scheduler = PNDMScheduler(skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return pipe
