"""A pytest plugin that plays a grader bug in the middle of a submission's checks, for tests/test_grading.py:
loaded with `-p tests.grader_bug_plugin`, it raises after the third check of a notebook in a folder named
grader_bug, while that submission's sandboxed processes are running."""
import pytest


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    submission = str(pytest_runtest_logreport.config.getoption("--submission"))
    if report.when == "call" and "/grader_bug/" in submission:
        pytest_runtest_logreport.calls = getattr(pytest_runtest_logreport, "calls", 0) + 1
        if pytest_runtest_logreport.calls == 3:
            raise RuntimeError("a bug in the grader, mid-submission")


def pytest_configure(config):
    pytest_runtest_logreport.config = config
