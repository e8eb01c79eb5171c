"""Long-running tools: submit a job, then poll it until it ends, while heartbeats keep flowing.

The AutoGPT copilot's case: jobs of 5-30 minutes run behind a load balancer that cuts any
stream after 5 minutes, so the tool never holds one request open. It submits the job, then
asks for its status on a timer:
- a wall-clock deadline on time.monotonic() (immune to clock changes), after which the job is
  cancelled and the call fails;
- transient status errors (a 502, a reset connection) are retried a bounded number of times in
  a row, with exponential backoff; a success resets the count;
- a state the poller does not know fails at once: guessing would hide a changed API.

`InProcessJobService` is the job service of the demo (and of tests); a real deployment puts an
HTTP client behind the same `JobService` protocol. `demo_mcp_server` serves the tools the
scripted model's scenarios call (`mcp__demo__add`, `mcp__demo__slow_op`) as the in-process MCP
server "demo"; `slow_op` is such a submitted-and-polled job.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from claude_agent_sdk import McpSdkServerConfig

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
KNOWN_STATES = frozenset({QUEUED, RUNNING, SUCCEEDED, FAILED})


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: str
    result: Any = None
    error: str | None = None


class JobError(Exception):
    """The job did not produce a result; the message is what the model is told."""


class JobFailed(JobError):
    pass


class JobTimedOut(JobError):
    pass


class UnknownJobState(JobError):
    pass


class JobStatusUnavailable(JobError):
    """Status calls kept failing transiently past the retry budget."""


class TransientJobError(Exception):
    """A status call failed in a way worth retrying (raised by JobService adapters)."""


class JobService(Protocol):
    async def submit(self, kind: str, params: dict[str, Any]) -> str: ...

    async def status(self, job_id: str) -> JobStatus: ...

    async def cancel(self, job_id: str) -> None:
        """Best effort. Called from a cancelled task too: it should not need to await."""
        ...


@dataclass(frozen=True)
class PollPolicy:
    deadline_seconds: float = 30 * 60
    interval_seconds: float = 2.0
    max_transient_retries: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0

    def backoff(self, failures: int) -> float:
        return float(min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (failures - 1)))


async def wait_for_job(
    service: JobService,
    job_id: str,
    policy: PollPolicy,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> JobStatus:
    """Poll `job_id` until it succeeds (returned) or fails, times out, reports an unknown
    state or stays unreachable (JobError). The job is cancelled when the wait is given up."""
    deadline = clock() + policy.deadline_seconds
    failures = 0
    try:
        while True:
            try:
                status = await service.status(job_id)
            except TransientJobError as exc:
                failures += 1
                if failures > policy.max_transient_retries:
                    raise JobStatusUnavailable(
                        f"job {job_id}: status unavailable after {failures} attempts: {exc}"
                    ) from exc
                delay = policy.backoff(failures)
            else:
                failures = 0
                if status.state == SUCCEEDED:
                    return status
                if status.state == FAILED:
                    raise JobFailed(f"job {job_id} failed: {status.error or 'no reason given'}")
                if status.state not in KNOWN_STATES:
                    raise UnknownJobState(f"job {job_id} is in an unknown state {status.state!r}")
                delay = policy.interval_seconds
            remaining = deadline - clock()
            if remaining <= 0:
                raise JobTimedOut(
                    f"job {job_id} did not finish within {policy.deadline_seconds:g} s"
                )
            await sleep(min(delay, remaining))
    except BaseException as exc:
        if not isinstance(exc, (JobFailed, UnknownJobState)):
            # Timed out, unreachable or cancelled (the run was interrupted): stop the job.
            with contextlib.suppress(Exception):
                await service.cancel(job_id)
        raise


JobHandler = Callable[[dict[str, Any]], Awaitable[Any]]


async def _sleep_job(params: dict[str, Any]) -> str:
    seconds = float(params.get("seconds", 0))
    await asyncio.sleep(seconds)
    return f"waited {seconds:g} s"


class InProcessJobService:
    """Jobs as asyncio tasks of this process, by kind ("sleep" is built in)."""

    def __init__(self, handlers: dict[str, JobHandler] | None = None) -> None:
        self.handlers: dict[str, JobHandler] = {"sleep": _sleep_job, **(handlers or {})}
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._started: set[str] = set()

    async def submit(self, kind: str, params: dict[str, Any]) -> str:
        handler = self.handlers.get(kind)
        if handler is None:
            raise JobFailed(f"no job kind {kind!r}")
        job_id = "job_" + secrets.token_hex(8)

        async def run() -> Any:
            self._started.add(job_id)
            return await handler(params)

        self._tasks[job_id] = asyncio.create_task(run(), name=f"agentlog-job-{job_id}")
        return job_id

    async def status(self, job_id: str) -> JobStatus:
        task = self._tasks.get(job_id)
        if task is None:
            return JobStatus(job_id, FAILED, error="no such job")
        if not task.done():
            return JobStatus(job_id, RUNNING if job_id in self._started else QUEUED)
        if task.cancelled():
            return JobStatus(job_id, FAILED, error="cancelled")
        error = task.exception()
        if error is not None:
            return JobStatus(job_id, FAILED, error=str(error) or type(error).__name__)
        return JobStatus(job_id, SUCCEEDED, result=task.result())

    async def cancel(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()  # no await: this runs inside cancelled tasks

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()


def _text(text: str, *, is_error: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
    if is_error:
        result["is_error"] = True
    return result


def demo_mcp_server(jobs: JobService, policy: PollPolicy) -> McpSdkServerConfig:
    """The in-process MCP server "demo": `add`; `slow_op`, a job submitted and polled; and
    `publish`, a harmless stand-in for an action that needs a person's approval."""
    # Imported here: the SDK takes most of a second to import, and the operator commands,
    # which read this module's PollPolicy through the settings, never start an agent.
    from claude_agent_sdk import create_sdk_mcp_server, tool

    @tool("add", "Add two numbers", {"a": float, "b": float})
    async def add(args: dict[str, Any]) -> dict[str, Any]:
        total = float(args["a"]) + float(args["b"])
        return _text(str(int(total)) if total.is_integer() else str(total))

    @tool(
        "slow_op",
        "Run a slow operation: submits a job that takes `seconds`, then waits for it",
        {"seconds": float},
    )
    async def slow_op(args: dict[str, Any]) -> dict[str, Any]:
        seconds = float(args["seconds"])
        job_id = await jobs.submit("sleep", {"seconds": seconds})
        try:
            status = await wait_for_job(jobs, job_id, policy)
        except JobError as exc:
            return _text(str(exc), is_error=True)
        return _text(str(status.result))

    @tool("publish", "Publish a text (a demo: it only answers `published: <text>`)", {"text": str})
    async def publish(args: dict[str, Any]) -> dict[str, Any]:
        return _text(f"published: {args['text']}")

    return create_sdk_mcp_server("demo", tools=[add, slow_op, publish])
