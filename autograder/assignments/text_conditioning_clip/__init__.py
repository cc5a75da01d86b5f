"""Lesson 2, Text Conditioning with CLIP: its declaration; its hidden checks are in checks/."""
from autograder.assignments.declaration import Assignment

ASSIGNMENT = Assignment(
    name="text_conditioning_clip",
    title="Text Conditioning with CLIP",
    functions={"multi_head_cross_attention": 8, "flow_matching_pair": 3, "drop_text": 4, "euler_cfg_sample": 6},
    # Everything that needs CLIP, the data or the trained model; the student's cells still run.
    definitions_only=("load_clip", "clip_similarity", "cross_attention_demo", "test_multi_head_cross_attention",
                      "token_attention_demo", "load_data", "build_model", "forward_check", "captions_demo",
                      "show_data", "test_drop_text", "null_text", "train", "loss_plot", "sample_classes",
                      "sample_scales", "sample_unseen"),
    visible_tests={"test_multi_head_cross_attention": 3, "test_flow_matching_pair": 1, "test_drop_text": 2,
                   "test_euler_cfg_sample": 3},
    ships_library=True,
    packages=("scikit-learn", "tqdm"),
    device_checks=True,
    # Its visible tests need the text encoder (the stand-in, offline) and the demo layer; not training.
    push_skips=("train", "loss_plot", "sample_classes", "sample_scales", "sample_unseen"),
    order=2,
)
