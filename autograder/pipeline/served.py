"""The workers' end of the grading run's pipeline server (server.py): calls sent over an authenticated socket."""
from __future__ import annotations

import os
import threading
import time
from multiprocessing.connection import Client

from autograder.pipeline.spec import PipelineUnavailable
from autograder.sandbox.student_process import GraderFailure

ADDRESS = "AUTOGRADER_PIPELINE_SERVER"
KEY = "AUTOGRADER_PIPELINE_KEY"


class ServedPipeline:
    """What sd_pipeline.load returns in a worker when a server runs: the pipeline, a socket away."""

    def __init__(self, spec):
        self.spec = spec
        self.resolution, self.load_seconds = _ask("load", spec)

    def generate(self, prompt, guidance_scale, num_inference_steps, generator_state, options):
        generation = _ask("generate", self.spec, prompt, guidance_scale, num_inference_steps, generator_state,
                          options)
        generation.image.flags.writeable = generation.final_state.flags.writeable = False
        return generation


_connection = None   # this worker's, opened on first use
_asking = threading.Lock()


def _ask(*request):
    global _connection
    with _asking:
        try:
            if _connection is None:
                _connection = _connect(os.environ[ADDRESS], bytes.fromhex(os.environ[KEY]))
            _connection.send(request)
            kind, answer = _connection.recv()
        except (EOFError, OSError) as error:
            _connection = None
            raise GraderFailure(f"the grading run's pipeline server stopped ({type(error).__name__})") from None
    if kind == "unavailable":
        raise PipelineUnavailable(answer)
    if kind == "error":
        raise GraderFailure(f"the grading run's pipeline server failed: {answer}")
    return answer


def _connect(address: str, key: bytes, patience: float = 60.0):
    deadline = time.monotonic() + patience
    while True:
        try:
            return Client(address, family="AF_UNIX", authkey=key)
        except (FileNotFoundError, ConnectionRefusedError):   # the server is still starting
            if time.monotonic() > deadline:
                raise GraderFailure("the grading run's pipeline server did not start") from None
            time.sleep(0.05)
