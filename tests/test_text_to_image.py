"""Lesson 2's text_to_image library, with a tiny CLIP built offline and the bundled digits."""
import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from text_to_image import data, get_device
from text_to_image.dit import ConditionalDiT, CrossAttention, TextConditionalDiT
from text_to_image.sampling import sample_text_conditional
from text_to_image.text_encoder import (CLIPTextEncoder, TextEncoderUnavailable, make_cifar10_captions,
                                        make_digit_captions, trim_padding)
from text_to_image import exercises
from text_to_image.reference import euler_cfg_sample, flow_matching_pair
from text_to_image.train import TextConditionalTrainer


@pytest.fixture(scope="module")
def encoder(tiny_clip_dir):
    return CLIPTextEncoder(str(tiny_clip_dir), device="cpu")


def small_model(encoder, **overrides):
    settings = dict(img_size=8, patch_size=2, in_channels=1, embed_dim=32, depth=2, num_heads=4,
                    context_dim=encoder.embed_dim)
    return TextConditionalDiT(**{**settings, **overrides})


def test_get_device_is_cpu_here():
    assert get_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_captions():
    assert make_cifar10_captions(torch.tensor([0, 3, 5, 8])) == [
        "a photo of an airplane", "a photo of a cat", "a photo of a dog", "a photo of a ship"]
    assert make_cifar10_captions([1]) == ["a photo of an automobile"]
    assert make_digit_captions([7, 0]) == ["a photo of the digit seven", "a photo of the digit zero"]


def test_encoder_shapes_mask_and_frozen(encoder):
    tokens, pooled = encoder.encode(["a photo of a cat", "a photo of a dog running"], return_pooled=True)
    assert tokens.shape == (2, encoder.max_length, encoder.embed_dim) == (2, 77, 32)
    assert pooled.shape == (2, 32)
    embeddings, mask = encoder("a photo of a cat")
    assert embeddings.shape == (1, 77, 32) and mask.dtype == torch.bool
    assert mask.sum().item() == len(encoder.tokenizer.tokenize("a photo of a cat")) + 2   # with start and end
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not torch.allclose(tokens[0], tokens[1])


def test_encoder_load_failure_says_how_to_fix(tmp_path):
    with pytest.raises(TextEncoderUnavailable, match="connect to the internet once"):
        CLIPTextEncoder(str(tmp_path / "nowhere"))


@pytest.mark.quick
def test_without_a_network_the_hub_is_not_waited_for(monkeypatch):
    """Offline and not cached: one quick probe of the hub, then the explanation (the hub client's own retries
    took minutes); never a download attempt."""
    from huggingface_hub import constants

    from text_to_image import text_encoder

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://hub.invalid")   # a name that never resolves
    attempts = []
    real_load = text_encoder._load
    monkeypatch.setattr(text_encoder, "_load", lambda name, **options: (attempts.append(options),
                                                                          real_load(name, **options))[1])
    with pytest.raises(TextEncoderUnavailable, match="hub.invalid cannot be reached"):
        CLIPTextEncoder("some-org/not-cached-anywhere")
    assert attempts == [{"local_files_only": True}]


def test_trim_padding_keeps_real_tokens(encoder):
    context, mask = encoder(["a photo of a cat", ""])
    length = len(encoder.tokenizer.tokenize("a photo of a cat")) + 2
    trimmed, trimmed_mask = trim_padding(context, mask)
    assert trimmed.shape[1] == length and torch.equal(trimmed_mask, mask[:, :length])
    assert torch.equal(trimmed, context[:, :length])


@pytest.mark.quick
def test_cross_attention_matches_the_formula_and_respects_the_mask():
    torch.manual_seed(0)
    layer = CrossAttention(embed_dim=16, context_dim=12, num_heads=4)
    assert (layer.num_heads, layer.head_dim, layer.scale) == (4, 4, 0.5)
    x, context = torch.randn(2, 9, 16), torch.randn(2, 5, 12)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out = layer(x, context, mask)
    assert out.shape == (2, 9, 16)
    weights = layer.attention_weights(x, context, mask)
    assert weights.shape == (2, 4, 9, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 9), atol=1e-6)
    assert torch.all(weights[1, :, :, 3:] == 0)
    v = layer.v_proj(context).view(2, 5, 4, 4).transpose(1, 2)
    manual = layer.out_proj((weights @ v).transpose(1, 2).reshape(2, 9, 16))
    assert torch.allclose(out, manual, atol=1e-5)
    changed = context.clone()
    changed[1, 3:] = 100.0   # padding tokens must not matter
    assert torch.allclose(layer(x, changed, mask)[1], out[1], atol=1e-5)
    assert not torch.allclose(layer(x, changed, None)[1], out[1], atol=1e-3)


def test_text_dit_starts_at_zero_and_learns_to_use_the_text(encoder):
    torch.manual_seed(0)
    model = small_model(encoder)
    x, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    context, mask = encoder(["a photo of the digit one", "a photo of the digit two"])
    assert torch.equal(model(x, t, context, mask), torch.zeros_like(x))   # adaLN-Zero
    by_class = ConditionalDiT(img_size=32, patch_size=4, in_channels=3)
    by_text = TextConditionalDiT(img_size=32, patch_size=4, in_channels=3, context_dim=512)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    dim = 256
    per_block = count(by_text.blocks[0].cross_attn) + 3 * dim * (dim + 1)   # cross-attention, 3 more adaLN outputs
    assert count(by_text) - count(by_class) == 6 * per_block - 11 * dim     # minus the class table (10 + null)
    trainer = TextConditionalTrainer(model, encoder, [(torch.randn(4, 1, 8, 8), torch.tensor([1, 2, 3, 4]))],
                                     make_digit_captions, lr=1e-2, text_drop_prob=0.0)
    trainer.train(3, progress=False)
    out_one = model(x[:1], t[:1], *encoder(["a photo of the digit one"]))
    out_two = model(x[:1], t[:1], *encoder(["a photo of the digit two"]))
    assert out_one.shape == (1, 1, 8, 8) and not torch.allclose(out_one, out_two)


def test_conditional_dit_uses_the_class_and_has_a_null_class():
    torch.manual_seed(0)
    model = ConditionalDiT(img_size=8, patch_size=2, in_channels=1, embed_dim=32, depth=1, num_heads=4)
    assert model.y_embedder.num_embeddings == 11
    out = model(torch.randn(3, 1, 8, 8), torch.rand(3), torch.tensor([0, 5, 10]))
    assert out.shape == (3, 1, 8, 8)


@pytest.mark.quick
def test_flow_matching_convention():
    x0, noise, t = torch.ones(2, 1, 2, 2), torch.full((2, 1, 2, 2), 3.0), torch.tensor([0.0, 0.25])
    x_t, target = flow_matching_pair(x0, noise, t)
    assert torch.equal(x_t[0], x0[0]) and torch.allclose(x_t[1], torch.full((1, 2, 2), 1.5))
    assert torch.equal(target, noise - x0)


def test_text_dropout_rate_and_null_text(encoder):
    model = small_model(encoder)
    trainer = TextConditionalTrainer(model, encoder, [], make_digit_captions, text_drop_prob=0.1)
    context, mask = trainer.embed(make_digit_captions([3] * 4000))
    dropped_context, dropped_mask = trainer._drop_text(context, mask)
    assert dropped_context.shape == context.shape
    null = encoder([""])[0][0]
    is_null = torch.tensor([torch.equal(c, null) for c in dropped_context])
    assert 0.08 < is_null.float().mean().item() < 0.12
    assert torch.equal(dropped_mask[is_null][0], encoder([""])[1][0])


def test_training_reduces_loss_and_checkpoints_round_trip(encoder, tmp_path):
    torch.manual_seed(0)
    digits = data.load_digits_images()
    subset = TensorDataset(*(tensor[:256] for tensor in digits.dataset.tensors))
    loader = DataLoader(subset, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    model = small_model(encoder)
    trainer = TextConditionalTrainer(model, encoder, loader, digits.caption_fn, lr=2e-3)
    losses = trainer.train(num_epochs=6, progress=False)
    assert len(losses) == 6 and losses[-1] < losses[0]
    trainer.save_checkpoint(tmp_path / "model.pt")
    fresh = small_model(encoder)
    restored = TextConditionalTrainer(fresh, encoder, loader, digits.caption_fn)
    restored.load_checkpoint(tmp_path / "model.pt")
    assert restored.losses == losses
    x, t = torch.randn(1, 1, 8, 8), torch.rand(1)
    context, mask = encoder(["a photo of the digit four"])
    assert torch.equal(fresh(x, t, context, mask), model(x, t, context, mask))


class ToyVelocity(torch.nn.Module):
    """v = a constant that depends on whether the text is the null one; counts forward passes."""

    def __init__(self, null_context):
        super().__init__()
        self.null = null_context
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.calls = 0

    def forward(self, x, t, context, mask):
        self.calls += 1
        is_null = torch.tensor([torch.equal(c, self.null[: c.shape[0]]) for c in context])
        return torch.where(is_null[:, None, None, None], torch.full_like(x, 1.0), torch.full_like(x, 3.0))


def test_euler_cfg_sampling_in_one_batched_pass(encoder):
    null = encoder([""])[0][0]
    toy = ToyVelocity(null)
    generator = torch.Generator().manual_seed(0)
    start = torch.randn((2, 1, 2, 2), generator=torch.Generator().manual_seed(0))
    out = sample_text_conditional(toy, encoder, ["a photo of a cat", "a photo of a dog"], (1, 2, 2), num_steps=10,
                                  cfg_scale=4.0, generator=generator)
    # v = 1 + 4 (3 - 1) = 9 everywhere; integrating from t=1 to 0 subtracts it once.
    assert torch.allclose(out, start - 9.0, atol=1e-5)
    assert toy.calls == 10


def test_batched_and_separate_cfg_agree_on_a_real_model(encoder):
    torch.manual_seed(0)
    model = small_model(encoder)
    for block in model.blocks:   # leave adaLN-Zero so the text matters
        torch.nn.init.normal_(block.adaLN_modulation[-1].weight, std=0.05)
    torch.nn.init.normal_(model.final_layer.linear.weight, std=0.05)
    context, mask = trim_padding(*encoder(["a photo of the digit six", ""]))
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        batched = euler_cfg_sample(model, x, context[:1], mask[:1], context[1:], mask[1:], 5, 3.0)
        separate = x
        for step in range(5):
            t = torch.full((1,), 1.0 - step / 5)
            v_cond, v_uncond = model(separate, t, context[:1], mask[:1]), model(separate, t, context[1:], mask[1:])
            separate = separate - (v_uncond + 3.0 * (v_cond - v_uncond)) / 5
    assert torch.allclose(batched, separate, atol=1e-5) and not torch.allclose(batched, x)


@pytest.fixture
def students_pieces():
    """Whatever a test hands to the library is forgotten after it."""
    yield exercises.use
    exercises.forget()


def test_the_library_runs_on_the_pieces_the_notebook_hands_it(encoder, students_pieces):
    calls = []

    def recording(name):
        reference = exercises.implementation(name)

        def piece(*args, **kwargs):
            calls.append(name)
            return reference(*args, **kwargs)
        return piece

    students_pieces(**{name: recording(name) for name in exercises.EXERCISES})
    model = small_model(encoder)
    trainer = TextConditionalTrainer(model, encoder, [(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]))],
                                     make_digit_captions)
    trainer.train(1, progress=False)
    assert {"flow_matching_pair", "drop_text", "multi_head_cross_attention"} <= set(calls)
    calls.clear()
    sample_text_conditional(model, encoder, ["a photo of the digit one"], (1, 8, 8), num_steps=2)
    assert calls[0] == "euler_cfg_sample" and "multi_head_cross_attention" in calls


@pytest.mark.quick
def test_a_piece_not_yet_written_says_which_exercise_it_is(students_pieces, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_reference(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 1 and "reference" in (fromlist or ()):
            raise ImportError("no reference here")   # as in the package students get
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", without_reference)
    layer = CrossAttention(embed_dim=8, context_dim=4, num_heads=2)
    with pytest.raises(exercises.ExerciseNotDone, match="multi_head_cross_attention is Exercise 1"):
        layer(torch.randn(1, 3, 8), torch.randn(1, 2, 4))
    with pytest.raises(ValueError, match="not one of the exercises"):
        students_pieces(apply_cfg=print)


def write_fake_cifar(root, per_batch=4):
    folder = root / data.CIFAR10_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), b"labels": list(range(per_batch))}
        with open(folder / name, "wb") as stream:
            pickle.dump(batch, stream)
    return folder


def test_cifar10_reader_and_default_choice(tmp_path):
    assert data.load_default(tmp_path).name == "digits"
    write_fake_cifar(tmp_path)
    loaded = data.load_default(tmp_path)
    images, labels = loaded.dataset.tensors
    assert loaded.name == "CIFAR-10" and images.shape == (20, 3, 32, 32) and loaded.image_shape == (3, 32, 32)
    assert images.min() >= -1 and images.max() <= 1
    assert loaded.caption_fn(labels[:2]) == ["a photo of an airplane", "a photo of an automobile"]
    assert data.load_cifar10(tmp_path, train=False).dataset.tensors[0].shape[0] == 4


def test_cifar10_archive_checksum_is_enforced(tmp_path, monkeypatch):
    source = tmp_path / "source"
    write_fake_cifar(source)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source / data.CIFAR10_FOLDER, arcname=data.CIFAR10_FOLDER)
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="wrong checksum"):
        data.load_cifar10(root, download=True)
    monkeypatch.setattr(data, "CIFAR10_MD5", hashlib.md5(buffer.getvalue()).hexdigest())
    assert data.load_cifar10(root, download=True).dataset.tensors[0].shape == (20, 3, 32, 32)


def test_digits_are_the_default_offline_data():
    digits = data.load_digits_images()
    images, labels = digits.dataset.tensors
    assert images.shape == (1797, 1, 8, 8) and images.min() == -1 and images.max() == 1
    assert digits.caption_fn(labels[:1]) == ["a photo of the digit zero"]


def test_command_line_trains_and_samples_offline(tmp_path, capsys):
    from text_to_image.__main__ import main

    out = tmp_path / "run"
    assert main(["--clip", str(tmp_path / "no-clip"), "--dataset", "digits", "--epochs", "2", "--small",
                 "--steps", "4", "--prompts", "a photo of the digit one", "a photo of the digit two",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Falling back to the small offline CLIP" in printed and "digits: 1797 images" in printed
    assert (out / "samples.png").stat().st_size > 1000
    assert len(__import__("json").loads((out / "losses.json").read_text())) == 2
    assert "model" in torch.load(out / "model.pt", weights_only=True)


@pytest.mark.quick
def test_lesson_settings_follow_the_device_and_the_small_switch(monkeypatch):
    from text_to_image.settings import lesson_settings

    for name in ("T2I_SMALL", "T2I_EPOCHS", "T2I_SAMPLE_STEPS", "T2I_DATASET", "CLIP_MODEL"):
        monkeypatch.delenv(name, raising=False)
    full = lesson_settings(torch.device("cpu"))
    assert (full.small, full.epochs, full.sample_steps, full.dataset) == (False, 30, 50, "auto")
    assert lesson_settings(torch.device("cuda")).dataset == "cifar10"   # the device's type only: no GPU needed
    monkeypatch.setenv("T2I_SMALL", "1")
    small = lesson_settings(torch.device("cpu"))
    assert (small.small, small.epochs, small.sample_steps) == (True, 2, 10)


def test_model_settings_follow_the_image_size():
    from text_to_image.dit import model_settings_for

    assert model_settings_for((3, 32, 32)) == dict(patch_size=4, embed_dim=256, depth=6, num_heads=8)
    assert model_settings_for((1, 8, 8))["patch_size"] == 2
    assert model_settings_for((3, 32, 32), small=True)["embed_dim"] == 32
