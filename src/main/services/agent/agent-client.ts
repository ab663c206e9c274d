import type { z } from 'zod';
import { buildPath, ErrorBody, type Endpoint } from '../../../../remote-agent/src/contract/index';
import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';

export interface AgentEndpoint {
  /** `http://127.0.0.1:<port>`: the agent itself, or the local end of a tunnel to it. */
  baseUrl: string;
  token: string;
  /** For messages: the host's name as the admin knows it. */
  label: string;
}

/** What a request part takes: never when the endpoint has no such part (its schema is absent or ZodNever). */
type InputOf<S> =
  NonNullable<S> extends z.ZodNever ? never : NonNullable<S> extends z.ZodType ? z.input<NonNullable<S>> : never;
type Request<E extends Endpoint> = ([InputOf<E['params']>] extends [never]
  ? { params?: never }
  : { params: InputOf<E['params']> }) &
  ([InputOf<E['query']>] extends [never] ? { query?: never } : { query?: InputOf<E['query']> }) &
  ([InputOf<E['body']>] extends [never] ? { body?: never } : { body: InputOf<E['body']> });

const TIMEOUT_MS = 30_000;

/**
 * The agent's HTTP API, typed by the agent's own contract. Every answer is parsed with the endpoint's schema, and
 * failures become IpcErrors that say what to do; the admin token never leaves main.
 */
export class AgentClient {
  constructor(private readonly endpoint: () => AgentEndpoint) {}

  async call<E extends Endpoint>(
    endpoint: E,
    request: Request<E>,
    signal?: AbortSignal,
  ): Promise<z.output<E['response']>> {
    const target = this.endpoint();
    const path = buildPath(endpoint.path, request.params ?? {});
    const query = request.query
      ? `?${new URLSearchParams(
          Object.entries(request.query as Record<string, unknown>)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => [k, String(v)]),
        ).toString()}`
      : '';
    const timeout = AbortSignal.timeout(TIMEOUT_MS);
    let response: Response;
    try {
      response = await fetch(`${target.baseUrl}${path}${query === '?' ? '' : query}`, {
        method: endpoint.method,
        headers: {
          ...(endpoint.auth === 'admin' ? { authorization: `Bearer ${target.token}` } : {}),
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (error) {
      if (signal?.aborted) throw new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
      if (timeout.aborted)
        throw new IpcError(
          IpcErrorCode.AGENT_ERROR,
          `The agent on ${target.label} did not answer within ${TIMEOUT_MS / 1000} s. Try again.`,
        );
      throw new IpcError(
        IpcErrorCode.AGENT_NOT_RUNNING,
        `The agent on ${target.label} does not answer (${(error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message}). Check that it runs (slotdeck-agent health on the host).`,
      );
    }
    const text = await response.text();
    let payload: unknown;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const body = ErrorBody.safeParse(payload);
      if (response.status === 401 && endpoint.auth === 'admin') {
        throw new IpcError(
          IpcErrorCode.AGENT_TOKEN_REJECTED,
          `The agent on ${target.label} refused the admin token. Enter the current one in the host's settings, or leave it empty to read it again over SSH.`,
        );
      }
      throw new IpcError(
        IpcErrorCode.AGENT_ERROR,
        body.success ? body.data.error.message : `The agent on ${target.label} answered ${response.status}.`,
        body.success ? { agentCode: body.data.error.code } : { status: String(response.status) },
      );
    }
    const parsed = endpoint.response.safeParse(payload);
    if (!parsed.success) {
      throw new IpcError(
        IpcErrorCode.AGENT_ERROR,
        `The agent on ${target.label} answered in a shape this panel does not understand (${parsed.error.issues[0]?.message ?? 'invalid'}). Update the agent or the panel so that their versions match.`,
      );
    }
    return parsed.data as z.output<E['response']>;
  }
}
