"""How many pipeline calls per second the grading run's pipeline server answers when its workers all ask at
once (not a test). Starts the server as the grade command does for N workers, on the stand-in pipeline,
and has N clients each ask for M images no one asked for before (so that none is answered from memory).

    python benchmarks/pipeline_lanes.py                 # 2 workers, 8 calls each
    python benchmarks/pipeline_lanes.py --workers 4 --calls 6 --size 128
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.pipeline import lanes, sd_pipeline, served, server  # noqa: E402


def main() -> None:
    # Here, not at the top: the server's spawned process runs this file again as its main module, and the
    # stand-in's torch must not load there before the server has set its environment (template.become).
    from autograder.pipeline.stand_in import build_tiny_pipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--calls", type=int, default=8, help="calls per worker")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--size", type=int, default=None, help="image height and width (default: the model's own)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "private"
        folder.mkdir(mode=0o700)
        build_tiny_pipeline(Path(scratch) / "tiny")
        spec = sd_pipeline.PipelineSpec(str(Path(scratch) / "tiny"), "cpu")
        running = server.Server(folder, spec, False, {lanes.LANES: str(args.workers), "OMP_NUM_THREADS": "1"})
        try:
            connections = [served._connect(running.environment[server.ADDRESS],
                                           bytes.fromhex(running.environment[server.KEY])) for _ in range(args.workers)]
            for connection in connections:
                connection.send(("load", spec))
                assert connection.recv()[0] == "ok"
            options = sd_pipeline.ImageOptions(height=args.size, width=args.size)
            seconds = []

            def ask(worker: int, connection):
                for call in range(args.calls):
                    state = sd_pipeline.fresh_generator_state(1000 * worker + call)
                    connection.send(("generate", spec, "a red fox", 5.0, args.steps, state, options))
                    kind, answer = connection.recv()
                    assert kind == "ok", answer
                    seconds.append(answer.seconds)

            started = time.perf_counter()
            threads = [threading.Thread(target=ask, args=pair) for pair in enumerate(connections)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
        finally:
            running.close()
    count = args.workers * args.calls
    print(f"{args.workers} workers x {args.calls} calls ({args.steps} steps, size {args.size or 'native'}): "
          f"{wall:.2f} s, {count / wall:.1f} calls/s; one call took {sum(seconds) / count:.3f} s on average")


if __name__ == "__main__":
    main()
