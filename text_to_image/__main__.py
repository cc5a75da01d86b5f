"""Train the text-conditional DiT and sample from prompts: python -m text_to_image --help"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from . import get_device
from .data import load_default
from .dit import TextConditionalDiT, model_settings_for
from .offline_clip import offline_text_encoder
from .sampling import sample_text_conditional
from .text_encoder import CLIPTextEncoder, TextEncoderUnavailable


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m text_to_image", description=__doc__)
    parser.add_argument("--out", default="text_to_image_run", help="folder for samples.png, model.pt, losses.json")
    parser.add_argument("--clip", default="openai/clip-vit-base-patch32", help="CLIP model id or local folder")
    parser.add_argument("--offline-clip", action="store_true",
                        help="use the small random-weight CLIP (no download); also the fallback when --clip fails")
    parser.add_argument("--dataset", choices=("auto", "digits", "cifar10"), default="auto",
                        help="auto: CIFAR-10 if it is in --data, else scikit-learn's bundled digits")
    parser.add_argument("--data", default="./data", help="folder holding cifar-10-batches-py")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, help="default: 1e-4 for CIFAR-10, 1e-3 for the digits")
    parser.add_argument("--small", action="store_true", help="a tiny model, for quick checks")
    parser.add_argument("--prompts", nargs="*", help="prompts to sample (default: one caption per class)")
    parser.add_argument("--cfg-scale", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=50, help="Euler steps when sampling")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = get_device()
    if args.offline_clip:
        encoder = offline_text_encoder(device)
    else:
        try:
            encoder = CLIPTextEncoder(args.clip, device=device)
        except TextEncoderUnavailable as problem:
            print(f"{problem}\nFalling back to the small offline CLIP (random weights, no download).")
            encoder = offline_text_encoder(device)
    data = load_default(args.data, args.dataset, download=args.dataset == "cifar10")
    channels, size, _ = data.image_shape
    model = TextConditionalDiT(img_size=size, in_channels=channels, context_dim=encoder.embed_dim,
                               **model_settings_for(data.image_shape, args.small)).to(device)
    print(f"{data.name}: {len(data.dataset)} images {data.image_shape}; model {sum(p.numel() for p in model.parameters()):,}"
          f" parameters; device {device}")

    from .train import TextConditionalTrainer

    loader = DataLoader(data.dataset, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed))
    trainer = TextConditionalTrainer(model, encoder, loader, data.caption_fn, device=device,
                                     lr=args.lr or (1e-4 if size >= 32 else 1e-3))
    losses = trainer.train(args.epochs)

    prompts = args.prompts or data.caption_fn(range(len(data.class_names)))
    samples = sample_text_conditional(model, encoder, prompts, data.image_shape, num_steps=args.steps,
                                      cfg_scale=args.cfg_scale, device=device,
                                      generator=torch.Generator().manual_seed(args.seed))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out / "model.pt")
    (out / "losses.json").write_text(json.dumps(losses))
    save_grid(samples, prompts, out / "samples.png", gray=channels == 1)
    print(f"final loss {losses[-1]:.4f}; wrote {out / 'samples.png'}, {out / 'model.pt'}, {out / 'losses.json'}")
    return 0


def save_grid(samples, titles, path, gray):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(5, len(titles))
    rows = -(-len(titles) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, sample, title in zip(axes.flat, samples, titles):
        ax.imshow(((sample + 1) / 2).clamp(0, 1).permute(1, 2, 0).cpu().numpy().squeeze(), cmap="gray" if gray else None)
        ax.set_title(title.replace("a photo of ", ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
