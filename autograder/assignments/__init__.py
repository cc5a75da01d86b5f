"""The course's assignments, each declared once: its notebook, graded functions, points and checks.

Everything else reads this: the grader picks an assignment's checks folder, the reports list its
manually graded answers, the nbgrader sync fills the hidden-check slots of its source notebook,
and the tests hold the check markers and the notebook's slot cells to these points.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
COURSE_ROOT = HERE.parent.parent   # exercises/, release/ and solutions/ sit here


@dataclass(frozen=True)
class Assignment:
    name: str                       # nbgrader's assignment id: exercises/<name>/, submitted/<student>/<name>/
    title: str
    functions: dict[str, float]     # graded function -> points of its hidden checks
    manual: dict[str, float] = field(default_factory=dict)   # grade_id of a hand-graded answer cell -> points
    # grade_ids of the student's own code cells that nothing grades (an experiment whose written
    # reflection is graded by hand): every other answer cell defines a graded function.
    experiments: tuple[str, ...] = ()
    # grade_ids of cells the grading run does not need to do, only to define: a model load, training, a
    # figure nobody sees there, the student's own Exercise 4 picture. Their imports, functions, classes
    # and call-free assignments run (submission.definitions_of); the rest does not. Locked or not.
    definitions_only: tuple[str, ...] = ()
    # grade_id of each visible test cell -> the points of the hidden checks that ask the same (those marked
    # visible=True): what a GitHub Classroom push reports before the hidden checks have run.
    visible_tests: dict[str, float] = field(default_factory=dict)
    # Whether its notebook imports the course library: the release then ships the student edition
    # (student_library.py) beside it.
    ships_library: bool = False
    # grade_ids a GitHub Classroom push leaves out when it runs the visible tests (None: definitions_only,
    # when the visible tests need none of those cells).
    push_skips: tuple[str, ...] | None = None
    # Whether its checks run Exercise 4's text-to-image pipeline: the grade command then loads one for all
    # its workers (pipeline_server.py).
    uses_pipeline: bool = False
    # Whether its checks also run functions on PyTorch's meta device (a GPU's stand-in): the sandbox then
    # loads those kernels once (a second) instead of in every function's process.
    device_checks: bool = False

    @property
    def skipped_on_push(self) -> tuple[str, ...]:
        return self.definitions_only if self.push_skips is None else self.push_skips

    @property
    def notebook(self) -> str:
        """The file name students submit."""
        return f"{self.name}.ipynb"

    @property
    def release_notebook(self) -> Path:
        """What students got: its locked cells are the ones the grading run uses."""
        return COURSE_ROOT / "release" / self.name / self.notebook

    @property
    def checks_dir(self) -> Path:
        return HERE / self.name / "checks"

    @property
    def points(self) -> float:
        return sum(self.functions.values())

    @staticmethod
    def slot_id(function: str) -> str:
        """grade_id of the source notebook's cell that holds `function`'s hidden-check points for nbgrader."""
        return f"hidden_{function}"


ASSIGNMENTS: dict[str, Assignment] = {a.name: a for a in (
    Assignment(
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
    ),
    Assignment(
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
        device_checks=True,
        # Its visible tests need the text encoder (the stand-in, offline) and the demo layer; not training.
        push_skips=("train", "loss_plot", "sample_classes", "sample_scales", "sample_unseen"),
    ),
)}

# What a graded notebook may import: the grader's environment has these (requirements.lock), the
# notebooks' set-up text lists them, and an ImportError in student code names them.
STUDENT_PACKAGES = ("math", "numpy", "torch", "einops", "PIL", "matplotlib", "diffusers", "transformers")

ALL_GRADED_FUNCTIONS = frozenset(f for a in ASSIGNMENTS.values() for f in a.functions)


class UnknownAssignment(ValueError):
    pass


def get(name: str) -> Assignment:
    try:
        return ASSIGNMENTS[name]
    except KeyError:
        raise UnknownAssignment(f"unknown assignment {name!r}; the course has: {', '.join(ASSIGNMENTS)}") from None


def by_notebook_name(filename: str) -> Assignment | None:
    return next((a for a in ASSIGNMENTS.values() if a.notebook == filename), None)


def owning_checks_file(path: Path) -> Assignment | None:
    """The assignment whose checks folder holds `path`."""
    path = Path(path).resolve()
    return next((a for a in ASSIGNMENTS.values() if a.checks_dir in path.parents), None)


def guess_from_functions(defined: set[str]) -> Assignment | None:
    """The assignment whose graded functions a notebook defines most of (None when it defines none)."""
    best = max(ASSIGNMENTS.values(), key=lambda a: len(defined & set(a.functions)))
    return best if defined & set(best.functions) else None
