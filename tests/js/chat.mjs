// The AI SDK's own Chat (npm `ai`'s AbstractChat) with the state holder written like
// @ai-sdk/react's: `pushMessage` appends, `replaceMessage` stores a `structuredClone` snapshot.
// Shared by the scripts here that drive a Chat against a server or a recorded stream.
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
