"""One pytest session for a worker's run of submissions of one assignment.

A session's own work (the configuration, some 35 plugins registered and their fixtures parsed, the checks
collected) cost 50-60 ms of CPU per submission, about half of what the checks themselves cost a worker.
So a worker keeps its session while the next submission is of the same assignment with the same options:
each submission runs every collected check through pytest's own protocol, and the last check's teardown
ends every fixture (the session-scoped `student` holds that submission's sandboxed processes), so the
next submission starts from fresh fixtures, as in a session of its own. A grader error outside the
checks ends the session; the next submission gets a new one.
"""
from __future__ import annotations

from typing import Callable

import pytest

from autograder.grading import pytest_plugin


def session_key(request: dict) -> tuple:
    return request["assignment"], tuple(request.get("options", []))


class SessionOfSubmissions:
    """pytest plugin: grades `first`, then each request `receive` gives while it fits this session."""

    def __init__(self, first: dict, receive: Callable[[], dict | None], answer: Callable[[dict], None]):
        self.request = first   # the one being graded; once the session ends, the next one (None: no more)
        self.receive, self.answer = receive, answer
        self.answered = False  # whether the session reached its loop (else the caller answers for `first`)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return None   # pytest's own loop reports the collection errors
        key = session_key(self.request)
        self.answered = True
        while True:
            try:
                reply = self._grade(session, self.request)
            except BaseException as error:   # a grader bug: reported for this submission, a new session for the next
                self._end_half_graded(session)
                self._answer_and_receive({"returncode": -1, "error": f"{type(error).__name__}: {error}"})
                return True
            self._answer_and_receive(reply)
            if self.request is None or session_key(self.request) != key:
                return True

    @staticmethod
    def _end_half_graded(session) -> None:
        """Before answering, as a session of its own would have: its fixtures (the sandboxed processes) end
        now, and the session's end writes no results for it (its folder is gone by then)."""
        session.config.stash[pytest_plugin.RESULTS].pop("started", None)
        try:
            session._setupstate.teardown_exact(None)   # what pytest's own session end does
        except BaseException:
            pass

    def _answer_and_receive(self, reply: dict) -> None:
        self.request = None   # where the answer cannot be sent, the grade command is gone: nothing more to grade
        self.answer(reply)
        self.request = self.receive()

    @staticmethod
    def _grade(session, request: dict) -> dict:
        config = session.config
        config.option.submission, config.option.results_json = request["notebook"], request["results_json"]
        pytest_plugin.start_results(config, config.stash[pytest_plugin.RESULTS].get("assignment"))
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:   # the worker's log: one heading per submission, its failures only
            reporter.stats.clear()
            reporter.write_line(f"== {request['notebook']}")
        session.testsfailed, session.shouldfail, session.shouldstop = 0, False, False   # --maxfail counts per submission
        for index, item in enumerate(session.items):
            item.user_properties = []   # a check's notes, and the output captured around it, are this submission's
            item._report_sections = []
            following = session.items[index + 1] if index + 1 < len(session.items) else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=following)
            if session.shouldfail or session.shouldstop:
                raise session.Interrupted(str(session.shouldfail or session.shouldstop))
        pytest_plugin.write_results(config)
        if reporter is not None:
            reporter.summary_errors()
            reporter.summary_failures()
        return {"returncode": int(session.testsfailed > 0)}
