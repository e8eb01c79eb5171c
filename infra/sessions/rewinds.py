"""Where a regenerate, an edit or `from_message_id` goes back to: UI message ids -> a rewind.

How UI message ids map to runs and seqs (projections/ui_messages/):
- A turn is one run started with a prompt (not a continuation after an approval). Its
  assistant message is `<run id>` (the AI SDK client takes it from the stream's `start`
  chunk); its user message (the prompt) has the id the client gave it, recorded on
  `run_started.user_message_id` (the last user message of useChat's `messages`), or, for a
  start without one and every run recorded before clients could name it, `<run id>:user`.
  `<run id>:user` names the turn whichever it is, so ids handed out before keep working. Both
  messages were created by that run's `run_started`, at seq S. Runs that continue the turn
  after an approval (`continues_run_id`) write into the same assistant message: their ids
  name that turn too. `custom:<seq>` messages (external data with no run) belong to no turn.
- Going back to just before a turn is `Rewind(to_seq=S - 1)`: everything from the turn's
  `run_started` on is set aside, what came before stays
  (agentlog.domain.rules.branches.current_branch).
- A user message id the log does not know (a client that holds another id for it) is placed
  by position in the body's `messages`: it answers the turn after the last assistant message
  before it.
- A regenerate keeps its prompt's message id, an edit the edited message's (the AI SDK Chat
  keeps both); a new message's id may not name a message that stays on the branch (409
  `message_id_taken`), so every id of the branch names one message.
- The plan is made on the conversation as read; `Rewind.expected_head` carries that head and
  the runner appends the rewind only onto it (409 `conversation_changed` otherwise).

What each request does (`plan_run`):
- `{"prompt"}` / a `submit-message` without `messageId`: a new turn at the end, as before
  rewinds existed (a `{"prompt"}` reads nothing more; useChat's send reads the conversation
  once, to check the id of its user message).
- useChat `regenerate()`: `trigger: "regenerate-message"`, `messageId` an assistant message
  (or the user message it answers; absent: the last turn): rewind to just before that turn
  and run its prompt again (the log's prompt). Trigger "regenerate".
- useChat edit (`sendMessage({text, messageId})`): `trigger: "submit-message"` whose
  `messageId` is the last message of `messages`, a user message standing where a turn of the
  branch stands: rewind to just before that turn and run the edited text. Trigger "edit".
  A `messageId` whose turn is not in the log yet (a send that failed) is a new turn. If the
  messages before it hold an answer a rewind set aside (another tab regenerated), the
  client shows a stale branch: 409 `message_off_branch`.
- `POST /runs {"prompt"?, "from_message_id"}`: the named message's turn (its user message or
  its answer: the same point) is replaced: rewind to just before it and run `prompt`, or the
  turn's own prompt when none is given. To keep an answer and branch after it, name the
  next user message. Trigger "from_message".

Refusals (nothing is written): a message id the log never had, 422 `message_not_found` (the
session exists; the body names nothing in it); one
a rewind set aside, 409 `message_off_branch`; a `custom:` message, 422 `not_a_turn`; a
regenerate with no turn to regenerate, 422 `nothing_to_regenerate`; an edit that cannot be
placed on the branch, 422 `messages_diverge`; a client message id that is not a short plain
string, 400 `invalid_message_id`, or that another message of the branch has, 409
`message_id_taken`. A run or an approval waiting: the runner's 409.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentlog.domain.errors import RewindRefused
from agentlog.domain.events import AttachedFile
from agentlog.domain.ports.agent_runs import Rewind
from agentlog.domain.ports.event_store import EventStore
from agentlog.projections.ui_messages import ConversationState, FilePart, TextPart

USER_SUFFIX = ":user"


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn of the current branch: a prompt and the assistant message answering it."""

    run_id: str  # the assistant message's id
    prompt: str
    seq: int  # its run_started
    user_message_id: str  # the prompt's message: the client's id, or `<run id>:user`
    position: int  # where the turn's first message is in the conversation's messages
    files: tuple[AttachedFile, ...] = ()  # sent with the prompt


@dataclass(frozen=True, slots=True)
class Branch:
    """The current branch's turns, and which turn each of its message ids belongs to."""

    turns: list[Turn]
    index: dict[str, int]  # message id (and continuation run id) -> turn index
    others: frozenset[str]  # ids of the branch's messages that belong to no turn
    messages: tuple[str, ...] = ()  # every message id of the branch, in order

    def turn_of(self, message_id: str) -> Turn | None:
        found = self.index.get(message_id)
        return None if found is None else self.turns[found]

    def taken_ids(self, replaced: Turn | None) -> set[str]:
        """The ids a new user message may not have: those of the branch's messages, and the
        other names of its turns, that stay when `replaced` (and what follows it) goes."""
        if replaced is None:
            return set(self.messages) | set(self.index)
        kept = self.turns.index(replaced)
        return set(self.messages[: replaced.position]) | {
            name for name, turn in self.index.items() if turn < kept
        }


def branch_of(state: ConversationState) -> Branch:
    turns: list[Turn] = []
    index: dict[str, int] = {}
    others: set[str] = set()
    messages = state.messages
    for at, message in enumerate(messages):
        if message.run is None:
            if message.role != "user":
                others.add(message.id)
            continue
        # The prompt's user message comes right before its answer (the same run_started).
        before = messages[at - 1] if at > 0 else None
        user = before if before is not None and before.role == "user" else None
        position = len(turns)
        turns.append(
            Turn(
                run_id=message.id,
                prompt="" if user is None else _text(user),
                seq=message.seq,
                user_message_id=message.id + USER_SUFFIX if user is None else user.id,
                position=at if user is None else at - 1,
                files=() if user is None else _files(user),
            )
        )
        # `<run id>:user` names the turn too, whatever id the client gave its prompt: the
        # name every run recorded before clients named their messages has.
        names = (message.id, message.id + USER_SUFFIX, *message.run.continued_by)
        for name in (*names, *(() if user is None else (user.id,))):
            index[name] = position
    return Branch(
        turns=turns,
        index=index,
        others=frozenset(others),
        messages=tuple(m.id for m in messages),
    )


def _files(message: Any) -> tuple[AttachedFile, ...]:
    return tuple(
        AttachedFile(sha256=p.sha256, media_type=p.media_type, size=p.size, filename=p.filename)
        for p in message.parts
        if isinstance(p, FilePart)
    )


def _text(message: Any) -> str:
    return "".join(p.text for p in message.parts if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class PlannedRun:
    prompt: str
    rewind: Rewind | None = None
    # The id the prompt's user message gets (None: `<run id>:user`), and the turn the run
    # replaces (its messages and what follows go; None: a new turn at the end).
    user_message_id: str | None = None
    replaces: Turn | None = None
    # The files that go with the prompt again (a regenerate's: its turn's own).
    files: tuple[AttachedFile, ...] = ()


MAX_CLIENT_MESSAGE_ID = 200
# What the AI SDK's ids are made of (letters and digits), and what the log's own ids hold.
_CLIENT_ID_CHARS = re.compile(r"[A-Za-z0-9_.:-]+")
# Names the projection gives messages after a seq (`custom:<seq>`, and `run:<seq>` for a
# run_started without a run id): a client's id of that form could collide with a later one.
_RESERVED = re.compile(r"(custom|run):[0-9]+")


def client_message_id(messages: Sequence[dict[str, Any]]) -> str | None:
    """The id the client gave the user message it sends: the last message of useChat's
    `messages` when that is a user message (a send, an edit, a regenerate's prompt); None when
    there is none. 400 `invalid_message_id` for an id that is not a short plain string."""
    last = messages[-1] if messages else None
    if last is None or last.get("role") != "user" or "id" not in last:
        return None
    message_id = last["id"]
    if (
        not isinstance(message_id, str)
        or len(message_id) > MAX_CLIENT_MESSAGE_ID
        or _CLIENT_ID_CHARS.fullmatch(message_id) is None
        or _RESERVED.fullmatch(message_id) is not None
    ):
        raise RewindRefused(
            400,
            "invalid_message_id",
            "the last user message's id must be 1 to "
            f"{MAX_CLIENT_MESSAGE_ID} characters of letters, digits and _ . : -, "
            "and not of the form custom:<n> or run:<n> (the log's own names)",
        )
    return message_id


def refuse_taken_id(branch: Branch, planned: PlannedRun) -> None:
    """409 `message_id_taken` when the client's id for its user message already names another
    message that stays on the current branch (its own, replaced by an edit, does not)."""
    message_id = planned.user_message_id
    if message_id is not None and message_id in branch.taken_ids(planned.replaces):
        raise RewindRefused(
            409,
            "message_id_taken",
            f"message id {message_id!r} already names another message of the conversation",
            message_id=message_id,
        )


async def _refuse_unknown(store: EventStore, session_id: str, message_id: str) -> RewindRefused:
    """The error for a message id that is not on the current branch."""
    run_id = message_id.removesuffix(USER_SUFFIX)
    if await store.run(session_id, run_id) is not None:
        return RewindRefused(
            409,
            "message_off_branch",
            f"message {message_id!r} is no longer on the conversation's current branch "
            "(a regenerate or an edit set it aside); reload the messages",
            message_id=message_id,
        )
    return RewindRefused(
        422,
        "message_not_found",
        f"the session has no message {message_id!r}",
        message_id=message_id,
    )


async def _rewind_to(
    store: EventStore, session_id: str, turn: Turn, trigger: str, message_id: str
) -> Rewind:
    seq = turn.seq
    if seq <= 0:
        # A state stored before messages kept their seq: the run index knows it.
        indexed = await store.run(session_id, turn.run_id)
        if indexed is None:
            raise RewindRefused(409, "message_off_branch", f"run {turn.run_id!r} is not indexed")
        seq = indexed.started_seq
    return Rewind(to_seq=seq - 1, trigger=trigger, message_id=message_id)


async def plan_from_message(
    store: EventStore,
    session_id: str,
    branch: Branch,
    message_id: str,
    prompt: str | None,
) -> PlannedRun:
    """`POST /runs {"prompt"?, "from_message_id"}`."""
    turn = branch.turn_of(message_id)
    if turn is None:
        if message_id in branch.others:
            raise RewindRefused(
                422,
                "not_a_turn",
                f"message {message_id!r} is not part of a turn (no prompt answers from it)",
                message_id=message_id,
            )
        raise await _refuse_unknown(store, session_id, message_id)
    rewind = await _rewind_to(store, session_id, turn, "from_message", message_id)
    # The turn's own prompt goes again with its files; a new prompt brings its own.
    return PlannedRun(
        prompt=turn.prompt if prompt is None else prompt,
        rewind=rewind,
        replaces=turn,
        files=turn.files if prompt is None else (),
    )


def _placed(branch: Branch, earlier: Sequence[dict[str, Any]]) -> int | None:
    """Where a user message after `earlier` (the messages before it in the body) stands: the
    index of the turn it is the prompt of, from the assistant messages before it; None when
    the body does not follow the branch (or an unanswered user message comes in between)."""
    answered = 0
    waiting_user = False
    for message in earlier:
        role, message_id = message.get("role"), message.get("id")
        if role == "user":
            waiting_user = True
        elif role == "assistant" and isinstance(message_id, str) and message_id in branch.index:
            if branch.index[message_id] != answered:
                return None
            answered += 1
            waiting_user = False
    return None if waiting_user else answered


async def _off_branch_ids(
    store: EventStore, session_id: str, branch: Branch, messages: Sequence[dict[str, Any]]
) -> None:
    """409 when the body holds a message of the log that a rewind set aside."""
    for message in messages:
        message_id = message.get("id")
        if (
            isinstance(message_id, str)
            and message.get("role") == "assistant"
            and message_id not in branch.index
            and message_id not in branch.others
            and await store.run(session_id, message_id) is not None
        ):
            raise await _refuse_unknown(store, session_id, message_id)


async def plan_regenerate(
    store: EventStore,
    session_id: str,
    branch: Branch,
    message_id: str | None,
    messages: Sequence[dict[str, Any]],
) -> PlannedRun:
    """useChat's `regenerate()`: `trigger: "regenerate-message"`."""
    turn: Turn | None
    if message_id is None:
        if not branch.turns:
            raise RewindRefused(
                422, "nothing_to_regenerate", "the conversation has no answer to regenerate yet"
            )
        turn = branch.turns[-1]
    else:
        turn = branch.turn_of(message_id)
        if turn is None and message_id in branch.others:
            raise RewindRefused(
                422,
                "not_a_turn",
                f"message {message_id!r} is not an answer to a prompt: nothing to regenerate",
                message_id=message_id,
            )
        if turn is None and messages and messages[-1].get("id") == message_id:
            # A user message the client named itself: regenerate the answer to it.
            position = _placed(branch, messages[:-1])
            if position is not None and position < len(branch.turns):
                turn = branch.turns[position]
        if turn is None:
            raise await _refuse_unknown(store, session_id, message_id)
    rewind = await _rewind_to(store, session_id, turn, "regenerate", turn.run_id)
    return PlannedRun(
        prompt=turn.prompt,
        rewind=rewind,
        user_message_id=client_message_id(messages),
        replaces=turn,
        files=turn.files,
    )


async def plan_submit(
    store: EventStore,
    session_id: str,
    branch: Branch,
    message_id: str | None,
    messages: Sequence[dict[str, Any]],
    prompt: str,
) -> PlannedRun:
    """A `submit-message` with `messageId`: an edit when it names the last message and that
    message stands where a turn of the branch stands, else a new turn."""
    last = messages[-1] if messages else None
    if (
        message_id is None
        or last is None
        or last.get("id") != message_id
        # useChat names the assistant message it continues (after tool approvals or outputs)
        # the same way: that is no edit.
        or last.get("role") != "user"
    ):
        return PlannedRun(prompt=prompt, user_message_id=client_message_id(messages))
    await _off_branch_ids(store, session_id, branch, messages[:-1])
    turn = branch.turn_of(message_id)
    if turn is None:
        position = _placed(branch, messages[:-1])
        if position is None:
            raise RewindRefused(
                422,
                "messages_diverge",
                f"the edited message {message_id!r} cannot be placed on the conversation's "
                "current branch: the messages before it are not the branch's",
                message_id=message_id,
            )
        if position == len(branch.turns):
            # Not in the log yet: a new turn.
            return PlannedRun(prompt=prompt, user_message_id=client_message_id(messages))
        turn = branch.turns[position]
    rewind = await _rewind_to(store, session_id, turn, "edit", turn.user_message_id)
    return PlannedRun(
        prompt=prompt, rewind=rewind, user_message_id=client_message_id(messages), replaces=turn
    )
