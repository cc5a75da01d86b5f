"""Hidden checks for Exercise 4: euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps,
cfg_scale).

The student's function runs in its sandbox with a model proxy; each model call comes back here, where
a known velocity field answers and the call is recorded, so the checks see exactly which times and
which batches the sampler asked for.
"""
import numpy as np
import pytest
import torch

from autograder.assignments.text_conditioning_clip.checks.layers import padding_mask, tensor
from autograder.grading.expectations import as_tensor, close, describe, expect, same_dtype, unchanged
from autograder.sandbox.student_process import StudentError
from autograder.sandbox.values import MetaTensor, ModelHandle
from text_to_image.reference import euler_cfg_sample as reference

check = pytest.mark.check

# An odd batch: a doubled batch split the wrong way (interleaved, or at the wrong row) cannot pass.
BATCH, IMAGE, TOKENS, WIDTH, STEPS = 3, (1, 4, 4), 5, 6, 6


class VelocityField:
    """v(x, t, Z) = a(t) x + W mean(Z over real tokens): the text moves the image, and with timed=True
    so does the time, so that the order of the steps matters."""

    def __init__(self, seed, timed):
        rng = np.random.default_rng(seed)
        self.drift = torch.from_numpy(rng.standard_normal((WIDTH, int(np.prod(IMAGE)))) * 0.5)
        self.timed = timed

    def __call__(self, x, t, context, mask=None):
        x, t, context = x.double(), t.double(), context.double()
        mask = torch.ones(context.shape[:2], dtype=torch.bool) if mask is None else mask.bool()
        pooled = (context * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        rate = (0.5 + t) if self.timed else torch.full_like(t, 0.5)
        return rate.view(-1, 1, 1, 1) * x + (pooled @ self.drift).view(x.shape)


class Case:
    def __init__(self, seed, timed):
        rng = np.random.default_rng(seed)
        self.field = VelocityField(seed, timed)
        self.noise = tensor(rng, BATCH, *IMAGE)
        self.context, self.mask = tensor(rng, BATCH, TOKENS, WIDTH), padding_mask([5, 3, 4], TOKENS)
        self.null_context = tensor(rng, 1, TOKENS, WIDTH).expand(BATCH, -1, -1).contiguous()
        self.null_mask = padding_mask([2] * BATCH, TOKENS)
        self.calls = []   # (t values, contexts) of each model call

    def answer(self, request, arrays):
        """The grader's side of a model call from the sandbox."""
        try:
            x, t, context = (torch.from_numpy(np.asarray(arrays[name], dtype=np.float64)) for name in ("x", "t", "context"))
        except KeyError as missing:
            return {"error": f"model(x, t, context, mask) got no {missing.args[0]}"}, {}
        mask = torch.from_numpy(arrays["mask"].astype(bool)) if "mask" in arrays else None
        rows = x.shape[0] if x.dim() == 1 + len(IMAGE) else None
        if rows is None or tuple(x.shape[1:]) != IMAGE or not 1 <= rows <= 4 * BATCH:
            return {"error": f"model: x should have shape (batch, {', '.join(map(str, IMAGE))}), not {tuple(x.shape)}"}, {}
        if tuple(t.shape) != (rows,):
            return {"error": f"model: t should hold one time per image, shape ({rows},), not {tuple(t.shape)}"}, {}
        if tuple(context.shape) != (rows, TOKENS, WIDTH) or (mask is not None and tuple(mask.shape) != (rows, TOKENS)):
            return {"error": f"model: for {rows} images, context should have shape ({rows}, {TOKENS}, {WIDTH}) and "
                             f"mask ({rows}, {TOKENS}); got {tuple(context.shape)} and "
                             f"{None if mask is None else tuple(mask.shape)}"}, {}
        self.calls.append((t.clone(), context.clone()))
        return {"ok": True}, {"v": self.field(x, t, context, mask).float().numpy()}

    def expected(self, cfg_scale, times=None):
        if times is None:
            return reference(self.field, self.noise.double(), self.context.double(), self.mask,
                             self.null_context.double(), self.null_mask, STEPS, cfg_scale)
        x = self.noise.double()   # the same update at other times: to name a slip
        for time in times:
            t = torch.full((BATCH,), time, dtype=torch.float64)
            v_cond = self.field(x, t, self.context, self.mask)
            v_uncond = self.field(x, t, self.null_context, self.null_mask)
            x = x - (v_uncond + cfg_scale * (v_cond - v_uncond)) / STEPS
        return x


@pytest.fixture(scope="module")
def sampler(student):
    return student.function("euler_cfg_sample")


@pytest.fixture(scope="module")
def sample(sampler):
    function = sampler

    def run(case, cfg_scale):
        case.calls.clear()
        function.callbacks["model"] = case.answer
        result = function(ModelHandle(), case.noise, case.context, case.mask, case.null_context, case.null_mask,
                          STEPS, cfg_scale)
        images = as_tensor(result, "euler_cfg_sample's result")
        expect(tuple(images.shape) == (BATCH, *IMAGE),
               f"the result should have the noise's shape {(BATCH, *IMAGE)}, not {describe(images)}")
        expect(bool(torch.isfinite(images).all()), "the result contains NaN or infinity")
        return images
    return run


def guidance_slip(images, case, cfg_scale):
    if close(images, case.expected(1 - cfg_scale)):
        return "the two predictions are swapped: v = v_uncond + w (v_cond - v_uncond), with v_uncond from the null text"
    flipped = 2 * case.noise.double() - case.expected(cfg_scale)
    if close(images, flipped, rtol=1e-3, atol=1e-4):
        return "the steps go the wrong way: from t = 1 to t = 0, x <- x - dt * v"
    return f"with w = {cfg_scale} the result differs from x <- x - dt (v_uncond + w (v_cond - v_uncond)) over {STEPS} steps"


@check("euler_cfg_sample: returns images of the noise's shape", points=1, visible=True)
def test_shape(sample):
    sample(Case(1, timed=True), 4.0)


@check("euler_cfg_sample: leaves its inputs unmodified", points=0.5)
def test_inputs_unmodified(sample, sampler):
    case = Case(6, timed=True)
    expect(close(sample(case, 3.0), case.expected(3.0), rtol=1e-4, atol=1e-4),
           "this check needs a correct result at w = 3 first")
    after = sampler.inputs_after_last_call[0]
    expect(unchanged([case.noise, case.context, case.mask, case.null_context, case.null_mask], after[1:6]),
           "euler_cfg_sample changed its inputs in place (x -= ..., or an in-place op on the noise): "
           "update a new tensor, x = x - dt * v")


@check("euler_cfg_sample: what it makes follows its inputs' device (as on a GPU)", points=0.5)
def test_follows_the_device(sampler, sample):
    # torch.full((B,), t) without a device is a CPU tensor that a model on a GPU refuses. Where no GPU is,
    # PyTorch's meta device stands in for one: the model proxy refuses such tensors as a GPU model would.
    case = Case(7, timed=True)
    expect(close(sample(case, 2.0), case.expected(2.0), rtol=1e-4, atol=1e-4),
           "this check needs a correct result on the CPU first")
    meta = [MetaTensor((BATCH, *IMAGE)), MetaTensor((BATCH, TOKENS, WIDTH)), MetaTensor((BATCH, TOKENS), "bool"),
            MetaTensor((BATCH, TOKENS, WIDTH)), MetaTensor((BATCH, TOKENS), "bool")]
    try:
        result = sampler(ModelHandle(), *meta, 3, 2.0)
    except StudentError as error:
        first = str(error).strip().splitlines()[-1][:240]
        expect(False, f"with its inputs on a GPU, euler_cfg_sample would fail: a tensor it makes stays on the CPU "
                      f"(create t with device=x.device) [{first}]")
    expect(isinstance(result, MetaTensor) and result.shape == (BATCH, *IMAGE),
           "with its inputs on a GPU, euler_cfg_sample's result should stay on that device")


@check("euler_cfg_sample: w = 0 follows the null text alone and w = 1 the prompt alone", points=1)
def test_identities(sample):
    case = Case(2, timed=False)
    for cfg_scale, which in ((0.0, "the null text alone"), (1.0, "the prompt alone")):
        images = sample(case, cfg_scale)
        if not close(images, case.expected(cfg_scale), rtol=1e-4, atol=1e-4):
            expect(False, f"w = {cfg_scale} should sample with {which}: " + guidance_slip(images, case, cfg_scale))


@check("euler_cfg_sample: steps from t = 1 down to t = 1/N, the same t for every image", points=1, visible=True)
def test_times(sample):
    case = Case(3, timed=True)
    sample(case, 4.0)
    seen = [t for t, _ in case.calls]
    expect(seen, "the model was never called")
    expect(all(bool((t == t[0]).all()) for t in seen), "every image of a step should have the same time t")
    times = [round(float(t[0]), 6) for t in seen]
    steps = list(dict.fromkeys(times))
    wanted = [round(1 - k / STEPS, 6) for k in range(STEPS)]
    if steps == wanted[::-1] or steps == [round(k / STEPS, 6) for k in range(STEPS)]:
        expect(False, "time runs the wrong way: sampling starts from the noise at t = 1 and steps down to t = 0")
    expect(steps == wanted, f"with num_steps = {STEPS} the model should be asked at t = {', '.join(map(str, wanted))} "
                            f"(from 1 down by 1/{STEPS}), but was asked at t = {', '.join(map(str, steps))}")


@check("euler_cfg_sample: both predictions in one batched model call per step", points=1, visible=True)
def test_batched(sample):
    case = Case(4, timed=True)
    sample(case, 4.0)
    expect(len(case.calls) == STEPS, f"the model was called {len(case.calls)} times for {STEPS} steps: evaluate the "
                                     "prompt and the null text in one call per step (concatenate along the batch)")
    for _, context in case.calls:
        halves = {tuple(context[:BATCH].flatten().tolist()), tuple(context[BATCH:].flatten().tolist())}
        expect(context.shape[0] == 2 * BATCH and halves == {tuple(case.context.double().flatten().tolist()),
                                                            tuple(case.null_context.double().flatten().tolist())},
               "each call should hold the prompts and the null texts, one copy of each per image")


@check("euler_cfg_sample: follows the guided Euler update for w = 7.5 on a time-dependent field", points=1)
def test_values(sample):
    case = Case(5, timed=True)
    images = sample(case, 7.5)
    if close(images, case.expected(7.5), rtol=1e-4, atol=1e-4):
        same_dtype(images, case.noise.dtype, "the result")
        return
    if close(images, case.expected(7.5, times=[k / STEPS for k in range(STEPS)]), rtol=1e-4, atol=1e-4) or close(
            images, case.expected(7.5, times=[(k + 1) / STEPS for k in range(STEPS)]), rtol=1e-4, atol=1e-4):
        expect(False, "time runs the wrong way: start at t = 1 and step down by dt = 1/num_steps")
    expect(False, guidance_slip(images, case, 7.5))
