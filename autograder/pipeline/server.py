"""One text-to-image pipeline for a whole grading run, shared by its workers; trusted, outside the sandbox.

Loaded in every grading worker, Exercise 4's pipeline cost each of them diffusers' import (3.4 s of
CPU), the load and the reference images, and on a GPU each held its own copy of the model. The grade
command starts this process before its workers instead: it loads the pipeline while they start, and
their checks send it the calls they need (sd_pipeline.load and generate hand them over). Calls run in
lanes (lanes.py): on a CPU, one process per worker, forked from this one once the pipeline is loaded,
each with the CPU share the worker would have had (cpu_share.py); on a GPU, one at a time. What was made
once is remembered for every worker (sd_pipeline.generate), and such answers wait for no running call.

Only grader processes can reach it: the socket lies in a folder only the grader's user can open, and
a connection must prove it holds the key in the workers' environment, which sandboxes never inherit.
"""
from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import secrets
import threading
from multiprocessing import AuthenticationError
from multiprocessing.connection import Listener
from pathlib import Path

from autograder.pipeline import lanes, sd_pipeline
from autograder.pipeline.served import ADDRESS, KEY
from autograder.sandbox import start_slots


class Server:
    """The grade command's handle on the server process."""

    def __init__(self, folder: Path, spec, require_gpu: bool, environment: dict[str, str], log: Path | None = None,
                 reference_calls=()):
        """`folder` must be one only the grader's user can open; `environment` holds the CPU share;
        `reference_calls` are made as soon as the pipeline is loaded (Assignment.reference_calls)."""
        self.spec = spec
        self.environment = {ADDRESS: str(folder / "pipeline.sock"), KEY: secrets.token_hex(32)}
        # A fresh Python, not a fork of the grading template (template.py): it imports torch itself (~1 s of
        # CPU) while a CPU would otherwise wait for the template's imports, so that its import of diffusers,
        # the longest chain of a run's start, begins at once instead of 1.5 s later.
        context = multiprocessing.get_context("spawn")
        stop, self._stop = context.Pipe(duplex=False)
        self.process = context.Process(target=serve, daemon=True, args=(
            spec.model, spec.device, require_gpu, stop,
            {"OMP_WAIT_POLICY": "PASSIVE", **environment, **self.environment}, str(log) if log else None,
            tuple(reference_calls)))
        self.process.start()
        stop.close()

    def close(self):
        self._stop.close()   # its signal to stop
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _answer(request):
    verb, spec, *arguments = request
    try:
        if verb == "load":
            pipe = sd_pipeline.load(spec)
            return "ok", (sd_pipeline.native_resolution(pipe), sd_pipeline.load_seconds[spec])
        if verb == "generate":
            return "ok", sd_pipeline.generate(sd_pipeline.load(spec), *arguments)
        return "error", f"unknown request {verb!r}"
    except sd_pipeline.PipelineUnavailable as reason:
        return "unavailable", str(reason)
    except Exception as error:   # a grader problem: the worker reports a grader error, the server goes on
        return "error", f"{type(error).__name__}: {error}"


def _load_for_lanes(spec, require_gpu: bool):
    """The pipeline, loaded with torch on one thread: a fork (a LaneProcess) of a process whose OpenMP pool has
    run would hang; each lane takes its own share of the CPUs at its first call (cpu_share.py)."""
    import torch

    torch.set_num_threads(1)
    return sd_pipeline.load_for_grading(spec, require_gpu)


def serve(model: str, device: str, require_gpu: bool, stop, environment: dict[str, str], log: str | None,
          reference_calls=()):
    from autograder.grading import template

    # Imports and load without the collector (sd_pipeline._load says why). The imports' objects are frozen before
    # the load, so that the collection after it walks only what the load made (benchmarks/start_imports.py: 2 ms
    # with the tiny pipeline, against 318 ms after the imports alone).
    gc.disable()
    template.become(environment, log)
    try:
        from diffusers import StableDiffusionPipeline  # noqa: F401
    except ImportError:   # the load meets it and reports it
        pass
    gc.freeze()
    # Popped: this process loads the pipeline itself (sd_pipeline.load would otherwise ask the server).
    listener = Listener(os.environ.pop(ADDRESS), family="AF_UNIX", authkey=bytes.fromhex(os.environ.pop(KEY)))

    def serve_connection(connection):
        with connection:
            while True:
                try:
                    request = connection.recv()
                except (EOFError, OSError):
                    return
                connection.send(_answer(request))

    def accept():
        while True:
            try:
                connection = listener.accept()
            except (AuthenticationError, EOFError, ConnectionError):   # a client without the key, or gone
                continue
            threading.Thread(target=serve_connection, args=(connection,), daemon=True).start()

    try:   # loaded while the workers start: what their checks will ask for first
        pipe, _ = _load_for_lanes(sd_pipeline.PipelineSpec(model, device), require_gpu)
    except RuntimeError:   # --require-gpu without a GPU: each worker's check reports it
        pipe = None
    finally:
        start_slots.pipeline_loaded()
        # What the load left in cycles goes first: a view of nearly every weight as loaded, which after the move
        # to a GPU would keep the whole CPU copy alive for the run if frozen. The lanes forked next never walk
        # (or copy the pages of) what is left.
        gc.collect()
        gc.freeze()
        gc.enable()
    if pipe is not None and not lanes.on_gpu(pipe) and lanes.wanted() > 1:
        lanes.fork_processes(pipe, sd_pipeline.make_image)   # before the first thread of ours
    # Workers that connect before this wait in connect(): their first request needs the pipeline anyway.
    threading.Thread(target=accept, daemon=True).start()
    if pipe is not None:   # before the workers ask for them, side by side (their first sweeps wait for these)
        sd_pipeline.make_ahead(pipe, reference_calls)
    try:
        stop.recv_bytes()   # nothing comes: it ends when the grade command closes the pipe
    except EOFError:
        pass
    atexit._run_exitfuncs()   # multiprocessing's finalizers: the progress bars' locks are given back
    os._exit(0)   # no interpreter teardown with torch and diffusers loaded
