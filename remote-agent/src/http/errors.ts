import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AgentErrorCode, API_PREFIX, type ErrorBody } from '../contract/index.js';
import { isAppError } from '../errors.js';
import { isStorageError, STORAGE_FULL_MESSAGE } from '../ops/storage.js';

const FASTIFY_CODES: Record<string, { code: AgentErrorCode; message: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: AgentErrorCode.MEDIA_TYPE_UNSUPPORTED,
    message: 'Send the body as JSON with Content-Type: application/json.',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: AgentErrorCode.BODY_TOO_LARGE,
    message: 'The request body is larger than the agent accepts (1 MiB). Send less.',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: AgentErrorCode.BODY_INVALID_JSON,
    message: 'The Content-Length header does not match the body.',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: AgentErrorCode.BODY_INVALID_JSON, message: 'The body is not valid JSON.' },
};

/**
 * Fastify's `frameworkErrors`: what it refuses before routing (a URL it cannot percent-decode, a path parameter too
 * long) leaves in our error format too, and the connection is closed after the answer. An upgrade request's socket
 * is nobody's once the server handed it over, so without this it would stay open, unanswered, for good.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const socket = request.raw.socket;
  if (request.headers.upgrade !== undefined) reply.raw.once('finish', () => socket.end(() => socket.destroy()));
  const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
  void reply
    .status(tooLong ? 414 : 400)
    .header('connection', 'close')
    .send({
      error: {
        code: AgentErrorCode.REQUEST_URL_INVALID,
        message: tooLong
          ? 'A part of the URL path is too long. Check the id in the path.'
          : 'The URL cannot be decoded (a % must start a valid escape such as %25). Percent-encode the path and query.',
      },
    });
}

/**
 * Every error leaves the agent as `{error: {code, message}}`; internals of 5xx errors stay in the log. `notFound`
 * (default: the admin API's words) answers unknown routes; null leaves that to the caller (Fastify allows one
 * not-found handler per prefix).
 */
export function registerErrorHandling(app: FastifyInstance, options: { notFound?: string | null } = {}): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isAppError(error)) {
      const body: ErrorBody = {
        error: { code: error.code, message: error.message, ...(error.issues ? { issues: error.issues } : {}) },
      };
      return reply.status(error.status).send(body);
    }
    const known = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (known)
      return reply.status(error.statusCode ?? 400).send({ error: { code: known.code, message: known.message } });
    if (error instanceof SyntaxError || (error.statusCode === 400 && /JSON/i.test(error.message))) {
      return reply.status(400).send({
        error: { code: AgentErrorCode.BODY_INVALID_JSON, message: `The body is not valid JSON (${error.message}).` },
      });
    }
    // A full disk is the admin's to fix, not a bug: say so instead of a 500 (creating a slot, a user...).
    if (isStorageError(error)) {
      request.log.warn({ err: error }, 'a write failed: the data dir is full');
      return reply.status(507).send({ error: { code: AgentErrorCode.STORAGE_FULL, message: STORAGE_FULL_MESSAGE } });
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return reply
        .status(error.statusCode)
        .send({ error: { code: AgentErrorCode.VALIDATION_FAILED, message: error.message } });
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.status(500).send({
      error: {
        code: AgentErrorCode.INTERNAL_ERROR,
        message: `The agent hit an unexpected error (request ${request.id}); it is in the agent's log. Retry, and report it if it persists.`,
      },
    });
  });

  const hint =
    options.notFound === undefined
      ? `The admin API is under ${API_PREFIX}/; GET /health needs no token.`
      : options.notFound;
  if (hint !== null) {
    app.setNotFoundHandler((request, reply) => {
      reply.status(404).send({
        error: {
          code: AgentErrorCode.ROUTE_NOT_FOUND,
          message: `No route ${request.method} ${request.url.split('?')[0]}. ${hint}`,
        },
      });
    });
  }

  // An empty body with a JSON content type means "no body", as curl and many clients send it.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      const parseError = new SyntaxError((error as Error).message) as SyntaxError & { statusCode: number };
      parseError.statusCode = 400;
      done(parseError, undefined);
    }
  });
}
