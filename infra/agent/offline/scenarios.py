"""What the scripted model says next: pure functions from a request's `messages` to a reply.

The scenario is chosen from the newest prompt: the last human-written text of the newest user
turn that is not only tool results. The CLI's `<system-reminder>` blocks and its
"[Request interrupted ...]" markers are not prompts and are skipped. A prompt that starts with
`[scenario:NAME]` selects NAME outright (the tag is dropped from the prompt); otherwise the first
row whose words appear in the prompt wins (case-insensitive):

| scenario         | prompt contains              | replies, step by step                      |
|------------------|------------------------------|--------------------------------------------|
| `model-error`    | "overloaded", "model error", | 4 text deltas, then an SSE `error` event   |
|                  | "api error"                  | (overloaded_error); any retry: HTTP 529    |
| `parallel-tools` | "add <a> and <b>" then       | 1. text + parallel `mcp__demo__add` {a, b} |
|                  | "read <path>" (defaults: 2,  |    and `Read` {file_path}                  |
|                  | 3, /definitely/missing.txt)  | 2. text: the sum, and what the read gave   |
| `long-tool`      | "slow op", "slow operation", | 1. `mcp__demo__slow_op` {"seconds": N}, N  |
|                  | "slow_op"                    |    from "for N seconds" (default 3)        |
|                  |                              | 2. text: it is done (or how it failed);    |
|                  |                              |    one interrupted by a server restart is  |
|                  |                              |    run once more first                     |
| `denied-tool`    | "denied", "deny",            | 1. `Bash` {"command": "echo hello"}        |
|                  | "not allowed"                | 2. text: acknowledges it was not allowed   |
| `bash`           | "bash", "shell",             | 1. `Bash` {"command": the fixed demo       |
|                  | "run `...`"                  |    command}, only when Bash is offered     |
|                  |                              | 2. text: summarises the output or denial   |
| `subagent`       | "subagent", "sub-agent"      | 1. `Agent` {prompt: SUBAGENT_TASK}: the    |
|                  |                              |    subagent runs `parallel-tools` itself   |
|                  |                              |    (`long-tool` with "for N seconds")      |
|                  |                              | 2. text: what the subagent reported        |
| `approval`       | "publish"                    | 1. `mcp__demo__publish` {"text": the first |
|                  |                              |    quoted text, else what follows publish} |
|                  |                              | 2. text: the output, or that it was not    |
|                  |                              |    allowed (denied by a person or policy)  |
| `system-prompt`  | (only by its tag)            | the system prompt it was sent, verbatim:   |
|                  |                              | every text block, up to 8,000 characters   |
| `append-then-slow` | (only by its tag)          | 1. `Bash` appends a line to                |
|                  |                              |    `side-effects.txt` (a fixed command)    |
|                  |                              | 2. `mcp__demo__slow_op` for N seconds      |
|                  |                              | 3. text: what each did (the crash drill)   |
| `text`           | anything else                | a thinking block, then a several-delta     |
|                  |                              | text answer on the prompt's topic          |

`[call:TOOL_NAME {json input}]` anywhere in the prompt comes before every scenario: the model
calls that tool (any the agent offers: built-in, MCP or a subagent's `Agent`) with that input,
then answers with a text quoting the tool's result. The call is made even when the request
does not list the tool: the CLI sends MCP tools "deferred" (behind its ToolSearch) yet runs
them when called, and answers an unknown name with an error result, which is quoted.

Every scenario is a function `Turn -> Reply`. A `Turn` says where the conversation is: the
prompt, the outcomes of the tool calls made since it, and how many times this exact request was
seen before (`attempt`, so a retry can be told from a first try). Ids, signatures, token counts
and the wire format belong to the server (`scripted_model.py`), not here.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agentlog.domain.rules.crash_continuation import CONTINUE_AFTER_CRASH_PROMPT

# -- replies -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thinking:
    """A thinking block; the server signs it."""

    text: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolCall:
    """A tool_use block; the server gives it a `toolu_...` id."""

    name: str
    input: dict[str, Any]


Block = Thinking | Text | ToolCall


@dataclass(frozen=True)
class Message:
    """A complete assistant message, streamed or returned whole."""

    blocks: tuple[Block, ...]

    @property
    def stop_reason(self) -> str:
        return "tool_use" if any(isinstance(b, ToolCall) for b in self.blocks) else "end_turn"


@dataclass(frozen=True)
class BrokenStream:
    """A stream that starts a text answer and then fails with an SSE `error` event."""

    text: str
    error_type: str = "overloaded_error"
    error_message: str = "Overloaded"


@dataclass(frozen=True)
class HttpError:
    """An API error answered before any stream, as the Messages API sends it."""

    status: int
    error_type: str
    error_message: str
    should_retry: bool = False  # sent as `x-should-retry`; the CLI retries only when true


Reply = Message | BrokenStream | HttpError


# -- reading the conversation ---------------------------------------------------------------------


@dataclass(frozen=True)
class ToolOutcome:
    """One tool call made since the prompt, with what came back for it."""

    name: str
    input: dict[str, Any]
    content: str
    is_error: bool


@dataclass(frozen=True)
class Turn:
    """Where the conversation stands when the model must speak."""

    prompt: str
    earlier_prompts: tuple[str, ...] = ()
    outcomes: tuple[ToolOutcome, ...] = ()
    rounds: int = 0  # assistant messages already sent since the prompt
    attempt: int = 0  # earlier requests with exactly these messages
    tools: frozenset[str] = frozenset()  # the tools the CLI offered in this request
    shell_command: str = ""  # what the shell scenario runs (see DEMO_SHELL_COMMAND)
    system: str = ""  # the request's system prompt, its text blocks joined
    # The image and document blocks of the prompt's message, as "image image/png 67 bytes".
    files: tuple[str, ...] = ()

    def outcome(self, name: str) -> ToolOutcome | None:
        return next((o for o in self.outcomes if o.name == name), None)


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


_REMINDER = re.compile(r"<system-reminder>.*?(</system-reminder>|$)", re.S)


# What the CLI says itself when a resumed session settled a deferred tool call.
_CONTINUE = "Continue from where you left off."


# What the CLI adds after an image it was sent: where it saved a copy for its tools.
_SAVED_IMAGE = "[Image: source: "


def _written_by_user(text: str) -> str:
    """The text without what the CLI adds to user turns and tool results: `<system-reminder>`
    sections anywhere, the "[Request interrupted ...]" marker, the resume prompt and the
    "[Image: source: <path>]" note after an image."""
    text = _REMINDER.sub("", text).strip()
    if text.startswith(("[Request interrupted", _SAVED_IMAGE)) or text == _CONTINUE:
        return ""
    # agentlog's prompt after a crash asks to go on with the turn: not a prompt of its own.
    if text == CONTINUE_AFTER_CRASH_PROMPT:
        return ""
    return text


def _files_of(message: dict[str, Any]) -> tuple[str, ...]:
    """What the model was shown besides text: each image or document block, its kind, media
    type and size in bytes (of its base64 data, decoded, or of its text)."""
    found = []
    for b in _blocks(message):
        source = b.get("source")
        if b.get("type") not in ("image", "document") or not isinstance(source, dict):
            continue
        data = source.get("data")
        if not isinstance(data, str):
            continue
        size = len(base64.b64decode(data)) if source.get("type") == "base64" else len(data.encode())
        found.append(f"{b['type']} {source.get('media_type')} {size} bytes")
    return tuple(found)


def _prompt_of(message: dict[str, Any]) -> str | None:
    if message.get("role") != "user":
        return None
    texts = [
        _written_by_user(b.get("text", "")) for b in _blocks(message) if b.get("type") == "text"
    ]
    texts = [t for t in texts if t]
    if not texts:
        return "" if _files_of(message) else None  # files sent without a word
    return texts[-1]


def _result_text(content: Any) -> str:
    if isinstance(content, list):
        content = "\n".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    if isinstance(content, str):
        return _written_by_user(content)
    return "" if content is None else json.dumps(content)


def read_turn(messages: Sequence[dict[str, Any]], *, attempt: int = 0) -> Turn:
    """Find the newest prompt and collect the tool calls and results that followed it."""
    prompt_at = None
    for i in range(len(messages) - 1, -1, -1):
        if _prompt_of(messages[i]) is not None:
            prompt_at = i
            break
    if prompt_at is None:
        return Turn(prompt="", attempt=attempt)
    earlier = tuple(p for m in messages[:prompt_at] if (p := _prompt_of(m)) is not None)
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    outcomes: list[ToolOutcome] = []
    rounds = 0
    for message in messages[prompt_at + 1 :]:
        if message.get("role") == "assistant":
            rounds += 1
            for b in _blocks(message):
                if b.get("type") == "tool_use":
                    calls[b.get("id", "")] = (b.get("name", ""), b.get("input") or {})
            continue
        for b in _blocks(message):
            if b.get("type") == "tool_result":
                name, tool_input = calls.get(b.get("tool_use_id", ""), ("", {}))
                outcomes.append(
                    ToolOutcome(
                        name=name,
                        input=tool_input,
                        content=_result_text(b.get("content")),
                        is_error=bool(b.get("is_error")),
                    )
                )
    return Turn(
        prompt=_prompt_of(messages[prompt_at]) or "",
        files=_files_of(messages[prompt_at]),
        earlier_prompts=earlier,
        outcomes=tuple(outcomes),
        rounds=rounds,
        attempt=attempt,
    )


# The shell scenario's command: shows where it runs (the sandbox's workspace, its own user).
DEMO_SHELL_COMMAND = "echo hello from the sandbox; pwd; id -u"

# -- choosing a scenario ---------------------------------------------------------------------------

_OVERRIDE = re.compile(r"^\s*\[scenario:\s*([\w-]+)\s*\]\s*", re.IGNORECASE)

_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("model-error", re.compile(r"overloaded|model error|api error", re.I)),
    ("subagent", re.compile(r"\bsub-?agents?\b", re.I)),
    ("parallel-tools", re.compile(r"\badd\b.*\bread\b", re.I | re.S)),
    ("long-tool", re.compile(r"slow[ _]op", re.I)),
    ("denied-tool", re.compile(r"\bden(y|ied)\b|not allowed", re.I)),
    ("bash", re.compile(r"\bbash\b|\bshell\b|\brun\s+`", re.I)),
    ("approval", re.compile(r"\bpublish", re.I)),
)


_CALL = re.compile(r"\[call:\s*([A-Za-z0-9_.-]+)\s*", re.IGNORECASE)


def tool_call_asked(prompt: str) -> tuple[str, dict[str, Any]] | None:
    """The `[call:TOOL_NAME {json input}]` in a prompt: (name, input), or None. The input may
    be left out (`{}`); text that is not a JSON object followed by `]` is not a call."""
    for match in _CALL.finditer(prompt):
        rest = match.end()
        tool_input: Any = {}
        if prompt.startswith("{", rest):
            try:
                tool_input, rest = json.JSONDecoder().raw_decode(prompt, rest)
            except ValueError:
                continue
        closing = re.compile(r"\s*\]").match(prompt, rest)
        if closing is not None and isinstance(tool_input, dict):
            return match.group(1), tool_input
    return None


def choose_scenario(prompt: str) -> tuple[str, str]:
    """The scenario for a prompt, and the prompt without any `[scenario:NAME]` tag."""
    if match := _OVERRIDE.match(prompt):
        return match.group(1).lower(), prompt[match.end() :]
    for name, pattern in _KEYWORDS:
        if pattern.search(prompt):
            return name, prompt
    return "text", prompt


# -- the scenarios ---------------------------------------------------------------------------------


def _first_sentence(prompt: str, limit: int = 120) -> str:
    sentence = re.split(r"(?<=[.?!])\s", " ".join(prompt.split()), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def _brief(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _first_error_sentence(text: str) -> str:
    return re.split(r"(?<=[.!])\s", " ".join(text.split()), maxsplit=1)[0]


def _remembered_number(prompts: Sequence[str]) -> str | None:
    for prompt in reversed(prompts):
        if match := re.search(r"remember (?:the number )?(-?\d+(?:\.\d+)?)", prompt, re.I):
            return match.group(1)
    return None


_SKY = (
    "The sky looks blue because the molecules in the air scatter sunlight, and they scatter "
    "short wavelengths far more than long ones: Rayleigh scattering grows roughly as "
    "1/wavelength⁴, so blue light is bounced around about five times more than red. That "
    "scattered blue light reaches your eyes from every direction, so the whole sky glows blue, "
    "while the direct sunlight keeps most of its red and yellow. At sunrise and sunset the light "
    "crosses much more air, most of the blue is scattered away before it reaches you, and the "
    "sky near the horizon turns orange and red."
)
_HAMLET = (
    "Prince Hamlet learns from his father's ghost that his uncle Claudius murdered the king to "
    "take the throne and marry Queen Gertrude, and he feigns madness while he tests the story "
    "and agonises over revenge. His delay sets off a chain of deaths, Polonius, Ophelia, "
    "Gertrude, Laertes, Claudius and finally Hamlet himself, and the crown passes to Fortinbras "
    "of Norway."
)


def _text_answer(turn: Turn) -> tuple[str, str]:
    """(thinking, answer) for a plain question."""
    prompt = turn.prompt
    topic = _first_sentence(prompt) or "your message"
    if not topic.endswith((".", "?", "!", "…")):
        topic += "."
    lowered = prompt.lower()
    if "sky" in lowered and "blue" in lowered:
        return (
            "The user asks why the sky is blue. Key idea: Rayleigh scattering, which is strongest "
            "for short wavelengths, so blue light is scattered across the sky.",
            _SKY,
        )
    if "hamlet" in lowered:
        return (
            "The user wants a short plot summary of Hamlet: the ghost, the revenge, the delay "
            "and the tragic ending.",
            _HAMLET,
        )
    if match := re.search(r"remember (?:the number )?(-?\d+(?:\.\d+)?)", prompt, re.I):
        number = match.group(1)
        return (
            f"The user wants me to remember {number}. Acknowledge it briefly.",
            f"Got it - I'll remember the number {number}.",
        )
    if re.search(r"\bremember\b", lowered):
        number = _remembered_number(turn.earlier_prompts)
        if number is not None:
            return (
                f"Earlier in this conversation the user asked me to remember {number}.",
                f"You asked me to remember the number {number}.",
            )
        return (
            "Nothing earlier in this conversation asked me to remember anything.",
            "I don't see anything you asked me to remember earlier in this conversation. "
            "Tell me what it is and I'll keep it in mind.",
        )
    if re.search(r"\b(still there|are you there)\b", lowered):
        return (
            "The user checks that I am still responding, probably after an interruption.",
            "Yes, I'm still here. The last step was stopped before it finished; tell me whether "
            "to try it again or do something else.",
        )
    if re.fullmatch(r"(hi|hello|hey)\b.*", lowered.strip()):
        return (
            "A greeting. Reply in kind and offer help.",
            "Hello! I'm the scripted model behind agentlog's offline runs. Ask me something, or "
            "start a prompt with [scenario:NAME] to pick one of my scripted behaviours.",
        )
    return (
        f"The user asks: {topic} I'll give a short, direct answer and offer to go deeper.",
        f"You asked: {topic} Here is a short answer. The core idea is usually simpler than it "
        "first looks: name the thing precisely, find the one mechanism that drives it, and check "
        "that mechanism against an everyday example. From there the details tend to follow, and "
        "the exceptions become easier to spot. If you want more depth on any part of this, ask a "
        "follow-up and I'll expand on it. (This reply comes from agentlog's scripted model, "
        "which answers offline from a fixed script.)",
    )


def text(turn: Turn) -> Reply:
    if turn.rounds:
        return Message((Text("Done."),))
    thinking, answer = _text_answer(turn)
    if turn.files:
        # Says what it was shown, so a test over HTTP sees the files reached the model.
        answer = f"I was shown {len(turn.files)} file(s): {'; '.join(turn.files)}. {answer}"
    return Message((Thinking(thinking), Text(answer)))


def unknown(name: str, known: Sequence[str]) -> Callable[[Turn], Reply]:
    def reply(turn: Turn) -> Reply:
        return Message(
            (Text(f"There is no scripted scenario named {name!r}. Known: {', '.join(known)}."),)
        )

    return reply


_NUMBER = r"-?\d+(?:\.\d+)?"


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def parallel_tools(turn: Turn) -> Reply:
    if not turn.rounds:
        numbers = re.search(
            rf"add\s+({_NUMBER})\s*(?:and|\+|to|,)\s*({_NUMBER})", turn.prompt, re.I
        )
        a, b = (_number(numbers.group(1)), _number(numbers.group(2))) if numbers else (2, 3)
        path_match = re.search(r"read\s+(?:the file\s+)?(\S+)", turn.prompt, re.I)
        path = path_match.group(1).rstrip(".,;:!?") if path_match else "/definitely/missing.txt"
        return Message(
            (
                Text("I'll add the numbers and read the file in parallel."),
                ToolCall("mcp__demo__add", {"a": a, "b": b}),
                ToolCall("Read", {"file_path": path}),
            )
        )
    parts: list[str] = []
    if (add := turn.outcome("mcp__demo__add")) is not None:
        x, y = add.input.get("a"), add.input.get("b")
        if add.is_error:
            parts.append(f"adding {x} and {y} failed: {_first_error_sentence(add.content)}")
        else:
            parts.append(f"{x} + {y} = {add.content.strip()}")
    if (read := turn.outcome("Read")) is not None:
        path = read.input.get("file_path", "the file")
        if read.is_error and "does not exist" in read.content.lower():
            parts.append(f"{path} does not exist")
        elif read.is_error:
            parts.append(f"reading {path} failed: {_first_error_sentence(read.content)}")
        else:
            lines = read.content.splitlines()
            parts.append(
                f"{path} has {len(lines)} lines, starting with: {_brief(read.content, 80)}"
            )
    if not parts:
        return Message((Text("Neither tool call came back, so I have nothing to report."),))
    summary = ", and ".join(parts)
    return Message((Text(summary[0].upper() + summary[1:] + "."),))


def long_tool(turn: Turn) -> Reply:
    if not turn.rounds:
        match = re.search(rf"for\s+({_NUMBER})\s*(?:s|secs?|seconds?)\b", turn.prompt, re.I)
        seconds = _number(match.group(1)) if match else 3
        return Message(
            (
                Text("Starting the slow operation now; it takes a moment."),
                ToolCall("mcp__demo__slow_op", {"seconds": seconds}),
            )
        )
    runs = [o for o in turn.outcomes if o.name == "mcp__demo__slow_op"]
    if len(runs) == 1 and runs[0].is_error and "interrupted by a server restart" in runs[0].content:
        # A naive model: it tries once more whatever the result says (a tool marked not to be
        # retried is then refused by the server, not by the model's judgement).
        return Message(
            (
                Text("The slow operation was interrupted; starting it again."),
                ToolCall("mcp__demo__slow_op", dict(runs[0].input)),
            )
        )
    done = runs[-1] if runs else None
    if done is None:
        return Message((Text("The slow operation never reported back."),))
    seconds = done.input.get("seconds", "?")
    unit = "second" if seconds == 1 else "seconds"
    if done.is_error:
        return Message(
            (Text(f"The slow operation did not finish: {_first_error_sentence(done.content)}"),)
        )
    said = f" It reported: {_brief(done.content)}" if done.content.strip() else ""
    return Message((Text(f"The slow operation is done: it ran for {seconds} {unit}.{said}"),))


def _looks_denied(outcome: ToolOutcome) -> bool:
    return outcome.is_error and bool(
        re.search(r"hook|denied|permission|not allowed|policy|reject", outcome.content, re.I)
    )


def _bash_summary(turn: Turn, *, expected_denial: bool) -> Reply:
    ran = turn.outcome("Bash")
    if ran is None:
        return Message((Text("The command never reported back."),))
    command = ran.input.get("command", "")
    if _looks_denied(ran) or (expected_denial and ran.is_error):
        return Message(
            (
                Text(
                    f"I wasn't allowed to run `{command}`, so I didn't. The tool call was "
                    f"rejected with: {_brief(ran.content)}"
                ),
            )
        )
    if ran.is_error:
        return Message((Text(f"`{command}` failed: {_brief(ran.content)}"),))
    output = ran.content.strip()
    if expected_denial:
        lead = f"I expected `{command}` to be blocked, but it ran"
    else:
        lead = f"I ran `{command}`"
    if not output:
        return Message((Text(f"{lead}; it finished and printed nothing."),))
    lines = output.splitlines()
    if len(lines) == 1:
        return Message((Text(f"{lead}; it printed: {_brief(output)}"),))
    return Message(
        (Text(f"{lead}; it printed {len(lines)} lines, ending with: {_brief(lines[-1])}"),)
    )


def denied_tool(turn: Turn) -> Reply:
    if not turn.rounds:
        return Message(
            (
                Text("I'll run that with Bash."),
                ToolCall("Bash", {"command": "echo hello", "description": "Print hello"}),
            )
        )
    return _bash_summary(turn, expected_denial=True)


def bash(turn: Turn) -> Reply:
    """Runs the fixed demo command, never the prompt's text: a prompt is whatever a caller
    sent, and the scripted model must not turn it into a command on the server."""
    if not turn.rounds:
        if "Bash" not in turn.tools:
            return Message(
                (
                    Text(
                        "Shell tools are not enabled on this server, so I can't run commands. "
                        "(The operator enables them with AGENTLOG_ENABLE_TOOLS=Bash.)"
                    ),
                )
            )
        command = turn.shell_command or DEMO_SHELL_COMMAND
        return Message(
            (
                Text("I'll run that in the shell."),
                ToolCall("Bash", {"command": command, "description": f"Run {command}"[:60]}),
            )
        )
    return _bash_summary(turn, expected_denial=False)


# What `append-then-slow` appends to, in the run's working directory: one line per run of it.
SIDE_EFFECTS_FILE = "side-effects.txt"


def append_then_slow(turn: Turn) -> Reply:
    """A tool with a side effect (`Bash` appends a line to SIDE_EFFECTS_FILE), then a slow one
    (`mcp__demo__slow_op` for N seconds), then a summary: the crash drill's turn. After a
    continuation it goes on from the results it has, and runs nothing again."""
    if not turn.rounds:
        command = f"echo appended >> {SIDE_EFFECTS_FILE}"
        return Message(
            (
                Text("First I'll append a line to the file."),
                ToolCall("Bash", {"command": command, "description": "Append a line"}),
            )
        )
    if turn.rounds == 1:
        match = re.search(rf"for\s+({_NUMBER})\s*(?:s|secs?|seconds?)\b", turn.prompt, re.I)
        seconds = _number(match.group(1)) if match else 3
        return Message(
            (
                Text("Now the slow operation."),
                ToolCall("mcp__demo__slow_op", {"seconds": seconds}),
            )
        )
    parts = []
    if (appended := turn.outcome("Bash")) is not None:
        parts.append("the append failed" if appended.is_error else "the line was appended")
    slow = turn.outcome("mcp__demo__slow_op")
    if slow is None:
        parts.append("the slow operation never reported back")
    elif slow.is_error and "interrupted by a server restart" in slow.content:
        parts.append("the slow operation was interrupted by a server restart; I won't run it again")
    elif slow.is_error:
        parts.append(f"the slow operation failed: {_first_error_sentence(slow.content)}")
    else:
        parts.append("the slow operation finished")
    summary = ", and ".join(parts)
    return Message((Text(summary[0].upper() + summary[1:] + "."),))


def _publish_text(prompt: str) -> str:
    quoted = re.search(r"[\"`“]([^\"`”]+)[\"`”]", prompt)
    if quoted:
        return quoted.group(1).strip()
    after = re.search(r"\bpublish(?:es|ed|ing)?\b[:\s]*(.*)", prompt, re.I | re.S)
    text = (after.group(1) if after else prompt).strip().rstrip(".!?")
    return text[:200] or "hello"


def approval(turn: Turn) -> Reply:
    if not turn.rounds:
        text = _publish_text(turn.prompt)
        return Message(
            (
                Text("I'll publish that; it needs your approval."),
                ToolCall("mcp__demo__publish", {"text": text}),
            )
        )
    done = turn.outcome("mcp__demo__publish")
    if done is None:
        return Message((Text("The publish call never reported back."),))
    if done.is_error:
        return Message(
            (
                Text(
                    "I was not allowed to publish it, so nothing was published: "
                    f"{_brief(done.content)}"
                ),
            )
        )
    return Message((Text(f"Done. The tool said: {_brief(done.content)}"),))


SYSTEM_PROMPT_LIMIT = 8000


def system_prompt(turn: Turn) -> Reply:
    """The system prompt as the model received it, so a test can see what reached it."""
    return Message((Text(turn.system[:SYSTEM_PROMPT_LIMIT] or "(no system prompt)"),))


RESULT_LIMIT = 4000


def call_tool(turn: Turn, name: str, tool_input: dict[str, Any]) -> Reply:
    """`[call:NAME {input}]`: call it, then quote what came back."""
    if not turn.rounds:
        return Message((Text(f"Calling {name}."), ToolCall(name, tool_input)))
    done = turn.outcome(name)
    if done is None:
        return Message((Text(f"{name} never reported back."),))
    said = done.content[:RESULT_LIMIT]
    if done.is_error:
        return Message((Text(f"{name} failed: {said}"),))
    return Message((Text(f"{name} returned: {said}"),))


def model_error(turn: Turn) -> Reply:
    if turn.attempt:
        return HttpError(529, "overloaded_error", "Overloaded")
    return BrokenStream("Let me start answering that question for you")


SUBAGENT_TASK = "[scenario:parallel-tools] Add 2 and 3 and read /definitely/missing.txt"


def subagent(turn: Turn) -> Reply:
    """The main agent hands the work to a subagent (the `Agent` tool), whose own conversation
    (its prompt is `SUBAGENT_TASK`) follows `parallel-tools`, or `long-tool` when the prompt
    says "for N seconds"; then it reports what came back."""
    if not turn.rounds:
        slow = re.search(rf"for\s+({_NUMBER})\s*(?:s|secs?|seconds?)\b", turn.prompt, re.I)
        task = (
            f"[scenario:long-tool] Run the slow operation for {slow.group(1)} seconds"
            if slow
            else SUBAGENT_TASK
        )
        return Message(
            (
                Text("I'll ask a subagent to do this."),
                ToolCall(
                    "Agent",
                    {
                        "description": "Add and read",
                        "prompt": task,
                        "subagent_type": "general-purpose",
                        "run_in_background": False,
                    },
                ),
            )
        )
    report = turn.outcome("Agent")
    if report is None:
        return Message((Text("The subagent never reported back."),))
    if report.is_error:
        return Message(
            (Text(f"The subagent did not finish: {_first_error_sentence(report.content)}"),)
        )
    # The CLI frames the report: "[Subagent hand-back] ... The report follows:", then the
    # report indented, then its own lines (agentId, usage) at column zero.
    lines = report.content.split("The report follows:", 1)[-1].splitlines()
    said = " ".join(line.strip() for line in lines if line.startswith("  ") and line.strip())
    return Message((Text(f"The subagent reported: {_brief(said or report.content)}"),))


SCENARIOS: dict[str, Callable[[Turn], Reply]] = {
    "text": text,
    "parallel-tools": parallel_tools,
    "subagent": subagent,
    "long-tool": long_tool,
    "denied-tool": denied_tool,
    "model-error": model_error,
    "bash": bash,
    "approval": approval,
    "system-prompt": system_prompt,
    "append-then-slow": append_then_slow,
}


def _title(text: str) -> str:
    words = re.sub(r"[^\w\s/.-]", " ", _first_sentence(text)).split()
    words = [w.strip(".") for w in words if w.strip(".")][:5]
    title = " ".join(words) or "New session"
    return title[0].upper() + title[1:]


def _fitting(schema: dict[str, Any], text: str, name: str = "") -> Any:
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: _fitting(sub, text, key) for key, sub in properties.items()}
    if kind == "array":
        return []
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return 0
    if "enum" in schema:
        return schema["enum"][0]
    return _title(text) if name == "title" else _brief(text, 80)


def structured(turn: Turn, schema: dict[str, Any]) -> Reply:
    """JSON that fits the requested schema; the CLI asks for one to name the session."""
    session = re.search(r"<session>\s*(.*?)\s*</session>", turn.prompt, re.S)
    _, subject = choose_scenario(session.group(1) if session else turn.prompt)
    return Message((Text(json.dumps(_fitting(schema, subject))),))


def respond(
    messages: Sequence[dict[str, Any]],
    *,
    attempt: int = 0,
    output_schema: dict[str, Any] | None = None,
    tools: frozenset[str] = frozenset(),
    shell_command: str = "",
    system: Any = None,
) -> Reply:
    """The scripted reply to a Messages API request with these `messages`.

    `output_schema` is the JSON schema of a structured-output request (`output_config.format`):
    those are side requests, such as the session title, and never follow a scenario.
    """
    turn = read_turn(messages, attempt=attempt)
    if output_schema is not None:
        return structured(turn, output_schema)
    turn = replace(turn, tools=tools, shell_command=shell_command, system=system_text(system))
    asked = tool_call_asked(turn.prompt)
    if asked is not None:
        return call_tool(turn, *asked)
    name, prompt = choose_scenario(turn.prompt)
    scenario = SCENARIOS.get(name) or unknown(name, sorted(SCENARIOS))
    return scenario(replace(turn, prompt=prompt))


def system_text(system: Any) -> str:
    """A request's `system`: a string, or text blocks joined by blank lines."""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n\n".join(
            b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return ""


def chunks(text: str, size: int = 32) -> Iterator[str]:
    """Split text into pieces of about `size` characters, at spaces where possible."""
    if not text:
        return
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            space = text.rfind(" ", start + 1, end + 1)
            end = space + 1 if space > start else end
        yield text[start:end]
        start = end


__all__ = [
    "SCENARIOS",
    "Block",
    "BrokenStream",
    "HttpError",
    "Message",
    "Reply",
    "Text",
    "Thinking",
    "ToolCall",
    "ToolOutcome",
    "Turn",
    "choose_scenario",
    "chunks",
    "read_turn",
    "respond",
    "structured",
    "system_text",
    "tool_call_asked",
]
