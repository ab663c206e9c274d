import { splitReports } from '../terminal/reports.js';

/**
 * What keeps a host awake. Only a person's doing counts: bytes typed into a console (not the reports a terminal
 * sends back by itself when a program queries it, which any open console would keep sending), and gateway requests
 * made with a real key (not legacy mode, where a request needs no key and every scanner would count, and not
 * listing the models, which clients poll on their own).
 */

/** Whether terminal input holds anything typed, once the terminal's automatic reports are taken out. */
export function typedInput(data: Buffer): boolean {
  return data.length > 0 && splitReports(data).typed.length > 0;
}

export interface GatewayRequestFacts {
  /** An API key let it in (false in legacy mode, where the request named no key). */
  keyed: boolean;
  method: string;
  /** The request's path (and query). */
  url: string;
}

export function gatewayRequestCounts({ keyed, method, url }: GatewayRequestFacts): boolean {
  if (!keyed) return false;
  const path = url.split('?')[0] ?? '';
  return !(method === 'GET' && /^\/v1\/models(\/|$)/.test(path));
}
