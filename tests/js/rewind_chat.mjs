// Drives the AI SDK's own Chat (npm `ai`) against a live agentlog server through a regenerate
// and an edit, as `useChat` does them: `regenerate({messageId})`, `regenerate()` (the last
// answer) and `sendMessage({text, messageId})` (an earlier user message replaced, the messages
// after it dropped), also in a chat loaded from GET /messages. After each step (the first send
// too) it reads GET /messages, and it reloads the way a page does: a new Chat hydrated from
// GET /messages, then `resumeStream()` (GET /stream).
//
// Input: one JSON line {"base", "sessionId", "prompts": {...}}. Output: one JSON line
// {"steps": [{"name", "chat", "server", "reloaded", "reloadStatus", "status", "error"}],
// "requests"}; `requests` are the POST bodies the chat sent.
import { DefaultChatTransport } from 'ai';
import { Chat, answerEachLine } from './chat.mjs';

function chatFor(base, sessionId, messages, requests) {
  const recordingFetch = async (url, init) => {
    if (init?.method === 'POST') requests.push(JSON.parse(init.body));
    return fetch(url, init);
  };
  return new Chat({
    id: sessionId,
    messages,
    transport: new DefaultChatTransport({
      // The chat POSTs to `api` and resumes from `${api}/${chatId}/stream`.
      api: `${base}/v1/sessions/${sessionId}/runs`,
      prepareReconnectToStreamRequest: () => ({
        api: `${base}/v1/sessions/${sessionId}/stream`,
      }),
      headers: { Accept: 'text/event-stream' },
      fetch: recordingFetch,
    }),
  });
}

async function serverMessages(base, sessionId) {
  const response = await fetch(`${base}/v1/sessions/${sessionId}/messages`);
  if (!response.ok) throw new Error(`GET /messages: ${response.status}`);
  return (await response.json()).messages;
}

async function rewind({ base, sessionId, prompts }) {
  const requests = [];
  const chat = chatFor(base, sessionId, [], requests);
  const steps = [];
  const record = async (name, of = chat) => {
    const server = await serverMessages(base, sessionId);
    const reloaded = chatFor(base, sessionId, structuredClone(server), []);
    await reloaded.resumeStream();
    steps.push({
      name,
      chat: structuredClone(of.messages),
      server,
      reloaded: reloaded.messages,
      reloadStatus: reloaded.status,
      status: of.status,
      error: of.error === undefined ? null : String(of.error.message ?? of.error),
    });
  };
  await chat.sendMessage({ text: prompts.first });
  await record('one turn');
  await chat.sendMessage({ text: prompts.second });
  await record('two turns');
  // Regenerate the first answer: the chat keeps only the user message before it.
  await chat.regenerate({ messageId: chat.messages[1].id });
  await record('regenerated the first answer');
  await chat.sendMessage({ text: prompts.recall });
  await record('asked what to remember');
  // Edit the question just asked (a message the chat created: its id is the chat's own).
  await chat.sendMessage({ text: prompts.edited, messageId: chat.messages[2].id });
  await record('edited the last question');
  await chat.regenerate();
  await record('regenerated the last answer');
  // A page loaded now holds the log's own ids. Regenerating keeps the chat's copy of the
  // prompt (its id names the replaced turn's message); editing it afterwards still works.
  const hydrated = chatFor(base, sessionId, await serverMessages(base, sessionId), requests);
  await hydrated.regenerate();
  await record('reloaded, regenerated the last answer', hydrated);
  await hydrated.sendMessage({ text: prompts.editedAgain, messageId: hydrated.messages[2].id });
  await record('reloaded, edited the last question', hydrated);
  return { steps, requests };
}

await answerEachLine(rewind);
