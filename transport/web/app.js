// agentlog's live page: plain JavaScript, no build step, no dependencies.
//
// The conversation is always what GET /v1/sessions/{id}/messages says (the projection, with
// hydration): every event that arrives on the session's stream re-fetches it (debounced), so
// the page never folds events itself. The event log on the right is the raw stream.
//
// The stream is an EventSource, which reconnects by itself and resumes with Last-Event-ID.
// With a token (`#token=...` once, then kept in localStorage) EventSource cannot send the
// Authorization header, so the page mints a read-only token for the session (POST
// .../tokens) and passes it as `?access_token=`; a session token given as `#token=` is used
// as it is. Only if minting fails does the page poll GET .../events?offset=N instead.
"use strict";

(() => {
  const MAX_LOG_ROWS = 2000;
  const MESSAGES_DEBOUNCE_MS = 100;
  const SESSIONS_REFRESH_MS = 3000;
  const POLL_MS = 500;
  const RESTART_MS = 3000;

  // Stable hooks for tests and for poking around in the console.
  const state = {
    sessionId: null,
    lastSeq: 0,
    events: [],          // every event received for the session, in seq order
    messages: [],        // the last UIMessage[] fetched
    head: 0,             // the head that /messages reported with them
    runActive: false,
    connected: false,
    opens: 0,            // how many times the stream (re)opened
    messageFetches: 0,
    sessions: [],
    errors: [],
    answers: [],         // approval answers this page sent, as the server acknowledged them
    mode: "sse",         // "sse", or "poll" when no stream token could be had
  };
  window.agentlog = state;

  const $ = (id) => document.getElementById(id);

  // -- auth ---------------------------------------------------------------------------------

  function hashParams() {
    return new URLSearchParams(location.hash.replace(/^#/, ""));
  }

  let rememberedToken = null;

  function token() {
    if (rememberedToken) return rememberedToken;
    try { return localStorage.getItem("agentlog.token"); } catch (_) { return null; }
  }

  // `#token=...` is read once, kept, and taken out of the address bar.
  function takeTokenFromHash() {
    const params = hashParams();
    const given = params.get("token");
    if (!given) return;
    rememberedToken = given;
    try { localStorage.setItem("agentlog.token", given); } catch (_) { /* private mode */ }
    params.delete("token");
    history.replaceState(null, "", `${location.pathname}${location.search}${params.toString() ? "#" + params : ""}`);
  }

  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      ...options,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = { raw: text }; }
    if (!response.ok) {
      const message = (body && body.error && body.error.message) || `HTTP ${response.status}`;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function noteError(where, error) {
    state.errors.push(`${where}: ${error.message || error}`);
    if (state.errors.length > 50) state.errors.shift();
  }

  // -- small DOM helpers --------------------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function pretty(value) {
    if (value === undefined) return "";
    if (typeof value === "string") return value;
    try { return JSON.stringify(value, null, 2); } catch (_) { return String(value); }
  }

  function oneLine(value, max = 90) {
    let text = typeof value === "string" ? value : JSON.stringify(value);
    if (text === undefined) return "";
    text = text.replace(/\s+/g, " ").trim();
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  function shortRun(runId) {
    if (!runId) return "";
    return runId.replace(/^run_/, "").slice(0, 8);
  }

  function time(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString();
  }

  // -- the sessions list --------------------------------------------------------------------

  async function refreshSessions() {
    try {
      const sessions = [];
      let after = null;
      for (let page = 0; page < 10; page++) {
        const query = new URLSearchParams({ limit: "200" });
        if (after) query.set("after", after);
        const body = await api(`/v1/sessions?${query}`);
        sessions.push(...body.sessions);
        if (!body.next_after) break;
        after = body.next_after;
      }
      // Newest activity first: that is where a demo's attention is.
      sessions.sort((a, b) => String(b.last_activity_at).localeCompare(String(a.last_activity_at)));
      state.sessions = sessions;
      renderSessions();
      $("sessions-empty").textContent = "No sessions yet: create one above.";
    } catch (error) {
      noteError("sessions", error);
      if (error.status === 401) {
        $("sessions-empty").hidden = false;
        $("sessions-empty").textContent =
          "This server needs an API token: open this page once as /#token=<your token>.";
        setConnected(false, "token needed");
      }
    }
  }

  // Tokens in/out and dollars, from a session's `usage` (snake_case) or a run's `cost`
  // metadata (camelCase); the scripted model's runs cost nothing and say so.
  function costText(u, scripted) {
    const input = u.input_tokens ?? u.inputTokens ?? 0;
    const output = u.output_tokens ?? u.outputTokens ?? 0;
    const dollars = u.cost_usd ?? u.costUsd ?? 0;
    const price = scripted ? "scripted model, no cost" : `$${dollars.toFixed(4)}`;
    return `${input} in / ${output} out tokens · ${price}`;
  }

  function renderSessions() {
    const list = $("sessions");
    list.replaceChildren(
      ...state.sessions.map((s) =>
        el(
          "li",
          {
            class: `session${s.id === state.sessionId ? " selected" : ""}`,
            "data-testid": "session-item",
            "data-session": s.id,
          },
          el(
            "a",
            { href: `#session=${encodeURIComponent(s.id)}` },
            el("span", { class: "session-title", text: s.title || s.id }),
            el("span", { class: `badge status-${s.status}`, "data-testid": "session-status", text: s.status }),
            el(
              "span",
              { class: "session-meta muted" },
              `${s.runs || 0} run${s.runs === 1 ? "" : "s"} · ${s.head} events · ${time(s.last_activity_at)}`,
            ),
            s.usage && s.usage.runs
              ? el("span", { class: "session-meta muted", "data-testid": "session-cost", text: costText(s.usage, s.usage.scripted) })
              : null,
          ),
        ),
      ),
    );
    $("sessions-empty").hidden = state.sessions.length > 0;
  }

  // -- the conversation ---------------------------------------------------------------------

  let messagesTimer = null;
  let messagesInFlight = false;
  let messagesDirty = false;

  function scheduleMessages(delay = MESSAGES_DEBOUNCE_MS) {
    if (messagesTimer !== null) return;
    messagesTimer = setTimeout(() => {
      messagesTimer = null;
      fetchMessages();
    }, delay);
  }

  async function fetchMessages() {
    const sessionId = state.sessionId;
    if (!sessionId) return;
    if (messagesInFlight) {
      messagesDirty = true;
      return;
    }
    messagesInFlight = true;
    try {
      const body = await api(`/v1/sessions/${encodeURIComponent(sessionId)}/messages`);
      if (sessionId !== state.sessionId) return; // switched meanwhile
      state.messages = body.messages;
      state.head = body.head;
      state.runActive = body.run_active;
      state.messageFetches += 1;
      renderMessages();
    } catch (error) {
      noteError("messages", error);
      // Retry below, a bit later, unless the server said no for good (unknown session, auth).
      if (sessionId === state.sessionId && !(error.status >= 400 && error.status < 500)) {
        messagesDirty = true;
      }
    } finally {
      messagesInFlight = false;
      if (messagesDirty) {
        messagesDirty = false;
        scheduleMessages(state.connected ? MESSAGES_DEBOUNCE_MS : 1000);
      }
    }
  }

  const TOOL_STATES = {
    "input-streaming": { label: "preparing", running: true },
    "input-available": { label: "running", running: true },
    "output-available": { label: "done", running: false },
    "output-error": { label: "error", running: false },
    "output-denied": { label: "denied", running: false },
    "approval-requested": { label: "awaiting approval", running: false },
    "approval-responded": { label: "answered", running: false },
  };

  // -- approvals and stop -------------------------------------------------------------------

  async function answerApproval(approvalId, approved, reason, buttons) {
    const id = state.sessionId;
    for (const button of buttons) button.disabled = true;
    try {
      const body = reason ? { approved, reason } : { approved };
      const answer = await api(`/v1/sessions/${encodeURIComponent(id)}/approvals/${encodeURIComponent(approvalId)}`, { method: "POST", body });
      state.answers.push(answer);
      $("prompt-status").textContent = approved ? "approved" : "denied";
      scheduleMessages();
    } catch (error) {
      noteError("approval", error);
      $("prompt-status").textContent = `Could not answer: ${error.message}`;
      for (const button of buttons) button.disabled = false;
    }
  }

  function approvalControls(part) {
    const reason = el("input", { class: "approval-reason", placeholder: "reason (optional)", "data-testid": "approval-reason", autocomplete: "off" });
    const approve = el("button", { type: "button", class: "approve", "data-testid": "approve", text: "Approve" });
    const deny = el("button", { type: "button", class: "deny", "data-testid": "deny", text: "Deny" });
    const buttons = [approve, deny];
    approve.addEventListener("click", () => answerApproval(part.approval.id, true, reason.value.trim(), buttons));
    deny.addEventListener("click", () => answerApproval(part.approval.id, false, reason.value.trim(), buttons));
    return el("div", { class: "approval", "data-testid": "approval", "data-approval-id": part.approval.id }, reason, approve, deny);
  }

  // The run the log shows active (its run_started without a terminal event yet).
  function activeRunId() {
    let active = null;
    for (const event of state.events) {
      if (event.type === "run_started") active = event.run_id;
      else if (["run_finished", "run_failed", "run_cancelled", "run_abandoned"].includes(event.type) && event.run_id === active) active = null;
    }
    return active;
  }

  async function stopRun(button) {
    const runId = activeRunId();
    if (!runId) return;
    button.disabled = true;
    try {
      await api(`/v1/sessions/${encodeURIComponent(state.sessionId)}/runs/${encodeURIComponent(runId)}/cancel`, { method: "POST", body: {} });
      $("prompt-status").textContent = `stopped ${shortRun(runId)}`;
    } catch (error) {
      noteError("stop", error);
      $("prompt-status").textContent = `Could not stop: ${error.message}`;
      button.disabled = false;
    }
  }

  // A subagent's part names the tool call that started the subagent (AI SDK provider metadata).
  function parentCallOf(part) {
    const meta = part.providerMetadata || part.callProviderMetadata;
    return (meta && meta.agentlog && meta.agentlog.parentToolCallId) || null;
  }

  // The parts to show at the top level; a subagent's parts go inside its call's part.
  function renderParts(parts) {
    const calls = new Set(parts.filter((p) => p.toolCallId).map((p) => p.toolCallId));
    const children = new Map();
    const top = [];
    for (const part of parts) {
      const parent = parentCallOf(part);
      if (parent && calls.has(parent)) {
        if (!children.has(parent)) children.set(parent, []);
        children.get(parent).push(part);
      } else {
        top.push(part);
      }
    }
    const render = (part) => {
      const node = renderPart(part);
      const nested = part.toolCallId && children.get(part.toolCallId);
      if (nested) {
        node.append(
          el("div", { class: "subagent", "data-testid": "subagent", "data-parent": part.toolCallId }, ...nested.map(render)),
        );
      }
      return node;
    };
    return top.map(render);
  }

  function renderPart(part) {
    const type = part.type || "";
    if (type === "text") {
      return el(
        "div",
        { class: `part text${part.state === "streaming" ? " streaming" : ""}`, "data-testid": "text-part", "data-state": part.state },
        part.text,
      );
    }
    if (type === "reasoning") {
      return el(
        "details",
        { class: "part reasoning", "data-testid": "reasoning-part" },
        el("summary", { text: part.state === "streaming" ? "Thinking…" : "Thinking" }),
        el("div", { class: "reasoning-text", text: part.text }),
      );
    }
    if (type === "step-start") {
      return el("div", { class: "part step", "data-testid": "step-part" }, el("span", { text: "step" }));
    }
    if (type === "dynamic-tool" || type.startsWith("tool-")) {
      return renderTool(part, type === "dynamic-tool" ? part.toolName : type.slice(5));
    }
    if (type === "data-agent-error") {
      const data = part.data || {};
      return el(
        "div",
        { class: "part error", "data-testid": "error-part" },
        el("strong", { text: `Agent error${data.kind ? ` (${data.kind}${data.status ? ` ${data.status}` : ""})` : ""}` }),
        el("div", { text: data.message || pretty(data) }),
      );
    }
    if (type.startsWith("data-")) {
      return el(
        "div",
        { class: "part data", "data-testid": "data-part" },
        el("span", { class: "data-name", text: type.slice(5) }),
        el("pre", { text: pretty(part.data) }),
      );
    }
    return el("pre", { class: "part unknown" }, pretty(part));
  }

  function renderTool(part, name) {
    const info = { ...(TOOL_STATES[part.state] || { label: part.state, running: false }) };
    if (part.state === "approval-responded" && part.approval) {
      info.label = part.approval.approved ? "approved" : "denied";
    }
    const badge = el(
      "span",
      { class: `badge tool-${part.state}`, "data-testid": "tool-state" },
      info.running ? el("span", { class: "spinner", "data-testid": "spinner", "aria-hidden": "true" }) : null,
      info.label,
    );
    const body = [];
    if (part.input !== undefined) {
      body.push(el("div", { class: "tool-label", text: "input" }), el("pre", { text: pretty(part.input) }));
    }
    if (part.state === "output-available") {
      body.push(el("div", { class: "tool-label", text: "output" }), el("pre", { "data-testid": "tool-output", text: pretty(part.output) }));
    } else if (part.state === "output-error") {
      body.push(el("div", { class: "tool-error", "data-testid": "tool-error", text: part.errorText || "error" }));
    } else if (part.state === "output-denied") {
      const reason = part.approval && part.approval.reason;
      body.push(el("div", { class: "tool-error", "data-testid": "tool-error", text: `denied${reason ? `: ${reason}` : ""}` }));
    } else if (part.state === "approval-requested" && part.approval) {
      body.push(approvalControls(part));
    } else if (part.state === "approval-responded" && part.approval) {
      const reason = part.approval.reason;
      const answer = part.approval.approved ? "approved" : "denied";
      body.push(el("div", { class: "tool-label", "data-testid": "approval-answer", text: `${answer}${reason ? `: ${reason}` : ""}; the agent continues` }));
    }
    return el(
      "div",
      {
        class: `part tool state-${part.state}`,
        "data-testid": "tool-part",
        "data-state": part.state,
        "data-tool": name,
        "data-tool-call-id": part.toolCallId,
      },
      el("div", { class: "tool-head" }, el("span", { class: "tool-icon", text: "⚙" }), el("code", { class: "tool-name", text: name }), badge),
      ...body,
    );
  }

  function renderMessage(message) {
    const meta = message.metadata || {};
    const isUser = message.role === "user";
    const header = el("div", { class: "message-head" }, el("span", { class: "role", text: isUser ? "You" : "Agent" }));
    if (!isUser && meta.status) {
      header.append(el("span", { class: `badge status-${meta.status}`, "data-testid": "run-status", text: meta.status }));
      if (meta.model) header.append(el("span", { class: "muted", text: meta.model }));
      if (meta.durationMs) header.append(el("span", { class: "muted", text: `${(meta.durationMs / 1000).toFixed(1)} s` }));
      if (meta.cost) {
        header.append(el("span", { class: "muted", "data-testid": "run-cost", text: costText(meta.cost, meta.cost.scripted) }));
      }
    }
    const node = el(
      "article",
      { class: `message ${message.role}`, "data-testid": "message", "data-role": message.role, "data-id": message.id },
      header,
      ...renderParts(message.parts || []),
    );
    const errorShown = (message.parts || []).some(
      (p) => p.type === "data-agent-error" && p.data && p.data.message === meta.error,
    );
    if (!isUser && meta.error && meta.status !== "finished" && !errorShown) {
      node.append(el("div", { class: "part error", "data-testid": "run-error", text: meta.error }));
    }
    return node;
  }

  function renderMessages() {
    const container = $("messages");
    const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
    // Keep open reasoning blocks open across re-renders.
    const open = new Set(
      [...container.querySelectorAll("details[open]")].map((d) => d.closest("[data-id]")?.dataset.id + ":" + [...d.parentNode.children].indexOf(d)),
    );
    container.replaceChildren(...state.messages.map(renderMessage));
    for (const details of container.querySelectorAll("details")) {
      const key = details.closest("[data-id]")?.dataset.id + ":" + [...details.parentNode.children].indexOf(details);
      if (open.has(key)) details.open = true;
    }
    if (!state.messages.length) {
      container.append(el("p", { class: "muted empty", text: "No messages yet: send a prompt below." }));
    }
    if (nearBottom) container.scrollTop = container.scrollHeight;
    renderHeader();
  }

  function renderHeader() {
    const header = $("session-header");
    const id = state.sessionId;
    if (!id) return;
    const session = state.sessions.find((s) => s.id === id);
    header.replaceChildren(
      el("h1", { text: (session && session.title) || id }),
      el("code", { class: "muted", text: id }),
      el("span", { class: `badge ${state.runActive ? "status-running" : "status-idle"}`, "data-testid": "run-active", text: state.runActive ? "run active" : "no active run" }),
    );
    if (state.runActive && activeRunId()) {
      const stop = el("button", { type: "button", class: "stop", "data-testid": "stop", text: "Stop" });
      stop.addEventListener("click", () => stopRun(stop));
      header.append(stop);
    }
  }

  // -- the event log ------------------------------------------------------------------------

  function summary(event) {
    switch (event.type) {
      case "session_created": return event.title ? `“${event.title}”` : "";
      case "session_forked": return `forked from ${event.from_session_id} at seq ${event.at_seq}`;
      case "run_started": return oneLine(event.prompt);
      case "conversation_rewound": return `${event.trigger}: back to seq ${event.to_seq}, seqs ${event.to_seq + 1}..${event.seq - 1} set aside`;
      case "agent_initialized": return `${event.model || ""} · ${(event.tools || []).length} tools`;
      case "agent_status": return event.subtype + (event.data && event.data.status ? `: ${event.data.status}` : "");
      case "step_started": return event.model || event.message_id;
      case "step_finished": return event.stop_reason || "";
      case "text_delta":
      case "reasoning_delta": return oneLine(event.delta);
      case "text_completed":
      case "reasoning_completed": return oneLine(event.text);
      case "tool_input_delta": return `${event.tool_name} ${oneLine(event.delta, 60)}`;
      case "tool_call_started": return `${event.tool_name} ${oneLine(event.input, 60)}`;
      case "tool_call_succeeded": return oneLine(event.output);
      case "tool_call_failed": return oneLine(event.error_text);
      case "tool_call_denied": return oneLine(event.reason);
      case "tool_approval_requested": return `${event.tool_name} ${oneLine(event.input, 60)}`;
      case "tool_approval_responded": return `${event.approved ? "approved" : "denied"}${event.reason ? `: ${oneLine(event.reason, 60)}` : ""}`;
      case "agent_error": return `${event.kind}: ${oneLine(event.message, 70)}`;
      case "run_finished": return oneLine(event.result || event.subtype || "");
      case "run_failed": return oneLine(event.error);
      case "run_cancelled":
      case "run_abandoned": return oneLine(event.reason);
      case "custom": return `${event.name} ${oneLine(event.data, 60)}`;
      default: return "";
    }
  }

  function kind(type) {
    if (type.startsWith("run_")) return "run";
    if (type.startsWith("tool_")) return "tool";
    if (type === "heartbeat") return "heartbeat";
    if (type === "agent_error" || type === "run_failed") return "error";
    return "other";
  }

  function onEvent(event) {
    if (typeof event.seq !== "number" || event.seq <= state.lastSeq) return; // never twice
    state.lastSeq = event.seq;
    state.events.push(event);
    const list = $("events");
    const pane = list.parentNode;
    const nearBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 60;
    const row = el(
      "li",
      { class: `event kind-${kind(event.type)} type-${event.type}`, "data-testid": "event-row", "data-seq": event.seq, "data-type": event.type, title: "click to show the event's JSON" },
      el("span", { class: "seq", text: event.seq }),
      el("span", { class: "type", text: event.type }),
      el("span", { class: "run", text: shortRun(event.run_id) }),
      el("span", { class: "summary", text: summary(event) }),
    );
    // Any event opens as its JSON, exactly as the log holds it.
    row.addEventListener("click", () => {
      const shown = row.querySelector(".event-json");
      if (shown) shown.remove();
      else row.append(el("pre", { class: "event-json", "data-testid": "event-json", text: JSON.stringify(event, null, 2) }));
    });
    list.append(row);
    while (list.childElementCount > MAX_LOG_ROWS) list.firstElementChild.remove();
    $("event-count").textContent = `(${state.events.length})`;
    if (nearBottom) pane.scrollTop = pane.scrollHeight;
    scheduleMessages();
    // The selected session's line follows its stream; its status comes from the server.
    const listed = state.sessions.find((s) => s.id === state.sessionId);
    if (listed && event.seq > listed.head) {
      listed.head = event.seq;
      listed.last_activity_at = event.time;
      renderSessionsSoon();
    }
    if (event.type.startsWith("run_") || event.type.startsWith("tool_approval_") || event.type === "session_created") refreshSessionsSoon();
  }

  let sessionsFrame = null;
  function renderSessionsSoon() {
    if (sessionsFrame !== null) return;
    sessionsFrame = requestAnimationFrame(() => { sessionsFrame = null; renderSessions(); });
  }

  let sessionsTimer = null;
  function refreshSessionsSoon() {
    if (sessionsTimer !== null) return;
    sessionsTimer = setTimeout(() => { sessionsTimer = null; refreshSessions(); }, 150);
  }

  // -- the stream: EventSource, or polling when a token is needed ----------------------------

  let source = null;
  let pollGeneration = 0;

  function setConnected(connected, label) {
    state.connected = connected;
    const badge = $("connection");
    badge.textContent = label || (connected ? "live" : "reconnecting…");
    badge.className = `conn ${connected ? "conn-on" : "conn-off"}`;
  }

  const EVENT_TYPES = [
    "session_created", "session_forked", "custom", "run_started", "conversation_rewound",
    "agent_initialized", "agent_status", "step_started", "step_finished", "text_delta",
    "text_completed", "reasoning_delta", "reasoning_completed", "tool_input_delta",
    "tool_call_started", "tool_call_succeeded", "tool_call_failed", "tool_call_denied",
    "tool_approval_requested", "tool_approval_responded", "agent_error", "tool_call_refused",
    "model_call_metered", "egress_refused", "heartbeat", "run_finished", "run_failed", "run_cancelled", "run_abandoned", "session_deleted",
    "prompt_queued", "steering_delivered", "queue_cleared",
  ];

  function handleFrame(message) {
    try {
      onEvent(JSON.parse(message.data));
    } catch (error) {
      noteError("frame", error);
    }
  }

  // A read-only token for this session's stream, or null when the server needs none.
  async function streamToken(sessionId) {
    const t = token();
    if (!t) return null;
    if (t.startsWith("agl1.")) return t; // already a session token
    const minted = await api(`/v1/sessions/${encodeURIComponent(sessionId)}/tokens`, {
      method: "POST",
      body: { scope: "read", ttl_seconds: 3600 },
    });
    return minted.token;
  }

  function openStream(sessionId, offset = null) {
    closeStream();
    const generation = pollGeneration;
    streamToken(sessionId).then(
      (readToken) => {
        if (generation !== pollGeneration || state.sessionId !== sessionId) return;
        state.mode = "sse";
        openEventSource(sessionId, offset, readToken);
      },
      (error) => {
        if (generation !== pollGeneration || state.sessionId !== sessionId) return;
        noteError("stream token", error);
        state.mode = "poll";
        poll(sessionId, ++pollGeneration);
      },
    );
  }

  function openEventSource(sessionId, offset, readToken) {
    // Every frame is `event: <type>`; listen to each known type, and to plain messages in
    // case a newer server sends a type this page does not know yet.
    const params = new URLSearchParams();
    if (offset !== null) params.set("offset", String(offset));
    if (readToken) params.set("access_token", readToken);
    const query = params.toString() ? `?${params}` : "";
    const opened = new EventSource(`/v1/sessions/${encodeURIComponent(sessionId)}/events${query}`);
    source = opened;
    source.onopen = () => {
      state.opens += 1;
      setConnected(true);
      scheduleMessages(); // what happened while we were away (hydration included)
    };
    source.onerror = () => {
      const closed = opened.readyState === EventSource.CLOSED;
      setConnected(false, closed ? "disconnected" : "reconnecting…");
      scheduleMessages(1000); // the projection may say the run ended without us
      // EventSource retries network errors by itself, but gives up on an HTTP error (a
      // proxy's 502, a 400 for a Last-Event-ID the server does not have): start over, slowly,
      // from what this page has (events at or before lastSeq are skipped if sent again).
      if (closed) {
        setTimeout(() => {
          if (source === opened && state.sessionId === sessionId) openStream(sessionId, state.lastSeq);
        }, RESTART_MS);
      }
    };
    source.onmessage = handleFrame;
    for (const type of EVENT_TYPES) source.addEventListener(type, handleFrame);
  }

  async function poll(sessionId, generation) {
    let failing = false;
    while (generation === pollGeneration) {
      try {
        const body = await api(`/v1/sessions/${encodeURIComponent(sessionId)}/events?offset=${state.lastSeq}&limit=1000`);
        if (generation !== pollGeneration) return;
        if (!state.connected) {
          state.opens += 1;
          setConnected(true, "live (polling)");
          scheduleMessages();
        }
        failing = false;
        for (const event of body.events) onEvent(event);
        if (body.events.length >= 1000) continue;
      } catch (error) {
        if (!failing) noteError("poll", error);
        failing = true;
        setConnected(false, error.status === 401 ? "bad or missing token" : "reconnecting…");
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  function closeStream() {
    pollGeneration += 1;
    if (source) {
      source.close();
      source = null;
    }
    setConnected(false, "not connected");
  }

  // -- selecting a session ------------------------------------------------------------------

  function selectFromHash() {
    const id = hashParams().get("session");
    if (id === state.sessionId) return;
    state.sessionId = id;
    state.lastSeq = 0;
    state.events = [];
    state.messages = [];
    state.head = 0;
    state.runActive = false;
    $("events").replaceChildren();
    $("event-count").textContent = "";
    $("messages").replaceChildren();
    renderSessions();
    if (!id) {
      closeStream();
      $("session-header").replaceChildren(el("p", { class: "muted", text: "Select a session on the left, or create one." }));
      return;
    }
    renderHeader();
    openStream(id);
    fetchMessages();
  }

  function select(id) {
    const params = hashParams();
    params.set("session", id);
    location.hash = params.toString();
  }

  // -- forms --------------------------------------------------------------------------------

  $("new-session").addEventListener("submit", async (e) => {
    e.preventDefault();
    const title = $("new-title").value.trim();
    try {
      const session = await api("/v1/sessions", { method: "POST", body: title ? { title } : {} });
      $("new-title").value = "";
      await refreshSessions();
      select(session.id);
    } catch (error) {
      noteError("new session", error);
      $("prompt-status").textContent = `Could not create a session: ${error.message}`;
    }
  });

  $("examples").addEventListener("change", (e) => {
    if (e.target.value) $("prompt").value = e.target.value;
    e.target.value = "";
    $("prompt").focus();
  });

  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("prompt-form").requestSubmit();
  });

  $("prompt-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const prompt = $("prompt").value.trim();
    const status = $("prompt-status");
    if (!prompt) return;
    try {
      let id = state.sessionId;
      if (!id) {
        const session = await api("/v1/sessions", { method: "POST", body: { title: oneLine(prompt, 40) } });
        id = session.id;
        select(id);
      }
      const run = await api(`/v1/sessions/${encodeURIComponent(id)}/runs`, { method: "POST", body: { prompt } });
      $("prompt").value = "";
      // Sent while the session was busy, the prompt waits in the log for a turn of its own.
      status.textContent = run.status === "queued" ? `queued (position ${run.position})` : `started ${shortRun(run.run_id)}`;
      refreshSessionsSoon();
    } catch (error) {
      noteError("run", error);
      status.textContent = error.status === 409 ? error.message : `Could not start the run: ${error.message}`;
    }
  });

  window.addEventListener("hashchange", () => { takeTokenFromHash(); selectFromHash(); });
  takeTokenFromHash();
  refreshSessions();
  setInterval(refreshSessions, SESSIONS_REFRESH_MS);
  selectFromHash();
})();
