/**
 * The JSON the agent puts in the page (`<script type="application/json" id="slotdeck-data">`, see
 * remote-agent/src/modules/site/pages.ts): read once, never evaluated. Null when absent or not JSON.
 */
export function readPageData(doc: Document = document): unknown {
  const text = doc.getElementById('slotdeck-data')?.textContent;
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** The WebSocket URL of a terminal path the agent answered with (`/api/public/terminal/<id>?ticket=…`), on this page's host. */
export function webSocketUrl(path: string, location: Pick<Location, 'protocol' | 'host'>): string {
  if (!path.startsWith('/')) throw new Error('the agent answered a terminal path that is not a path');
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${path}`;
}
