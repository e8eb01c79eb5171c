import { useEffect, useState } from 'react';
import { useChat } from '@ai-sdk/react';
import { lastAssistantMessageIsCompleteWithApprovalResponses } from 'ai';
import { openChat } from './transport';
import { FileUrl, MessageView } from './Parts';

type OpenedChat = Awaited<ReturnType<typeof openChat>>;

// The chat id lives in the address (`?chat=...`), so a reload reopens the same chat.
function chatIdFromAddress(): string {
  const url = new URL(window.location.href);
  let id = url.searchParams.get('chat');
  if (!id) {
    id = `chat-${crypto.randomUUID()}`;
    url.searchParams.set('chat', id);
    window.history.replaceState(null, '', url);
  }
  return id;
}

export function App() {
  const [chatId] = useState(chatIdFromAddress);
  const [opened, setOpened] = useState<OpenedChat | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    openChat(chatId).then(setOpened, (error: unknown) => setFailure(String(error)));
  }, [chatId]);
  if (failure) return <p role="alert">{failure}</p>;
  if (!opened) return <p>Opening the chat…</p>;
  return <ChatView chatId={chatId} {...opened} />;
}

function ChatView({ chatId, transport, messages: stored, stopRun, steer: steerRun, fileUrl }: { chatId: string } & OpenedChat) {
  const chat = useChat({
    id: chatId,
    messages: stored,
    transport,
    resume: true,
    // An answered approval goes back to the server by itself (the AI SDK's approval flow).
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
  });
  const { messages, status, error, sendMessage, regenerate, stop } = chat;
  const [text, setText] = useState('');
  const [files, setFiles] = useState<FileList | undefined>();
  const [steer, setSteer] = useState(false);
  const [fileInputKey, setFileInputKey] = useState(0);
  const busy = status === 'submitted' || status === 'streaming';

  const send = (event: React.FormEvent) => {
    event.preventDefault();
    if (!text.trim() && !files?.length) return;
    if (steer && busy && !files?.length) {
      // Into the running turn at its next step: not a message of its own, so not useChat's
      // send; the stream already open shows it as a steering-message part.
      void steerRun(text);
    } else {
      // While a run is active the server queues the message for a turn of its own.
      void sendMessage({ text, files });
    }
    setText('');
    setFiles(undefined);
    setFileInputKey(key => key + 1);
  };
  const stopAll = async () => {
    const stopped = await stopRun().catch(() => null);
    // Once the run has stopped its stream ends by itself; closing the fetch here as well could
    // cut off a message sent meanwhile. Only when agentlog did not answer is it closed here.
    if (!stopped?.ok) await stop();
  };
  const edit = (messageId: string, edited: string) => void sendMessage({ text: edited, messageId });

  return (
    <FileUrl.Provider value={fileUrl}>
      <main data-status={status} data-chat-id={chatId}>
        <h1>agentlog chat</h1>
        <section className="messages">
          {messages.map(message => (
            <MessageView
              key={message.id}
              message={message}
              onEdit={busy ? undefined : edited => edit(message.id, edited)}
              // Not while a stream is read: a resumed stream replays the message from its start
              // and would overwrite the answer before it is sent.
              onApproval={busy ? undefined : (id, approved) => void chat.addToolApprovalResponse({ id, approved })}
            />
          ))}
        </section>
        {error && (
          <p role="alert" className="error" data-error>
            {error.message}
          </p>
        )}
        <form onSubmit={send} className="composer">
          <textarea
            name="prompt"
            value={text}
            onChange={event => setText(event.target.value)}
            placeholder="Ask the agent"
          />
          <input
            key={fileInputKey}
            type="file"
            name="attach"
            multiple
            onChange={event => setFiles(event.target.files ?? undefined)}
          />
          <label>
            <input type="checkbox" name="steer" checked={steer} onChange={e => setSteer(e.target.checked)} />
            steer the running turn
          </label>
          <button type="submit" name="send">Send</button>
          <button type="button" name="stop" disabled={!busy} onClick={() => void stopAll()}>
            Stop
          </button>
          <button
            type="button"
            name="regenerate"
            disabled={busy || messages.at(-1)?.role !== 'assistant'}
            onClick={() => void regenerate()}
          >
            Regenerate
          </button>
          <span className="status">{status}</span>
        </form>
      </main>
    </FileUrl.Provider>
  );
}
