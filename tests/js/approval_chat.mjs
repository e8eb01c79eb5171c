// Drives the AI SDK's own Chat (npm `ai`) against a live agentlog server through a tool
// approval, as `useChat` does: sendMessage, then addToolApprovalResponse with
// `sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses`, which posts the
// messages (carrying the decision) by itself and continues the assistant message.
//
// Input: one JSON line {"base", "sessionId", "prompt", "approved", "reason", "chatRoute"?}
// (`chatRoute`: the transport configured only with `api: BASE + '/v1/chat'`). Output: one JSON
// line {"beforeAnswer", "messages", "status", "error", "requests"}; `requests` are the POST
// bodies the chat sent.
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses } from 'ai';
import { Chat, answerEachLine } from './chat.mjs';

let describe = () => '';

async function until(check, what, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${describe()}`);
    await new Promise(resolve => setTimeout(resolve, 50));
  }
}

async function approve({ base, sessionId, prompt, approved, reason, chatRoute }) {
  const requests = [];
  const recordingFetch = async (url, init) => {
    requests.push(JSON.parse(init.body));
    return fetch(url, init);
  };
  const chat = new Chat({
    id: sessionId,
    messages: [],
    transport: new DefaultChatTransport(
      chatRoute
        ? { api: `${base}/v1/chat`, fetch: recordingFetch }
        : {
            api: `${base}/v1/sessions/${sessionId}/runs`,
            headers: { Accept: 'text/event-stream' },
            fetch: recordingFetch,
          },
    ),
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
  });
  describe = () =>
    JSON.stringify({ status: chat.status, error: String(chat.error ?? ''), last: chat.lastMessage });
  await chat.sendMessage({ text: prompt });
  const asked = () =>
    chat.lastMessage?.parts.find(part => part.state === 'approval-requested');
  await until(() => chat.status === 'ready' && asked(), 'the approval request');
  const part = asked();
  const beforeAnswer = structuredClone(chat.messages);
  await chat.addToolApprovalResponse({ id: part.approval.id, approved, reason });
  const ended = () =>
    chat.lastMessage?.parts.some(
      p =>
        p.toolCallId === part.toolCallId &&
        (p.state === 'output-available' || p.state === 'output-denied'),
    );
  await until(() => chat.status !== 'submitted' && chat.status !== 'streaming' && ended(), 'the continued turn');
  return {
    beforeAnswer,
    messages: chat.messages,
    status: chat.status,
    error: chat.error === undefined ? null : String(chat.error.message ?? chat.error),
    requests,
  };
}

await answerEachLine(approve);
