// The AI SDK's own Chat (npm `ai`'s AbstractChat) with the state holder written like
// @ai-sdk/react's: `pushMessage` appends, `replaceMessage` stores a `structuredClone` snapshot.
// Shared by the scripts here that drive a Chat against a server or a recorded stream.
import { createInterface } from 'node:readline';
import { AbstractChat } from 'ai';

class ArrayChatState {
  constructor(messages) {
    this.status = 'ready';
    this.error = undefined;
    this.messages = messages;
  }

  pushMessage = message => {
    this.messages = this.messages.concat(message);
  };

  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };

  replaceMessage = (index, message) => {
    this.messages = [
      ...this.messages.slice(0, index),
      this.snapshot(message),
      ...this.messages.slice(index + 1),
    ];
  };

  snapshot = thing => structuredClone(thing);
}

export class Chat extends AbstractChat {
  constructor({ messages, ...init }) {
    super({ ...init, state: new ArrayChatState(messages) });
  }
}

// Answers each JSON line on stdin with `handle`'s result as one JSON line on stdout (a thrown
// error is answered as {"crashed": <its stack>}): how the Python tests drive these scripts.
export async function answerEachLine(handle) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let result;
    try {
      result = await handle(JSON.parse(line));
    } catch (error) {
      result = { crashed: String(error?.stack ?? error) };
    }
    process.stdout.write(JSON.stringify(result) + '\n');
  }
}
