"""A class graded in slices: which shard owns a submission, and what each shard's OUT folder says it holds.

`grade --shard I/N` keeps the submissions whose (assignment, student) hashes to I modulo N: stable under
re-runs, independent of file-system order and of the rest of the class (a late submission moves no one
else). Each shard writes OUT/shard.json; `merge` reads them all and refuses any set that does not cover
the class exactly once, graded by one grader.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from autograder.reports.report import OUTCOME_FILE, write_atomically

MANIFEST = "shard.json"


def parse(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N), shards counted from 0 as Slurm's array and Kubernetes' completion indices are."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise SystemExit(f"error: --shard takes I/N, such as 0/4 (got {text!r})") from None
    if not 0 <= index < count:
        raise SystemExit(f"error: --shard {text}: I counts from 0 to N-1 (0/{max(count, 1)} is the first shard)")
    return index, count


def owner(key: tuple[str, str], count: int) -> int:
    """The shard that grades this (assignment, student): a hash of the key alone."""
    return int.from_bytes(hashlib.sha256("\0".join(key).encode(errors="surrogateescape")).digest()[:8], "big") % count


def class_digest(keys: list[tuple[str, str]]) -> str:
    """One line that differs when two shards were given different classes (a late submission in between)."""
    return hashlib.sha256(json.dumps(sorted(keys)).encode(errors="surrogateescape")).hexdigest()[:16]


def write(out_dir: Path, shard: tuple[int, int], owned: list[tuple[str, str]], every: list[tuple[str, str]],
          grader: dict, reports: dict) -> None:
    """`reports`: the options that change what a shard writes but not a stored result (a run may resume with
    other values, as `grade` does; the shards of one class may not differ in them)."""
    write_atomically(out_dir / MANIFEST, json.dumps({
        "shard": shard[0], "of": shard[1], "grader": grader, "reports": reports,
        "class": {"submissions": len(every), "digest": class_digest(every)},
        "keys": sorted(owned)}, indent=1))


def refuse_another(out_dir: Path, shard: tuple[int, int] | None) -> None:
    """A shard's folder holds that shard alone: another slice, or the whole class, goes into a folder of its own."""
    held = manifest_of(out_dir)
    if held is not None:
        if (held["shard"], held["of"]) != shard:
            raise SystemExit(f"error: {out_dir} holds the results of shard {name(held)}: grade "
                             f"{'shard %d/%d' % shard if shard else 'the whole class'} into another --out")
        return
    if shard is None:
        return
    # No readable manifest: a whole class's results, a merge's, or this shard's with its shard.json damaged.
    strangers = [key for key in graded_keys(out_dir) if owner(key, shard[1]) != shard[0]]
    if strangers:
        more = f" and {len(strangers) - 1} more" if len(strangers) > 1 else ""
        raise SystemExit(f"error: {out_dir} holds results that shard {shard[0]}/{shard[1]} does not own "
                         f"({'/'.join(strangers[0])}{more}): a whole class's or another shard's; grade shard "
                         f"{shard[0]}/{shard[1]} into another --out")


def graded_keys(out_dir: Path) -> list[tuple[str, str]]:
    return sorted((path.parent.parent.name, path.parent.name) for path in Path(out_dir).glob(f"*/*/{OUTCOME_FILE}"))


def name(manifest: dict) -> str:
    return f"{manifest['shard']}/{manifest['of']}"


def manifest_of(folder: Path) -> dict | None:
    """The folder's shard.json with every field that coverage() compares, else None (no file, or one cut short
    or written by hand)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
        keys = [tuple(key) for key in manifest["keys"]]
        shard, count, grader = manifest["shard"], manifest["of"], manifest["grader"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (isinstance(shard, int) and isinstance(count, int) and 0 <= shard < count
            and isinstance(grader, dict) and {"code", "options"} <= set(grader)
            and isinstance(manifest.get("class"), dict)
            and all(len(key) == 2 and all(isinstance(part, str) for part in key) for key in keys)):
        return None
    return {**manifest, "keys": keys}


def read(folders: list[Path]) -> tuple[list[dict], str | None]:
    """Each folder's manifest (with its folder), or the one line saying why these shards cannot be merged."""
    manifests = []
    for folder in folders:
        manifest = manifest_of(folder)
        if manifest is None:
            return [], f"{folder} holds no shard's results (no readable {MANIFEST}): grade it with --shard I/N"
        manifests.append({**manifest, "folder": folder})
    return manifests, coverage(manifests)


def _differ(manifests: list[dict], what, saying: str) -> str | None:
    first = manifests[0]
    other = next((m for m in manifests if what(m) != what(first)), None)
    return other and f"shards {name(first)} ({first['folder']}) and {name(other)} ({other['folder']}) {saying}"


def _readable(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False


def coverage(manifests: list[dict]) -> str | None:
    """None when the shards are all of one split, one grader and one class, each key graded once and stored."""
    problem = (_differ(manifests, lambda m: m["of"], "split the class differently: merge shards of one --shard I/N")
               or _differ(manifests, lambda m: m["grader"]["code"],
                          "were graded by different grader versions: grade every shard with one checkout")
               or _differ(manifests, lambda m: (m["grader"]["options"], m.get("reports")),
                          "were graded with different options: grade every shard with one command line")
               or _differ(manifests, lambda m: m["class"],
                          "were given different submissions: grade every shard from the same copy of the class"))
    if problem:
        return problem
    count, indices, seen = manifests[0]["of"], {}, {}
    for manifest in manifests:
        if (twin := indices.setdefault(manifest["shard"], manifest)) is not manifest:
            return (f"shards overlap: {twin['folder']} and {manifest['folder']} are both shard {name(manifest)}: "
                    "give each shard's folder once")
        for key in manifest["keys"]:
            if key in seen:
                return (f"shards overlap: {'/'.join(key)} is in {seen[key]['folder']} (shard {name(seen[key])}) and "
                        f"in {manifest['folder']} (shard {name(manifest)}): give each shard's folder once")
            seen[key] = manifest
    missing = sorted(set(range(count)) - {m["shard"] for m in manifests})
    if missing:
        return (f"missing shards: {', '.join(f'{i}/{count}' for i in missing)}; grade them with "
                f"--shard I/{count} and give their folders too")
    for manifest in manifests:
        folder = manifest["folder"]
        unfinished = [key for key in manifest["keys"] if not _readable(folder.joinpath(*key) / OUTCOME_FILE)]
        if unfinished:
            return (f"shard {name(manifest)} ({manifest['folder']}) is unfinished: {len(unfinished)} of its "
                    f"{len(manifest['keys'])} submissions have no results; run its grade command again (it resumes)")
    return None
