"""A tiny random-weight Stable Diffusion pipeline that needs no download: Lesson 1's Exercise 4 falls back
to it when bk-sdm-small cannot be loaded, and the course grader grades the sweep on it where there is no GPU.

Its images are not pictures of anything: the weights are random. It only shows that code which drives a
StableDiffusionPipeline runs. Shaped like bk-sdm-small, scaled down: a UNet without a mid-block (the
blocks bk-sdm removed from Stable Diffusion), three levels of width 16/16/32 (self-attention only on the
last, so on a sixteenth of the latent pixels), a 4-level VAE of width 4-16 and the 2-layer CLIP text
model of width 32. Every call costs the grader what a student's call costs it: a student who asks for
480x480 images makes it run 60x60 latents, 0.4 s a call on one CPU thread. Seeded: every build is identical.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from .offline_clip import quiet_progress, tiny_clip


def build_tiny_pipeline(folder: Path):
    """Build, save to `folder` and return the pipeline (seeded, so every build is identical)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer, text_encoder = tiny_clip(Path(folder) / "_tokenizer_source")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(16, 16, 32), layers_per_block=1, sample_size=8,
                                in_channels=4, out_channels=4,
                                down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"), mid_block_type=None,
                                cross_attention_dim=32, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=(4, 8, 16, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                        norm_num_groups=4)
    scheduler = PNDMScheduler(skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return pipe


def stand_in_pipeline(device=None):
    """The tiny pipeline, built in a temporary folder, on `device`, with its progress bar off. The random
    number generator's state is left as it was."""
    state = torch.random.get_rng_state()
    try:
        with tempfile.TemporaryDirectory(prefix="stand-in-pipeline-") as folder, quiet_progress():
            pipe = build_tiny_pipeline(Path(folder) / "pipeline")
    finally:
        torch.random.set_rng_state(state)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device) if device is not None else pipe
