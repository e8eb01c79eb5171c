// Drives the AI SDK's own Chat (npm `ai`) against a live agentlog server with the transport
// configured only with `api: BASE + '/v1/chat'` (plus the token header when tokens are on), as
// `useChat({ id, transport, resume: true })` does: a page load calls `resumeStream()`. The chat
// id is new: its first send creates the session. Steps: send; send a slow run and reload the
// page mid-stream (a new Chat hydrated from GET /messages, then `resumeStream()`); regenerate;
// edit the last question;
// reload with nothing running. `lastOnly`: the chat sends only its last message (the AI SDK's
// `prepareSendMessagesRequest` pattern, as docs/use-chat.md shows it). Then a long run is
// stopped with POST /v1/chat/{id}/stop, and the chat sends again.
//
// Input: one JSON line {"base", "chatId", "headers", "lastOnly", "prompts": {"first", "slow", "edited", "long"}}.
// Output: one JSON line {"steps": [{"name", "chat", "server", "status", "error"}], "requests",
// "stopAnswer": {"status", "body"}}.
import { DefaultChatTransport } from 'ai';
import { Chat, answerEachLine } from './chat.mjs';

function chatFor({ base, chatId, headers, lastOnly }, messages, requests) {
  const recordingFetch = async (url, init) => {
    requests.push({ method: init?.method ?? 'GET', url: String(url), body: init?.body ?? null });
    return fetch(url, init);
  };
  const options = { api: `${base}/v1/chat`, headers, fetch: recordingFetch };
  if (lastOnly) {
    options.prepareSendMessagesRequest = ({ id, messages, trigger, messageId }) => ({
      body: { id, messages: messages.slice(-1), trigger, messageId },
    });
  }
  return new Chat({ id: chatId, messages, transport: new DefaultChatTransport(options) });
}

async function serverMessages({ base, chatId, headers }) {
  const response = await fetch(`${base}/v1/sessions/${chatId}/messages`, { headers });
  if (!response.ok) throw new Error(`GET /messages: ${response.status}`);
  return (await response.json()).messages;
}

const isTool = part => part.type === 'dynamic-tool' || part.type?.startsWith('tool-');

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function until(condition, what) {
  for (let i = 0; i < 600; i++) {
    if (condition()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function drive(config) {
  const requests = [];
  const steps = [];
  const record = async (name, chat) => {
    steps.push({
      name,
      chat: structuredClone(chat.messages),
      server: await serverMessages(config),
      status: chat.status,
      error: chat.error === undefined ? null : String(chat.error.message ?? chat.error),
    });
  };
  const chat = chatFor(config, [], requests);
  await chat.resumeStream(); // a page load with resume: true, before the chat exists
  await chat.sendMessage({ text: config.prompts.first });
  await record('sent', chat);

  // A page reload mid-stream: the old page's fetch is simply dropped.
  const sending = chat.sendMessage({ text: config.prompts.slow });
  await until(
    () => chat.messages.at(-1)?.role === 'assistant' && chat.messages.at(-1).parts.some(
      isTool),
    'the slow tool call on the stream',
  );
  const reloaded = chatFor(config, await serverMessages(config), requests);
  await reloaded.resumeStream();
  await record('reloaded mid-stream', reloaded);
  await sending;

  await reloaded.regenerate();
  await record('regenerated', reloaded);
  // Edit the last question (a user message the log holds): it and what follows are replaced.
  await reloaded.sendMessage({ text: config.prompts.edited, messageId: reloaded.messages[2].id });
  await record('edited', reloaded);

  const idle = chatFor(config, await serverMessages(config), requests);
  await idle.resumeStream();
  await record('reloaded, nothing running', idle);

  // Stop: the chat's own stream shows the stopped tool ended and then closes by itself.
  const stopping = idle.sendMessage({ text: config.prompts.long });
  await until(
    () => idle.messages.at(-1)?.role === 'assistant' && idle.messages.at(-1).parts.some(
      p => isTool(p) && p.state === 'input-available'),
    'the long tool call running',
  );
  const stopped = await fetch(`${config.base}/v1/chat/${config.chatId}/stop`, {
    method: 'POST',
    headers: { ...config.headers, 'Content-Type': 'application/json' },
    body: '{}',
  });
  const stopAnswer = { status: stopped.status, body: await stopped.json() };
  await stopping;
  await record('stopped', idle);
  await idle.sendMessage({ text: config.prompts.first });
  await record('sent after the stop', idle);
  return { steps, requests, stopAnswer };
}

await answerEachLine(drive);
