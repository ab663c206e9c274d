import type { EventChannel } from '../../shared/ipc/channels';
import { eventContract, type IpcEvent } from '../../shared/ipc/contract';

type Listener = (channel: EventChannel, payload: unknown) => void;

/** Events from main to every connected renderer (Electron windows and browser-mode pages alike). */
export class EventBus {
  private readonly listeners = new Set<Listener>();

  emit<E extends EventChannel>(channel: E, payload: IpcEvent<E>): void {
    // Payloads are checked against the contract here, so a bad event fails where it is made.
    const checked = eventContract[channel].parse(payload);
    for (const listener of this.listeners) listener(channel, checked);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
