"""A team's own agents, described as `claude_agent_sdk.ClaudeAgentOptions` and hosted by agentlog.

A team imports `AgentContext` from here to type the argument of its agent function.
"""

from agentlog.infra.agent.agents.context import AgentContext

__all__ = ["AgentContext"]
