"""Records tests/agent/fixtures/defer-resume.json: what the bundled CLI does with a call a
PreToolUse hook deferred, when the session is resumed. Not a test; run it by hand:

    .venv/bin/python tests/agent/record_defer_resume.py allow   # then: deny

Turn 1 answers `defer` for mcp__demo__publish; turn 2 starts a new CLI with `resume=<id>` and
sends no prompt, and the hook answers allow (or deny). Every frame in both directions is kept.
"""

# ruff: noqa
import asyncio, json, sys, os, tempfile, pathlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from claude_agent_sdk import ClaudeSDKClient, ClaudeAgentOptions, HookMatcher
from claude_agent_sdk._internal.transport.subprocess_cli import SubprocessCLITransport
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.run.jobs import demo_mcp_server, InProcessJobService, PollPolicy

frames = []


class Rec(SubprocessCLITransport):
    async def write(self, data):
        for line in data.splitlines():
            if line.strip():
                frames.append({"dir": "sdk->cli", "msg": json.loads(line)})
        return await super().write(data)

    async def read_messages(self):
        async for m in super().read_messages():
            frames.append({"dir": "cli->sdk", "msg": m})
            yield m


async def turn(model, home, cwd, decision, prompt, resume=None, session_id=None, tag=""):
    hook_calls = []

    async def pre(data, tool_use_id, ctx):
        hook_calls.append((data.get("tool_name"), tool_use_id))
        if data.get("tool_name") == "mcp__demo__publish":
            out = {"hookEventName": "PreToolUse", "permissionDecision": decision}
            if decision != "allow":
                out["permissionDecisionReason"] = f"{decision} by experiment"
            return {"hookSpecificOutput": out}
        return {}

    opts = ClaudeAgentOptions(
        env=model.cli_env(home),
        cwd=cwd,
        setting_sources=[],
        include_partial_messages=False,
        model="claude-sonnet-4-5",
        allowed_tools=["mcp__demo__publish"],
        mcp_servers={
            "demo": demo_mcp_server(InProcessJobService(), PollPolicy(interval_seconds=0.25))
        },
        hooks={"PreToolUse": [HookMatcher(hooks=[pre])]},
        resume=resume,
        session_id=session_id,
    )
    frames.append({"dir": "note", "msg": {"turn": tag}})
    t = Rec(prompt=None if False else "", options=opts) if False else None
    msgs = []
    async with ClaudeSDKClient(opts, transport=Rec(prompt=_empty(), options=opts)) as c:
        if prompt is not None:
            await c.query(prompt)
        async for m in c.receive_response():
            msgs.append(m)
    print("== turn", tag, "hook calls:", hook_calls)
    for m in msgs:
        print("  ", type(m).__name__, str(m)[:400])
    return msgs


async def _empty():
    if False:
        yield {}


async def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "allow"
    async with ScriptedModel() as model:
        base = pathlib.Path(tempfile.mkdtemp())
        home = base / "home"
        home.mkdir()
        cwd = base / "ws"
        cwd.mkdir()
        sid = "11111111-2222-4333-8444-555555555555"
        await turn(
            model,
            home,
            str(cwd),
            "defer",
            '[scenario:approval] publish "hello world"',
            session_id=sid,
            tag="1-defer",
        )
        global deferred_transcript
        deferred_transcript = [
            json.loads(l)
            for p in (home / ".claude" / "projects").rglob("*.jsonl")
            for l in p.read_text().splitlines()
        ]
        deferred_transcript = [
            l
            for l in deferred_transcript
            if l.get("type") in ("user", "assistant", "attachment")
            and (
                l.get("type") != "attachment" or l["attachment"].get("type") == "hook_deferred_tool"
            )
        ]
        for p in []:
            print("TRANSCRIPT", p)
            for line in p.read_text().splitlines():
                d = json.loads(line)
                print("   ", d.get("type"), json.dumps(d)[:600])
        second_prompt = sys.argv[2] if len(sys.argv) > 2 else None
        await turn(model, home, str(cwd), mode, second_prompt, resume=sid, tag="2-resume-" + mode)
        for p in []:
            print("TRANSCRIPT AFTER", p)
            for line in p.read_text().splitlines():
                d = json.loads(line)
                print("   ", d.get("type"), json.dumps(d)[:300])
        print("MODEL REQUESTS", len(getattr(model, "requests", [])))
    import claude_agent_sdk

    json.dump(
        {
            "sdk_version": claude_agent_sdk.__version__,
            "resumed_with": mode,
            "frames": frames,
            "transcript_after_defer": deferred_transcript,
        },
        open(f"/tmp/wt12exp/fixture-{mode}.json", "w"),
        indent=None,
    )


asyncio.run(main())
