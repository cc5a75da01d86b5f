"""Time the whole Exercise 4 GPU check for one submission on the bk-sdm-small architecture (not a test).

Real weights where they load (hub, cache or --model folder); otherwise the same UNet, VAE and CLIP
text-encoder architecture built from config with random float16 weights, saved and loaded back
through from_pretrained. Prints the load time, the seconds per guidance scale, the whole check and
the peak GPU memory.

    python benchmarks/gpu_smoke.py                         # on a CUDA machine
    python benchmarks/gpu_smoke.py --device cpu --model DIR   # a dry run of the same code on a small CPU model
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.pipeline import sd_pipeline  # noqa: E402
from text_to_image.offline_clip import write_tokenizer_files  # noqa: E402

SOLUTION = ROOT / "solutions" / "text_conditioning_guidance" / "text_conditioning_guidance.ipynb"


def build_random_bk_sdm_small(folder: Path) -> None:
    """bk-sdm-small's architecture (see the facts in shared/notes) with random float16 weights."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, mid_block_type=None,
        attention_head_dim=8, cross_attention_dim=768)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512)
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                                num_attention_heads=12, max_position_embeddings=77,
                                                vocab_size=49408, hidden_act="quick_gelu", projection_dim=768))
    write_tokenizer_files(folder / "_tokenizer_source")   # the real CLIP vocabulary is not available offline
    tokenizer = CLIPTokenizer(str(folder / "_tokenizer_source" / "vocab.json"),
                              str(folder / "_tokenizer_source" / "merges.txt"), model_max_length=77)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.to(torch.float16).save_pretrained(folder)
    parameters = sum(p.numel() for p in unet.parameters())
    print(f"built random-weight bk-sdm-small architecture: UNet {parameters:,} parameters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=sd_pipeline.DEFAULT_MODEL, help="hub id or folder (default bk-sdm-small)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run this on a GPU machine (or --device cpu --model DIR for a dry run)")

    with tempfile.TemporaryDirectory() as scratch:
        model, weights = args.model, "real weights"
        try:
            sd_pipeline.load(sd_pipeline.PipelineSpec(model, args.device))
        except sd_pipeline.PipelineUnavailable as reason:
            print(f"{reason}\n-> using the same architecture with random float16 weights")
            model, weights = str(Path(scratch) / "bk-sdm-small-random"), "random float16 weights (architecture only)"
            build_random_bk_sdm_small(Path(model))
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        results_path = Path(scratch) / "results.json"
        started = time.perf_counter()
        code = pytest.main([str(ROOT / "autograder"), "-q", "-p", "no:cacheprovider", "--submission", str(SOLUTION),
                            "--results-json", str(results_path), "--sd-model", model, "--sd-device", args.device,
                            "-k", "generate_guidance_sweep"])
        total = time.perf_counter() - started
        results = json.loads(results_path.read_text())

    spec = sd_pipeline.PipelineSpec(model, args.device)
    note = next(c["message"] for c in results["checks"] if c["name"].endswith("finishes within the time budget"))
    passed = sum(c["outcome"] == "passed" for c in results["checks"])
    device = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"\nExercise 4 check on {device}, model: {args.model} ({weights}), pytest exit {code}")
    print(f"checks passed: {passed}/{len(results['checks'])}")
    print(f"pipeline load (once per grading worker): {sd_pipeline.load_seconds.get(spec, 0.0):.1f} s")
    for scale, seconds in re.findall(r"w=([\d.]+): ([\d.]+) s", note):
        print(f"  guidance scale {scale:>4}: {seconds} s")
    timing = next(line for line in note.splitlines() if line.startswith("sweep took "))   # the check's other notes
    print(f"student sweep: {timing.split(' s (')[0].removeprefix('sweep took ')} s")
    # The re-run and the reference images are the same calls as the first sweep: remembered, not re-run.
    print(f"whole check for one submission (load, one sweep run, re-run and reference remembered): {total:.1f} s")
    if args.device == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
