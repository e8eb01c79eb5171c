import { DefaultChatTransport, type UIMessage } from 'ai';

// This page's own backend (server.py) holds the API token and mints this chat's session token.
export async function openChat(chatId: string) {
  const minted = await fetch(`/session-token?chat=${encodeURIComponent(chatId)}`);
  if (!minted.ok) throw new Error(`session token: ${minted.status}`);
  const { base, token } = (await minted.json()) as { base: string; token: string };
  const headers = { Authorization: `Bearer ${token}` };
  const transport = new DefaultChatTransport({ api: `${base}/v1/chat`, headers });
  const stored = await fetch(`${base}/v1/sessions/${chatId}/messages`, { headers });
  const { messages } = (await stored.json()) as { messages: UIMessage[] };
  const post = (path: string, body: object) => fetch(`${base}${path}`, {
    method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  // useChat's stop() only closes the fetch: stopRun stops the run; steer joins the running turn.
  const stopRun = () => post(`/v1/chat/${chatId}/stop`, {});
  const steer = (text: string) => post(`/v1/sessions/${chatId}/runs`, { prompt: text, steer: true });
  const fileUrl = (url: string) => (url.startsWith('/') ? `${base}${url}?access_token=${token}` : url);
  return { transport, messages, stopRun, steer, fileUrl };
}
