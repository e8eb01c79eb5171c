"""Two deployments sharing a Redis or a host never see each other's sessions (issue 22: they
shared run locks by session id, and `$TMPDIR/agentlog-workspaces/<session>`, so deleting a
session in one wiped the other's live files). Redis wake-ups and the default workspace root are
namespaced by the database's identity: the same for every instance on one database, different
for another. Redis is a private redis-server."""

from __future__ import annotations

import tempfile
from pathlib import Path

from agentlog.infra.agent.run.runner import open_agent_runner
from agentlog.infra.store.opening import open_store
from agentlog.infra.store.store import Store
from tests.faults.servers import PrivateRedis


def channel_of(store: Store) -> str:
    return str(store.wakeups.channel)


async def test_deployments_on_one_redis_and_host_are_apart_and_instances_of_one_are_not(
    tmp_path: Path, postgres_url: str, private_redis: PrivateRedis
) -> None:
    redis = private_redis.url
    async with (
        open_store(f"sqlite:///{tmp_path / 'a.db'}", redis_url=redis) as a1,
        open_store(f"sqlite:///{tmp_path / 'a.db'}", redis_url=redis) as a2,
        open_store(f"sqlite:///{tmp_path / 'b.db'}", redis_url=redis) as b,
        open_store(postgres_url, redis_url=redis) as p1,
        open_store(postgres_url, redis_url=redis) as p2,
    ):
        channels = [channel_of(s) for s in (a1, a2, b, p1, p2)]
        assert channels[0] == channels[1] and channels[3] == channels[4]
        assert len({channels[0], channels[2], channels[3]}) == 3, channels

        roots = []
        for store in (a1, a2, b, p1):
            async with open_agent_runner(store) as runner:
                roots.append(runner.workspace_root)
        shared = Path(tempfile.gettempdir()) / "agentlog-workspaces"
        assert all(root.parent == shared for root in roots), roots
        assert roots[0] == roots[1]
        assert len({roots[0], roots[2], roots[3]}) == 3, roots
