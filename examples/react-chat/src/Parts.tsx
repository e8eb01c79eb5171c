import { createContext, useContext, useState } from 'react';
import type { UIMessage } from 'ai';

type Part = UIMessage['parts'][number];

// A stored file's `url` is a path on agentlog (GET /messages); an <img> sends no Authorization
// header, so the app resolves it against agentlog with the session token (transport.ts).
export const FileUrl = createContext<(url: string) => string>(url => url);
type ToolPart = Extract<Part, { toolCallId: string }>;
type Indexed = { index: number; part: Part };

const isTool = (part: Part): part is ToolPart => 'toolCallId' in part;

// agentlog marks a subagent's parts with the tool call that started it (docs/projections.md):
// they are shown inside that call's part, not in the turn's own flow.
function parentOf(part: Part): string | undefined {
  const metadata = isTool(part)
    ? part.callProviderMetadata
    : 'providerMetadata' in part
      ? part.providerMetadata
      : undefined;
  const parent = (metadata?.agentlog as { parentToolCallId?: unknown } | undefined)?.parentToolCallId;
  return typeof parent === 'string' ? parent : undefined;
}

type MessageProps = {
  message: UIMessage;
  onEdit?: (text: string) => void;
  onApproval?: (approvalId: string, approved: boolean) => void;
};

export function MessageView({ message, onEdit, onApproval }: MessageProps) {
  const [editing, setEditing] = useState<string | null>(null);
  const calls = new Set(message.parts.filter(isTool).map(part => part.toolCallId));
  const nested = new Map<string, Indexed[]>();
  const top: Indexed[] = [];
  message.parts.forEach((part, index) => {
    const parent = parentOf(part);
    if (parent !== undefined && calls.has(parent)) {
      nested.set(parent, [...(nested.get(parent) ?? []), { index, part }]);
    } else {
      top.push({ index, part });
    }
  });
  const text = message.parts.map(part => (part.type === 'text' ? part.text : '')).join('');
  return (
    <article className={`message ${message.role}`} data-message-id={message.id} data-role={message.role}>
      <header>{message.role}</header>
      {top.map(item => (
        <PartView key={item.index} {...item} nested={nested} onApproval={onApproval} />
      ))}
      {message.role === 'user' && onEdit && editing === null && (
        <button type="button" name="edit" onClick={() => setEditing(text)}>
          Edit
        </button>
      )}
      {editing !== null && (
        <form
          className="edit"
          onSubmit={event => {
            event.preventDefault();
            onEdit?.(editing);
            setEditing(null);
          }}
        >
          <textarea name="edited" value={editing} onChange={event => setEditing(event.target.value)} />
          <button type="submit" name="save">Save</button>
          <button type="button" name="cancel" onClick={() => setEditing(null)}>
            Cancel
          </button>
        </form>
      )}
    </article>
  );
}

type PartProps = Indexed & {
  nested: Map<string, Indexed[]>;
  onApproval?: (approvalId: string, approved: boolean) => void;
};

function PartView({ index, part, nested, onApproval }: PartProps) {
  const common = { 'data-part-index': index, 'data-part-type': part.type };
  const fileUrl = useContext(FileUrl);
  if (isTool(part)) {
    return <ToolView common={common} part={part} nested={nested} onApproval={onApproval} />;
  }
  switch (part.type) {
    case 'text':
      return (
        <p {...common} className="text" data-text>
          {part.text}
        </p>
      );
    case 'reasoning':
      return (
        <details {...common} className="reasoning">
          <summary>Thinking</summary>
          <p data-text>{part.text}</p>
        </details>
      );
    case 'step-start':
      return <hr {...common} />;
    case 'file':
      return (
        <figure {...common} className="file">
          {part.mediaType.startsWith('image/') ? (
            <img src={fileUrl(part.url)} alt={part.filename ?? 'attachment'} />
          ) : (
            <a href={fileUrl(part.url)} target="_blank" rel="noreferrer">
              {part.filename ?? part.mediaType}
            </a>
          )}
        </figure>
      );
    case 'steering-message':
      // A message sent while the agent ran, delivered into the running turn at this point.
      return (
        <blockquote {...common} className="steering">
          <p data-text>{part.parts.map(inner => (inner.type === 'text' ? inner.text : '')).join('')}</p>
          {part.parts.map((inner, i) =>
            inner.type === 'file' ? (
              <a key={i} href={fileUrl(inner.url)}>
                {inner.filename ?? inner.mediaType}
              </a>
            ) : null,
          )}
        </blockquote>
      );
    case 'source-url':
      return (
        <a {...common} href={part.url}>
          {part.title ?? part.url}
        </a>
      );
    default:
      // data-* parts (e.g. data-agent-error) and anything newer: shown as they are.
      return (
        <pre {...common} className={part.type === 'data-agent-error' ? 'error' : 'data'}>
          {JSON.stringify(part, null, 2)}
        </pre>
      );
  }
}

type ToolProps = {
  common: Record<string, string | number>;
  part: ToolPart;
  nested: Map<string, Indexed[]>;
  onApproval?: (approvalId: string, approved: boolean) => void;
};

function ToolView({ common, part, nested, onApproval }: ToolProps) {
  const name = part.type === 'dynamic-tool' ? part.toolName : part.type.slice('tool-'.length);
  const children = nested.get(part.toolCallId) ?? [];
  return (
    <div {...common} className={`tool ${part.state}`} data-state={part.state} data-tool-call-id={part.toolCallId}>
      <div className="tool-name">
        {name} <span className="state">{part.state}</span>
      </div>
      <pre className="input">{JSON.stringify(part.input ?? null, null, 2)}</pre>
      {part.state === 'approval-requested' && (
        <div className="approval">
          <button
            type="button"
            name="approve"
            disabled={!onApproval}
            onClick={() => onApproval?.(part.approval.id, true)}
          >
            Approve
          </button>
          <button
            type="button"
            name="deny"
            disabled={!onApproval}
            onClick={() => onApproval?.(part.approval.id, false)}
          >
            Deny
          </button>
        </div>
      )}
      {part.state === 'approval-responded' && (
        <p className="approval">{part.approval.approved ? 'Approved' : 'Denied'}, waiting for the agent</p>
      )}
      {children.length > 0 && (
        <div className="subagent">
          {children.map(item => (
            <PartView key={item.index} {...item} nested={nested} onApproval={onApproval} />
          ))}
        </div>
      )}
      {part.state === 'output-available' && <pre className="output">{JSON.stringify(part.output, null, 2)}</pre>}
      {part.state === 'output-error' && <p className="error">{part.errorText}</p>}
      {part.state === 'output-denied' && (
        <p className="denied">Denied{part.approval?.reason ? `: ${part.approval.reason}` : ''}</p>
      )}
    </div>
  );
}
