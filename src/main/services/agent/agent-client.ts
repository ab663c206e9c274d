import type { z } from 'zod';
import { AgentErrorCode, buildPath, ErrorBody, type Endpoint } from '../../../../remote-agent/src/contract/index';
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
const AGENT_CODES = new Set<string>(Object.values(AgentErrorCode));

type Query = Record<string, string | number | boolean | undefined>;

/**
 * The agent's HTTP API, typed by the agent's own contract. Every answer is parsed with the endpoint's schema, and
 * failures become IpcErrors that say what to do (the agent's own codes passed through); the admin token never
 * leaves main.
 */
export class AgentClient {
  constructor(private readonly endpoint: () => AgentEndpoint) {}

  async call<E extends Endpoint>(
    endpoint: E,
    request: Request<E>,
    signal?: AbortSignal,
  ): Promise<z.output<E['response']>> {
    const target = this.endpoint();
    const response = await this.send(
      target,
      {
        method: endpoint.method,
        path: buildPath(endpoint.path, request.params ?? {}),
        query: request.query as Query | undefined,
        body: request.body,
        admin: endpoint.auth === 'admin',
      },
      TIMEOUT_MS,
      signal,
    );
    const text = await response.text();
    let payload: unknown;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = null;
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

  /**
   * A GET whose answer is not JSON (a streamed export): the response once it is known to be a success, for the
   * caller to stream; failures are the same IpcErrors as call()'s.
   */
  async download(path: string, query: Query, timeoutMs: number, signal?: AbortSignal): Promise<Response> {
    return this.send(this.endpoint(), { method: 'GET', path, query, admin: true }, timeoutMs, signal);
  }

  /** A PUT of a file's bytes, streamed (a backup upload); failures are the same IpcErrors as call()'s. */
  async upload(
    path: string,
    body: ReadableStream<Uint8Array>,
    size: number,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Response> {
    return this.send(this.endpoint(), { method: 'PUT', path, admin: true, stream: { body, size } }, timeoutMs, signal);
  }

  private async send(
    target: AgentEndpoint,
    request: {
      method: string;
      path: string;
      query?: Query | undefined;
      body?: unknown;
      admin: boolean;
      stream?: { body: ReadableStream<Uint8Array>; size: number };
    },
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Response> {
    const query = request.query
      ? new URLSearchParams(
          Object.entries(request.query)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]): [string, string] => [k, String(v)]),
        ).toString()
      : '';
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      response = await fetch(`${target.baseUrl}${request.path}${query ? `?${query}` : ''}`, {
        method: request.method,
        headers: {
          // The host profile's name goes into the agent's audit log as who acted (percent-encoded: headers are ASCII).
          ...(request.admin
            ? { authorization: `Bearer ${target.token}`, 'x-slotdeck-actor': encodeURIComponent(target.label) }
            : {}),
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(request.stream
            ? { 'content-type': 'application/octet-stream', 'content-length': String(request.stream.size) }
            : {}),
        },
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        ...(request.stream ? { body: request.stream.body, duplex: 'half' as const } : {}),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (error) {
      if (signal?.aborted) throw new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
      if (timeout.aborted)
        throw new IpcError(
          IpcErrorCode.AGENT_ERROR,
          `The agent on ${target.label} did not answer within ${timeoutMs / 1000} s. Try again.`,
        );
      throw new IpcError(
        IpcErrorCode.AGENT_NOT_RUNNING,
        `The agent on ${target.label} does not answer (${(error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message}). Check that it runs (slotdeck-agent health on the host).`,
      );
    }
    if (response.ok) return response;
    let payload: unknown = null;
    try {
      payload = JSON.parse(await response.text());
    } catch {
      // not an agent error body: reported by status below
    }
    if (response.status === 401 && request.admin) {
      throw new IpcError(
        IpcErrorCode.AGENT_TOKEN_REJECTED,
        `The agent on ${target.label} refused the admin token. Enter the current one in the host's settings, or leave it empty to read it again over SSH.`,
      );
    }
    const body = ErrorBody.safeParse(payload);
    if (!body.success) {
      throw new IpcError(IpcErrorCode.AGENT_ERROR, `The agent on ${target.label} answered ${response.status}.`, {
        status: String(response.status),
      });
    }
    const { code, message, issues } = body.data.error;
    // The agent's stable code goes through as is (USER_NAME_TAKEN, KEY_NOT_ACTIVE...); one this panel does not know
    // yet (a newer agent) stays readable in details.
    throw new IpcError(AGENT_CODES.has(code) ? (code as AgentErrorCode) : IpcErrorCode.AGENT_ERROR, message, {
      agentCode: code,
      ...(issues?.length ? { fields: issues.map((issue) => `${issue.path}: ${issue.message}`).join('\n') } : {}),
    });
  }
}
