// Drives the AI SDK's own Chat (npm `ai`) against a live agentlog server, the transport
// configured only with `api: BASE + '/v1/chat'` (plus the token header): `sendMessage({ text,
// files })` with a file part as a browser's file picker makes it (a data: URL), then a page
// reload (a new Chat hydrated from GET /messages) that sends again and regenerates, its file
// part now the server's URL.
//
// Input: one JSON line {"base", "chatId", "headers", "file": {FileUIPart}, "prompts": {"first",
// "second"}}.
// Output: one JSON line {"steps": [{"name", "chat", "server", "status", "error"}], "bodies"}.
import { DefaultChatTransport } from 'ai';
import { Chat, answerEachLine } from './chat.mjs';

function chatFor({ base, chatId, headers }, messages, bodies) {
  const recordingFetch = async (url, init) => {
    if (init?.body) bodies.push(JSON.parse(init.body));
    return fetch(url, init);
  };
  const transport = new DefaultChatTransport({
    api: `${base}/v1/chat`, headers, fetch: recordingFetch,
  });
  return new Chat({ id: chatId, messages, transport });
}

async function serverMessages({ base, chatId, headers }) {
  const response = await fetch(`${base}/v1/sessions/${chatId}/messages`, { headers });
  if (!response.ok) throw new Error(`GET /messages: ${response.status}`);
  return (await response.json()).messages;
}

async function drive(config) {
  const bodies = [];
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
  const chat = chatFor(config, [], bodies);
  await chat.sendMessage({ text: config.prompts.first, files: [config.file] });
  await record('sent with a file', chat);

  const reloaded = chatFor(config, await serverMessages(config), bodies);
  await reloaded.sendMessage({ text: config.prompts.second });
  await record('sent after a reload', reloaded);
  await reloaded.regenerate({ messageId: reloaded.messages[1].id });
  await record('regenerated the first answer', reloaded);
  return { steps, bodies };
}

await answerEachLine(drive);
