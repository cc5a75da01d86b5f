"""`merge`: the folders of a class graded in shards (`grade --shard I/N`) -> one folder, as one grade run writes it."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from autograder import assignments
from autograder.cli.report import class_reports_after
from autograder.intake.discover import OUTPUT_MARKER
from autograder.reports import grader_errors, regrade_diff, report, shards

MERGED = "merged.json"   # what an earlier merge wrote: its folder may be merged into again
EARLIER = ".earlier-merge-"   # that merge's results, moved aside while this one is written


def run(args) -> int:
    manifests, problem = shards.read([Path(p) for p in args.shards])
    out_dir = Path(args.out)
    if not problem and out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MERGED).is_file():
        problem = f"{out_dir} is not empty and holds no earlier merge: merge into a new folder"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"{EARLIER}*"):   # left by a merge that was killed midway
        shutil.rmtree(stale)
    earlier = Path(tempfile.mkdtemp(prefix=EARLIER, dir=out_dir))
    for name in assignments.ASSIGNMENTS:   # an earlier merge's students, some perhaps no longer in the class
        if (out_dir / name).is_dir():
            shutil.move(out_dir / name, earlier / name)
    (out_dir / OUTPUT_MARKER).touch()
    owned = [(manifest["folder"], key) for manifest in manifests for key in manifest["keys"]]
    for folder, key in owned:
        shutil.copytree(folder.joinpath(*key), out_dir.joinpath(*key))
    # As a regrade does: when this merge changed results, the class report diffs against what it replaced.
    if any(earlier.iterdir()) and regrade_diff.digest(earlier) != regrade_diff.digest(out_dir):
        regrade_diff.keep_previous(out_dir, list(assignments.ASSIGNMENTS), source=earlier)
    shutil.rmtree(earlier)
    first = manifests[0]
    report.write_atomically(out_dir / MERGED, json.dumps({
        "of": first["of"], "grader": first["grader"], "class": first["class"],
        "shards": {shards.name(m): str(m["folder"]) for m in sorted(manifests, key=lambda m: m["shard"])}}, indent=1))
    graded = {assignment for _, (assignment, _) in owned}
    print(report.write_class(out_dir, graded))
    outcomes = {key: json.loads((out_dir.joinpath(*key) / report.OUTCOME_FILE).read_text()) for _, key in owned}
    failed = [("/".join(key), outcome) for key, outcome in sorted(outcomes.items()) if outcome.get("grader_failed")]
    log = grader_errors.write(out_dir, failed)
    class_reports_after(out_dir, sorted(graded))
    print(f"\n{len(owned)} submissions from {first['of']} shards merged into {out_dir}")
    if log:
        print(f"grader errors on {len(failed)} submissions, not graded: {', '.join(name for name, _ in failed)}; "
              f"why: {log} (run their shards' grade commands again, then merge again)", file=sys.stderr)
    return 2 if log else 0


def register(commands) -> None:
    merge = commands.add_parser("merge", help="assemble the folders of a class graded in shards (grade --shard I/N)",
                                description="Check that the shards' folders cover the class once, graded by one grader "
                                            "with one command line, then write what one grade run would: each "
                                            "submission's reports, each assignment's grades.csv and class report.")
    merge.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="the --out folder of each shard")
    merge.add_argument("--out", required=True, metavar="DIR",
                       help="where to write the merged class: a new folder, or one merged into before")
    merge.set_defaults(run=run)
