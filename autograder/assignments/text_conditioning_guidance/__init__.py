"""Lesson 1, Text Conditioning & Guidance: its declaration; its hidden checks are in checks/."""
from autograder.assignments.declaration import Assignment
from autograder.assignments.text_conditioning_guidance.checks.sweep_inputs import REFERENCE_CALLS

ASSIGNMENT = Assignment(
    name="text_conditioning_guidance",
    title="Text Conditioning & Guidance",
    functions={"cross_attention": 10, "apply_cfg": 7, "guidance_norms": 3, "generate_guidance_sweep": 10},
    manual={"answer_cfg_predictions": 1, "answer_guidance_reflection": 2},
    experiments=("guidance_sweep_images",),
    # The three figures (two thirds of the run's time, drawn for no one), the model load and the
    # student's own sweep and picture.
    definitions_only=("heatmap_demo", "token_maps_demo", "cfg_norm_plot", "load_pipeline",
                      "guidance_sweep_images"),
    visible_tests={"test_cross_attention_shape": 1, "test_cross_attention_rows": 1, "test_apply_cfg_w0": 1,
                   "test_apply_cfg_w1": 1, "test_cfg_norms": 1, "test_generate_guidance_sweep": 2},
    uses_pipeline=True,
    reference_calls=REFERENCE_CALLS,
    # Its notebook takes its set-up, its hidden-check cells and Exercise 4's offline stand-in from the course
    # library, which the release ships beside it.
    ships_library=True,
    packages=("diffusers",),
    order=1,
)
