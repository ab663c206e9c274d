import { alertsApi, type Alert } from '../../../../remote-agent/src/contract/index';
import type { Host } from '../../../shared/ipc/contract';
import type { EventBus } from '../../ipc/events';
import type { Logger } from '../../log';
import type { AgentClient } from '../agent/agent-client';

/** A desktop notification (Electron's Notification in the app; none in browser mode). */
export type AlertNotifier = (notice: { hostId: string; hostName: string; title: string; body: string }) => void;

export interface AlertWatcherDeps {
  hosts: { list(): Host[]; client(id: string): Pick<AgentClient, 'call'> };
  events: Pick<EventBus, 'emit'>;
  log: Logger;
  notify?: AlertNotifier;
  /** How often connected hosts are asked (default 15 s). */
  intervalMs?: number;
}

interface HostWatch {
  /** Ids of firing alerts already seen (notified or there before the panel looked). */
  seen: Set<string>;
  unread: number;
  firing: number;
}

/**
 * Asks every connected host for its alerts every 15 s: tells the windows when a host's unread or firing count
 * changes (`alerts:changed`, the bell), and shows a desktop notification for each alert that starts firing while the
 * panel runs. Alerts already firing when a host is first seen are counted, not notified (no burst at start-up).
 */
export class AlertWatcher {
  private readonly watches = new Map<string, HostWatch>();
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;

  constructor(private readonly deps: AlertWatcherDeps) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.deps.intervalMs ?? 15_000);
    this.timer.unref?.();
    void this.poll();
  }

  /** One round over the connected hosts (not two at a time). */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = null));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const hosts = this.deps.hosts.list().filter((host) => host.status.state === 'connected');
    const connected = new Set(hosts.map((host) => host.id));
    for (const id of this.watches.keys()) if (!connected.has(id)) this.watches.delete(id);
    await Promise.all(hosts.map((host) => this.pollHost(host)));
  }

  private async pollHost(host: Host): Promise<void> {
    let list: { alerts: Alert[]; unread: number; firing: number };
    try {
      list = await this.deps.hosts
        .client(host.id)
        .call(alertsApi.listAlerts, { query: { filter: 'firing', limit: 100 } }, AbortSignal.timeout(10_000));
    } catch (error) {
      // An agent from before alerts (404) or a host going away: the next round tries again.
      this.deps.log.warn('alerts: could not read a host\u2019s alerts', { hostId: host.id, error: String(error) });
      return;
    }
    const watch = this.watches.get(host.id);
    const firingIds = new Set(list.alerts.map((alert) => alert.id));
    if (!watch) {
      this.watches.set(host.id, { seen: firingIds, unread: list.unread, firing: list.firing });
      this.deps.events.emit('alerts:changed', { hostId: host.id, unread: list.unread, firing: list.firing });
      return;
    }
    for (const alert of list.alerts) {
      if (watch.seen.has(alert.id)) continue;
      // Held back by the agent (fired again within the hour): in the history, not a notification.
      if (alert.notified && !alert.read)
        this.deps.notify?.({ hostId: host.id, hostName: host.name, title: alert.title, body: alert.message });
    }
    watch.seen = firingIds;
    if (watch.unread !== list.unread || watch.firing !== list.firing) {
      watch.unread = list.unread;
      watch.firing = list.firing;
      this.deps.events.emit('alerts:changed', { hostId: host.id, unread: list.unread, firing: list.firing });
    }
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
