import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { AgentErrorCode, type Endpoint, type ValidationIssue } from '../contract/index.js';
import { AppError } from '../errors.js';

type Infer<T> = T extends z.ZodType ? z.output<T> : never;

export interface RouteInput<E extends Endpoint> {
  params: Infer<E['params']>;
  query: Infer<E['query']>;
  body: Infer<E['body']>;
  request: FastifyRequest;
  reply: FastifyReply;
}

export type RouteHandler<E extends Endpoint> = (
  input: RouteInput<E>,
) => Promise<z.input<E['response']>> | z.input<E['response']>;

/** Turns zod issues into `{path, message}` pairs addressed by where the value was (`body.env.HOME`). */
export function toIssues(where: string, error: z.ZodError): ValidationIssue[] {
  return error.issues.map((issue) => {
    const path = [where, ...issue.path.map(String)].join('.');
    if (issue.code === 'unrecognized_keys') {
      return {
        path,
        message: `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; check the spelling`,
      };
    }
    // zod leaves the input out of its issues; its message says what it received.
    if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message))
      return { path, message: 'is required' };
    return { path, message: issue.message };
  });
}

function parsePart(where: string, schema: z.ZodType | undefined, value: unknown, issues: ValidationIssue[]): unknown {
  if (!schema) return undefined;
  // A route without a body still receives `undefined`; treat an absent body as an empty object.
  const input = where === 'body' && (value === undefined || value === null) ? {} : value;
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  issues.push(...toIssues(where, result.error));
  return undefined;
}

/**
 * Registers a handler for a contract endpoint: params, query and body are parsed with the endpoint's schemas
 * (a failure answers 400 VALIDATION_FAILED listing every problem) and the handler's result is sent with the
 * endpoint's status.
 */
export function bindRoute<E extends Endpoint>(app: FastifyInstance, endpoint: E, handler: RouteHandler<E>): void {
  app.route({
    method: endpoint.method,
    url: endpoint.path,
    config: { auth: endpoint.auth },
    handler: async (request, reply) => {
      const issues: ValidationIssue[] = [];
      const params = parsePart('params', endpoint.params, request.params, issues);
      const query = parsePart('query', endpoint.query, request.query, issues);
      const body = parsePart('body', endpoint.body, request.body, issues);
      if (
        !endpoint.body &&
        request.body !== undefined &&
        request.body !== null &&
        Object.keys(request.body).length > 0
      ) {
        issues.push({ path: 'body', message: 'this route takes no body; send none' });
      }
      if (issues.length > 0) {
        const summary = issues.map((i) => `${i.path} ${i.message}`).join('; ');
        throw new AppError(AgentErrorCode.VALIDATION_FAILED, 400, `Invalid request: ${summary}`, issues);
      }
      const result = await handler({ params, query, body, request, reply } as RouteInput<E>);
      reply.status(endpoint.status);
      return result;
    },
  });
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: 'admin' | 'none' | 'session';
  }
}
