"""The long-running job tool: the poller's edge cases on a fake clock, and the in-process jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from agentlog.infra.agent.run.jobs import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    InProcessJobService,
    JobFailed,
    JobStatus,
    JobStatusUnavailable,
    JobTimedOut,
    PollPolicy,
    TransientJobError,
    UnknownJobState,
    wait_for_job,
)


@dataclass
class FakeClock:
    now: float = 100.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeJobs:
    """Answers status calls from a script: a state name, or an exception to raise."""

    def __init__(self, script: list[str | Exception]) -> None:
        self._script: Iterator[str | Exception] = iter(script)
        self.calls = 0
        self.cancelled: list[str] = []

    async def submit(self, kind: str, params: dict[str, object]) -> str:
        return "job-1"

    async def status(self, job_id: str) -> JobStatus:
        self.calls += 1
        step = next(self._script)
        if isinstance(step, Exception):
            raise step
        return JobStatus(job_id, step, result="done" if step == SUCCEEDED else None, error="boom")

    async def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


POLICY = PollPolicy(
    deadline_seconds=10, interval_seconds=2, max_transient_retries=2, backoff_seconds=0.5
)


async def test_polls_until_the_job_succeeds() -> None:
    clock, jobs = FakeClock(), FakeJobs([QUEUED, RUNNING, RUNNING, SUCCEEDED])

    status = await wait_for_job(jobs, "job-1", POLICY, clock=clock, sleep=clock.sleep)

    assert (status.state, status.result) == (SUCCEEDED, "done")
    assert clock.sleeps == [2, 2, 2]
    assert jobs.cancelled == []


async def test_a_failed_job_fails_the_call_with_its_error() -> None:
    clock, jobs = FakeClock(), FakeJobs([RUNNING, FAILED])
    with pytest.raises(JobFailed, match="job job-1 failed: boom"):
        await wait_for_job(jobs, "job-1", POLICY, clock=clock, sleep=clock.sleep)
    assert jobs.cancelled == []


async def test_the_deadline_is_on_the_monotonic_clock_and_cancels_the_job() -> None:
    clock, jobs = FakeClock(), FakeJobs([RUNNING] * 100)

    with pytest.raises(JobTimedOut, match="did not finish within 10 s"):
        await wait_for_job(jobs, "job-1", POLICY, clock=clock, sleep=clock.sleep)

    assert clock.now == 110  # never slept past the deadline
    assert sum(clock.sleeps) == 10
    assert jobs.calls == 6  # at 0, 2, 4, 6, 8 and a last look at the deadline
    assert jobs.cancelled == ["job-1"]


async def test_transient_errors_are_retried_with_backoff_and_the_count_resets() -> None:
    flaky = TransientJobError("502 from the load balancer")
    clock, jobs = FakeClock(), FakeJobs([flaky, flaky, RUNNING, flaky, flaky, SUCCEEDED])

    status = await wait_for_job(jobs, "job-1", POLICY, clock=clock, sleep=clock.sleep)

    assert status.state == SUCCEEDED
    assert clock.sleeps == [0.5, 1.0, 2, 0.5, 1.0]


async def test_too_many_transient_errors_in_a_row_give_up_and_cancel() -> None:
    flaky = TransientJobError("connection reset")
    clock, jobs = FakeClock(), FakeJobs([RUNNING, flaky, flaky, flaky, SUCCEEDED])

    with pytest.raises(JobStatusUnavailable, match="after 3 attempts: connection reset"):
        await wait_for_job(jobs, "job-1", POLICY, clock=clock, sleep=clock.sleep)

    assert jobs.calls == 4
    assert jobs.cancelled == ["job-1"]


async def test_an_unknown_state_fails_at_once() -> None:
    clock, jobs = FakeClock(), FakeJobs([QUEUED, "paused", RUNNING])

    with pytest.raises(UnknownJobState, match="unknown state 'paused'"):
        await wait_for_job(jobs, "job-1", POLICY, clock=clock, sleep=clock.sleep)

    assert jobs.calls == 2
    assert clock.sleeps == [2]


async def test_other_errors_are_not_retried() -> None:
    clock, jobs = FakeClock(), FakeJobs([ValueError("bad response")])
    with pytest.raises(ValueError, match="bad response"):
        await wait_for_job(jobs, "job-1", POLICY, clock=clock, sleep=clock.sleep)
    assert jobs.cancelled == ["job-1"]


async def test_an_interrupted_wait_cancels_the_in_process_job() -> None:
    jobs = InProcessJobService()
    job_id = await jobs.submit("sleep", {"seconds": 30})
    waiting = asyncio.create_task(wait_for_job(jobs, job_id, PollPolicy(interval_seconds=0.01)))
    await asyncio.sleep(0.05)
    assert (await jobs.status(job_id)).state == RUNNING

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)

    assert await jobs.status(job_id) == JobStatus(job_id, FAILED, error="cancelled")
    await jobs.close()


async def test_in_process_jobs_report_their_result_and_errors() -> None:
    async def explode(params: dict[str, object]) -> object:
        raise RuntimeError("disk full")

    jobs = InProcessJobService({"explode": explode})
    ok = await jobs.submit("sleep", {"seconds": 0.01})
    bad = await jobs.submit("explode", {})
    policy = PollPolicy(interval_seconds=0.01)

    assert (await wait_for_job(jobs, ok, policy)).result == "waited 0.01 s"
    with pytest.raises(JobFailed, match="disk full"):
        await wait_for_job(jobs, bad, policy)
    with pytest.raises(JobFailed, match="no job kind 'nope'"):
        await jobs.submit("nope", {})
    assert (await jobs.status("job_unknown")).state == FAILED
    await jobs.close()
