// Builds UIMessages from agentlog's UI message streams with the AI SDK's own client code.
//
// Input: one JSON object per stdin line, {"messages": [...], "sse": "<response body>",
// "pieceSize": 7}: the chat's messages before the stream, and the bytes agentlog's GET /stream
// answers. Output: one JSON line per input, {"messages", "status", "error", "request"}.
//
// Each stream goes through the path `useChat({resume: true})` takes on page load: a Chat
// (`AbstractChat` from 'ai') whose `DefaultChatTransport` GETs `{api}/{chatId}/stream` and
// parses the SSE body with `parseJsonEventStream` + `uiMessageChunkSchema`, then
// `processUIMessageStream` builds the message. The only stand-ins are `fetch` (it answers with
// the given body, cut into `pieceSize`-byte pieces so SSE frames straddle reads) and the
// chat's state holder, written like @ai-sdk/react's: `pushMessage` appends, `replaceMessage`
// stores a `structuredClone` snapshot.
import { DefaultChatTransport } from 'ai';
import { Chat, answerEachLine } from './chat.mjs';

function responseFor(body, pieceSize) {
  const bytes = new TextEncoder().encode(body);
  let offset = 0;
  const stream = new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + pieceSize));
      offset += pieceSize;
    },
  });
  return new Response(stream, {
    status: 200,
    headers: {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-vercel-ai-ui-message-stream': 'v1',
    },
  });
}

async function assemble({ messages = [], sse, pieceSize = 7 }) {
  const requests = [];
  const fetch = async (url, init) => {
    requests.push({ method: init?.method ?? 'GET', url: String(url) });
    return responseFor(sse, pieceSize);
  };
  const chat = new Chat({
    id: 'session-1',
    messages,
    transport: new DefaultChatTransport({ api: '/api/chat', fetch }),
  });
  await chat.resumeStream();
  return {
    messages: chat.messages,
    status: chat.status,
    error: chat.error === undefined ? null : String(chat.error.message ?? chat.error),
    requests,
  };
}

await answerEachLine(assemble);
