import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import helmet from '@fastify/helmet';
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TTYD_SUBPROTOCOL } from '../../contract/index.js';
import { registerErrorHandling } from '../../http/errors.js';
import { onWebSocketClientError } from '../terminal/routes.js';

/**
 * Where the end users' web front door lives on the public listener (beside the gateway's /v1/ routes):
 * - PUBLIC_API_PREFIX: JSON routes of the portal, sign-in and share pages, answered as `{error: {code, message}}`;
 * - everything else that is not /v1/ or /health: the portal's and share pages' HTML and assets.
 */
export const PUBLIC_API_PREFIX = '/api/public';
/** Largest request body of the public site's routes. */
export const SITE_BODY_LIMIT_BYTES = 64 * 1024;

/** One part of the public site: registers its routes in the site's context (JSON bodies, coded errors, CSP). */
export type PublicSiteModule = (site: FastifyInstance) => void | Promise<void>;

export interface PublicSiteOptions {
  /** The listener terminates TLS itself, or `publicUrl` is https (a TLS proxy in front): HSTS and Secure cookies. */
  secure: boolean;
  modules: PublicSiteModule[];
}

const NONCE = Symbol('slotdeck.cspNonce');
type WithNonce = ServerResponse & { [NONCE]?: string };

/** The nonce this answer's <script> tags must carry (the CSP lists it). */
export function scriptNonce(reply: FastifyReply): string {
  return (reply.raw as WithNonce)[NONCE] ?? '';
}

/**
 * The public site's security headers apply to every answer of the public listener, the gateway's included: a strict
 * CSP with per-response nonces (pages may run only their own scripts), no framing unless a share page allows its
 * listed origins (it replaces frame-ancestors itself), no sniffing, no referrer beyond the origin, HSTS with TLS.
 */
export function registerPublicSite(app: FastifyInstance, options: PublicSiteOptions): void {
  app.addHook('onRequest', (_request, reply, done) => {
    (reply.raw as WithNonce)[NONCE] = randomBytes(16).toString('base64');
    done();
  });
  // On the listener's root (helmet is not encapsulated): the gateway's answers get the headers too.
  void app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        scriptSrc: ["'self'", (_request, response) => `'nonce-${(response as WithNonce)[NONCE] ?? ''}'`],
        // xterm.js themes its DOM renderer through a <style> element it creates at run time, which no nonce can
        // cover; styles cannot run code, so inline styles are allowed while scripts need the nonce.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        manifestSrc: ["'self'"],
      },
    },
    // Cross-origin isolation headers would stop share pages from loading inside other sites' iframes.
    crossOriginEmbedderPolicy: false,
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
    strictTransportSecurity: options.secure ? { maxAge: 31_536_000, includeSubDomains: false } : false,
    xFrameOptions: { action: 'deny' },
  });
  void app.register(async (site) => {
    // Encapsulated: JSON bodies and the agent's error format for the site, while the gateway's routes keep theirs.
    site.removeAllContentTypeParsers();
    // The site's JSON is small (sign-in forms, key names, share settings): unauthenticated bodies stay small too,
    // whatever the gateway's /v1 limit (sized for model requests) is.
    site.addHook('onRoute', (route) => {
      route.bodyLimit ??= SITE_BODY_LIMIT_BYTES;
    });
    registerErrorHandling(site, { notFound: null });
    await site.register(
      (api, _options, done) => {
        registerErrorHandling(api, {
          notFound: `The portal's API is under ${PUBLIC_API_PREFIX}/; open / in a browser to sign in.`,
        });
        done();
      },
      { prefix: PUBLIC_API_PREFIX },
    );
    await site.register(websocket, {
      errorHandler: onWebSocketClientError,
      options: {
        maxPayload: 1024 * 1024,
        handleProtocols: (protocols) => (protocols.has(TTYD_SUBPROTOCOL) ? TTYD_SUBPROTOCOL : false),
      },
    });
    for (const module of options.modules) await module(site);
  });
}

/**
 * Lets a page be framed by the listed origins only (a share link's embedders): its CSP's frame-ancestors is replaced
 * and X-Frame-Options (which cannot list origins) removed. With no origins the page stays unframeable.
 */
export function allowFraming(reply: FastifyReply, origins: readonly string[]): void {
  if (origins.length === 0) return;
  const policy = reply.getHeader('content-security-policy');
  if (typeof policy === 'string')
    reply.header(
      'content-security-policy',
      policy.replace(/frame-ancestors [^;]*/, `frame-ancestors ${origins.join(' ')}`),
    );
  reply.removeHeader('x-frame-options');
}

/** Whether a request may use the page's session: a state-changing request must come from the site's own pages. */
export function sameOriginRequest(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  const origin = request.headers.origin;
  const host = request.headers.host;
  if (origin === undefined || host === undefined) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
