import type { AlertNotifier } from './alert-watcher';

/** The part of Electron's Notification class used here (injected, so a test can stand in for it). */
export interface NotificationClass {
  isSupported(): boolean;
  new (options: { title: string; body: string; silent?: boolean }): { show(): void };
}

/** Desktop notifications through Electron's Notification: one per newly firing alert, titled by its host. */
export function createDesktopNotifier(Notification: NotificationClass): AlertNotifier {
  return ({ hostName, title, body }) => {
    if (!Notification.isSupported()) return;
    new Notification({
      title: `${hostName}: ${title}`,
      body: body.length > 240 ? `${body.slice(0, 239)}…` : body,
    }).show();
  };
}
