"""Lesson 2 on the CPU (not a test): train the text-conditional DiT on the bundled digits for a fixed
time, then print training throughput, batched-vs-separate CFG sampling throughput, and prompt
fidelity: how often a classifier trained on the real digits recognises the digit the prompt asked for.

    python benchmarks/lesson2.py                   # 120 s of training, tiny offline CLIP
    python benchmarks/lesson2.py --seconds 600 --clip openai/clip-vit-base-patch32
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from text_to_image.data import load_digits_images  # noqa: E402
from text_to_image.dit import TextConditionalDiT  # noqa: E402
from text_to_image.offline_clip import offline_text_encoder  # noqa: E402
from text_to_image.sampling import sample_text_conditional  # noqa: E402
from text_to_image.text_encoder import CLIPTextEncoder, make_digit_captions  # noqa: E402
from text_to_image.train import TextConditionalTrainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="training budget (whole epochs)")
    parser.add_argument("--clip", help="CLIP model id or folder (default: a tiny random CLIP built offline)")
    parser.add_argument("--samples-per-digit", type=int, default=30)
    parser.add_argument("--steps", type=int, default=30, help="Euler steps when sampling")
    args = parser.parse_args()
    torch.manual_seed(0)

    if args.clip is None:
        encoder, clip_label = offline_text_encoder(), "tiny random-weight CLIP (offline)"
    else:
        encoder, clip_label = CLIPTextEncoder(args.clip), args.clip

    digits = load_digits_images()
    loader = DataLoader(digits.dataset, batch_size=64, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    model = TextConditionalDiT(img_size=8, patch_size=2, in_channels=1, embed_dim=128, depth=4, num_heads=4,
                               context_dim=encoder.embed_dim)
    trainer = TextConditionalTrainer(model, encoder, loader, digits.caption_fn, lr=1e-3, weight_decay=0.0,
                                     text_drop_prob=0.1)
    print(f"digits: {len(digits.dataset)} images 1x8x8; text encoder: {clip_label}; "
          f"model: {sum(p.numel() for p in model.parameters()):,} parameters; threads: {torch.get_num_threads()}")

    started, epochs = time.perf_counter(), 0
    while time.perf_counter() - started < args.seconds:
        trainer.train(1, progress=False)
        epochs += 1
    train_seconds = time.perf_counter() - started
    images_seen = epochs * len(loader) * loader.batch_size
    print(f"training: {epochs} epochs in {train_seconds:.0f} s, {images_seen / train_seconds:.0f} images/s, "
          f"final loss {trainer.losses[-1]:.4f}")

    labels = torch.arange(10).repeat(args.samples_per_digit)
    prompts = make_digit_captions(labels)

    def images_per_second(batch_prompts, batched, repeats):
        sample_text_conditional(model, encoder, batch_prompts, (1, 8, 8), num_steps=2, batched_cfg=batched)  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            sample_text_conditional(model, encoder, batch_prompts, (1, 8, 8), num_steps=args.steps, cfg_scale=4.0,
                                    generator=torch.Generator().manual_seed(1), batched_cfg=batched)
        return repeats * len(batch_prompts) / (time.perf_counter() - started)

    for batch_prompts, repeats in ((prompts[:10], 10), (prompts, 1)):
        batched, separate = (images_per_second(batch_prompts, flag, repeats) for flag in (True, False))
        print(f"sampling {len(batch_prompts)} prompts x {args.steps} steps: batched CFG {batched:.0f} images/s, "
              f"two passes {separate:.0f} images/s, ratio {batched / separate:.2f}x")

    from sklearn.svm import SVC

    real, real_labels = digits.dataset.tensors
    classifier = SVC(gamma=0.001).fit(((real + 1) * 8).reshape(len(real), -1).numpy(), real_labels.numpy())
    print(f"prompt fidelity (a classifier trained on the real digits; chance is 10%), "
          f"{len(prompts)} samples per scale:")
    for w in (1.0, 2.0, 4.0, 7.5):
        samples = sample_text_conditional(model, encoder, prompts, (1, 8, 8), num_steps=args.steps, cfg_scale=w,
                                          generator=torch.Generator().manual_seed(2))
        predicted = classifier.predict(((samples.clamp(-1, 1) + 1) * 8).reshape(len(prompts), -1).numpy())
        print(f"  w = {w:>3}: {100 * (predicted == labels.numpy()).mean():.1f}%")


if __name__ == "__main__":
    main()
