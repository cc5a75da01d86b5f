"""Mutants marked by hand as equivalent to the solution: no input the function's contract allows tells
them apart. Keyed by the mutant's id (function-digest of its source), with the reason."""

_2D = "on the 2-D inputs of the contract (x_spatial (N, d), x_text (T, d))"
_4D = "on the 4-D (B, heads, N, head_dim) tensors of the contract"
_DEFAULT = ("a changed default of the signature: every caller of the contract (the lesson's cells, the checks) "
            "passes seed and num_inference_steps")
_DEVICE = "a device move of a tensor already on the inputs' device"

EQUIVALENT: dict[str, str] = {
    "guidance_norms-704a7034": "apply_cfg(..., float(w)) -> apply_cfg(..., w): the scales are Python numbers, and "
                               "w * tensor is the same for an int and its float",
    "flow_matching_pair-e8c1bf50": "x0.dim() -> noise.dim(): x0 and the noise have the same shape by contract",
    # Lesson 1's cross-attention is 2-D: the last axis is axis 1, and a transpose of two axes is symmetric.
    "cross_attention-bde00dd0": f"transpose(-2, -1) -> transpose(-1, -2): the same transpose {_2D}",
    "cross_attention-58ffd1cf": f"softmax(dim=-1) -> softmax(dim=1): the same axis {_2D}",
    "cross_attention-1bafa1aa": f"transpose(-2, -1) -> transpose(-2, 1): the same axes {_2D}",
    "cross_attention-0d22296f": f"keys.shape[-1] -> keys.shape[1]: the same size {_2D}",
    "cross_attention-ee6de373": f"softmax(dim=-1) -> softmax(dim=--1) = dim 1: the same axis {_2D}",
    "cross_attention-e555b972": f"transpose(-2, -1) -> transpose(-0, -1) = (0, 1): the same axes {_2D}",
    "cross_attention-8b3d7bd2": f"transpose(-2, -1) -> transpose(-2, --1) = (-2, 1): the same axes {_2D}",
    "cross_attention-f8ee090a": f"keys.shape[-1] -> keys.shape[--1] = shape[1]: the same size {_2D}",
    "generate_guidance_sweep-bb3e9f86": _DEFAULT,
    "generate_guidance_sweep-ee21f721": _DEFAULT,
    "generate_guidance_sweep-42c356f5": _DEFAULT,
    "generate_guidance_sweep-5bc3068d": _DEFAULT,
    "generate_guidance_sweep-868f2c24": _DEFAULT,
    "generate_guidance_sweep-b0d4ce37": _DEFAULT,
    "generate_guidance_sweep-960eeb72": _DEFAULT,
    "generate_guidance_sweep-6c7c039c": _DEFAULT,
    "generate_guidance_sweep-e7e4e75a": "torch.Generator(device='cpu').manual_seed(seed) -> torch.manual_seed(seed): "
                                        "the global CPU generator, freshly seeded: the same noise (a correct idiom)",
    "generate_guidance_sweep-37b9f94a": "torch.Generator(device='cpu') -> torch.Generator(): a generator is on the "
                                        "CPU by default",
    "multi_head_cross_attention-d36be388": f"transpose(1, 2) -> transpose(2, 1): symmetric {_4D}",
    "multi_head_cross_attention-bce9494c": f"transpose(1, 2) -> transpose(2, 1): symmetric {_4D}",
    "multi_head_cross_attention-186413fc": f"transpose(1, 2) -> transpose(2, 1): symmetric {_4D}",
    "multi_head_cross_attention-7ddbd905": "mask is not None -> None is not mask: the same test",
    "multi_head_cross_attention-2892038c": f"transpose(1, 2) -> transpose(1, -2): axis -2 is axis 2 {_4D}",
    "multi_head_cross_attention-12eba315": f"transpose(1, 2) -> transpose(1, -2): axis -2 is axis 2 {_4D}",
    "multi_head_cross_attention-131b9d9d": f"transpose(1, 2) -> transpose(1, -2): axis -2 is axis 2 {_4D}",
    "multi_head_cross_attention-4b8a1be3": f"k.transpose(-2, -1) -> k.transpose(-1, -2): symmetric {_4D}",
    "multi_head_cross_attention-97ddefe9": f"transpose(1, 2) -> transpose(2, 1): symmetric {_4D}",
    "multi_head_cross_attention-e5317a79": f"k.transpose(-2, -1) -> k.transpose(2, -1): axis 2 is axis -2 {_4D}",
    "multi_head_cross_attention-23bedaf0": f"transpose(1, 2) -> transpose(1, -2): axis -2 is axis 2 {_4D}",
    "multi_head_cross_attention-2ab9845a": f"k.transpose(-2, -1) -> k.transpose(--2, -1) = (2, -1) {_4D}",
    "multi_head_cross_attention-54e88cc0": "~mask.bool() -> ~mask: the contract's mask is already bool (True on "
                                           "real tokens, as the library's text encoder returns it)",
    "drop_text-267b6f8f": "rand < p -> rand <= p: differs only when torch.rand draws exactly p (probability ~2^-24 "
                          "per caption; never in the checks' draws)",
    "drop_text-cb4bb997": f".to(context.device) -> .to(mask.device): {_DEVICE} (all inputs share one device)",
    "drop_text-84b51b73": f".to(context.device) -> .to(null_context.device): {_DEVICE} (all inputs share one device)",
    "drop_text-16d2b847": f".to(context.device) -> .to(null_mask.device): {_DEVICE} (all inputs share one device)",
    "drop_text-b27e048d": "torch.rand(context.shape[0]) -> torch.rand(mask.shape[0]): the same batch size by contract",
    "euler_cfg_sample-5155340b": "x.shape[0] -> context.shape[0]: the same batch size by contract",
    "euler_cfg_sample-3d308bde": "x.shape[0] -> mask.shape[0]: the same batch size by contract",
    "euler_cfg_sample-1af254c6": "x.shape[0] -> null_context.shape[0]: the null text comes with the batch's size "
                                 "by contract (the library expands it)",
    "euler_cfg_sample-b13e5f86": "x.shape[0] -> null_mask.shape[0]: the same, for the null text's mask",
    "euler_cfg_sample-ae951334": "device=x.device -> device=context.device: all inputs share one device",
    "euler_cfg_sample-bbe3f440": "device=x.device -> device=mask.device: all inputs share one device",
    "euler_cfg_sample-a91bf037": "device=x.device -> device=null_context.device: all inputs share one device",
    "euler_cfg_sample-5fc8c1f0": "device=x.device -> device=null_mask.device: all inputs share one device",
}
