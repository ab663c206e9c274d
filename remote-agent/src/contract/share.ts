// Share links of slots: admin routes and the public share page's routes (modules/share).
import { z } from 'zod';
import { endpoint } from './http.js';
import { SlotId, SlotIdParams } from './slots.js';
import { UserId } from './users.js';

const API = '/api/v1';
const PUBLIC_API = '/api/public';

export const SHARE_ID_PATTERN = /^sh_[a-z0-9]{10}$/;
export const ShareId = z.string().regex(SHARE_ID_PATTERN, { message: 'must be a share id such as sh_0123456789' });
export type ShareId = z.infer<typeof ShareId>;

/** `read`: viewers watch; `write`: viewers type too. */
export const ShareMode = z.enum(['read', 'write']);
export type ShareMode = z.infer<typeof ShareMode>;

export const ShareState = z.enum(['active', 'expired', 'revoked']);
export type ShareState = z.infer<typeof ShareState>;

/** At most 30 days. */
export const SHARE_MAX_EXPIRY_MINUTES = 30 * 24 * 60;
export const SHARE_MAX_VIEWERS = 100;
export const SHARE_MAX_FRAME_ANCESTORS = 10;

/** A share token: 32 random bytes in base64url (43 characters). Shown once, in the link; only its SHA-256 is kept. */
export const SHARE_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * An origin allowed to embed a share page (CSP frame-ancestors): `https://host[:port]` or `http://host[:port]`,
 * no path, no wildcard, lowercase host, as browsers send it in `Origin`.
 */
export const FrameAncestor = z
  .string()
  .max(200)
  .refine(
    (value) => {
      if (
        !/^https?:\/\/[a-z0-9.-]+(?::[0-9]{1,5})?$/.test(value) &&
        !/^https?:\/\/\[[0-9a-f:.]+\](?::[0-9]{1,5})?$/.test(value)
      )
        return false;
      try {
        return new URL(value).origin === value;
      } catch {
        return false;
      }
    },
    {
      message:
        'must be an origin such as https://intranet.example.com or http://localhost:8080: http or https, lowercase host, optional port, no path or wildcard',
    },
  );

export const CreateShareBody = z
  .strictObject({
    mode: ShareMode,
    expiresInMinutes: z
      .int({ message: 'must be a whole number of minutes' })
      .min(1, { message: 'at least 1 minute' })
      .max(SHARE_MAX_EXPIRY_MINUTES, { message: 'at most 30 days (43200 minutes)' }),
    maxViewers: z.int().min(1).max(SHARE_MAX_VIEWERS).nullable().optional(),
    signInRequired: z.boolean(),
    /** Only with signInRequired: the signed-in users who may open it (empty: nobody but those listed later). */
    allowedUserIds: z.array(UserId).max(100).optional(),
    /** Origins that may embed the share page in an iframe; none by default (the page cannot be framed). */
    frameAncestors: z.array(FrameAncestor).max(SHARE_MAX_FRAME_ANCESTORS).default([]),
    label: z.string().trim().max(80).optional(),
  })
  .refine((body) => body.signInRequired || !body.allowedUserIds || body.allowedUserIds.length === 0, {
    message: 'allowedUserIds needs signInRequired: true',
    path: ['allowedUserIds'],
  });
export type CreateShareBody = z.input<typeof CreateShareBody>;

/** A share as the admin (or the slot's owner) sees it: never the token. */
export const Share = z.object({
  id: ShareId,
  slotId: SlotId,
  mode: ShareMode,
  label: z.string().nullable(),
  expiresAt: z.string(),
  maxViewers: z.number().nullable(),
  signInRequired: z.boolean(),
  allowedUserIds: z.array(z.string()),
  frameAncestors: z.array(z.string()),
  /** `admin` or the user id of the owner who made it from the portal. */
  createdBy: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  lastOpenedAt: z.string().nullable(),
  opens: z.number(),
  /** Viewers connected through this share right now. */
  viewersNow: z.number(),
  state: ShareState,
});
export type Share = z.infer<typeof Share>;

export const ShareList = z.object({ shares: z.array(Share) });
export type ShareList = z.infer<typeof ShareList>;

/** The answer to creating a share: the link (with the token) is shown this once. */
export const CreatedShare = z.object({
  share: Share,
  /** `${publicUrl}/share/<token>` */
  link: z.string(),
  /** An `<iframe>` of the link, ready to paste into another site (that origin must be in frameAncestors). */
  iframeSnippet: z.string(),
});
export type CreatedShare = z.infer<typeof CreatedShare>;

export const ShareIdParams = z.strictObject({ id: ShareId });

/** Any string: a malformed token is answered like an unknown one (SHARE_NOT_FOUND). */
export const ShareTokenParams = z.strictObject({ token: z.string() });

/**
 * What the share page (`GET /share/:token`) receives as its `slotdeck-data` JSON; never the token (the page reads it
 * from its own URL). `not-found` also covers a malformed token.
 */
export const SharePageData = z.object({
  state: z.enum(['active', 'expired', 'revoked', 'not-found']),
  slotName: z.string().nullable(),
  mode: ShareMode.nullable(),
  signInRequired: z.boolean(),
});
export type SharePageData = z.infer<typeof SharePageData>;

/**
 * A single-use terminal ticket for a share viewer (valid 30 s, bound to the page's Origin). `url` is the path of the
 * public terminal WebSocket with the ticket in it: connect to `ws(s)://<page host><url>` with subprotocol "tty".
 */
export const ShareTicket = z.object({
  ticket: z.string(),
  url: z.string(),
  mode: ShareMode,
  slotName: z.string(),
  expiresAt: z.string(),
});
export type ShareTicket = z.infer<typeof ShareTicket>;

/** The public terminal WebSocket (tickets with audience "public" only: share viewers, portal users). */
export const PUBLIC_TERMINAL_PATH = `${PUBLIC_API}/terminal/:id`;
/** The share page (HTML) on the public listener. */
export const SHARE_PAGE_PATH = '/share/:token';

export const shareApi = {
  createShare: endpoint({
    method: 'POST',
    path: `${API}/slots/:id/shares`,
    auth: 'admin',
    params: SlotIdParams,
    body: CreateShareBody,
    response: CreatedShare,
    status: 201,
    summary: 'Make a share link for a slot; the answer is the only time the link is shown',
  }),
  listShares: endpoint({
    method: 'GET',
    path: `${API}/slots/:id/shares`,
    auth: 'admin',
    params: SlotIdParams,
    response: ShareList,
    status: 200,
    summary: "A slot's share links with their viewers now (never the links themselves)",
  }),
  revokeShare: endpoint({
    method: 'DELETE',
    path: `${API}/shares/:id`,
    auth: 'admin',
    params: ShareIdParams,
    response: Share,
    status: 200,
    summary: 'Revoke a share link; its viewers are disconnected at once',
  }),
  /** Public listener, the slot's owner signed in (session cookie + x-slotdeck-csrf), when the admin allows it. */
  portalCreateShare: endpoint({
    method: 'POST',
    path: `${PUBLIC_API}/portal/slots/:id/shares`,
    auth: 'none',
    params: SlotIdParams,
    body: CreateShareBody,
    response: CreatedShare,
    status: 201,
    summary: 'The slot owner makes a share link (when the admin lets owners share)',
  }),
  portalListShares: endpoint({
    method: 'GET',
    path: `${PUBLIC_API}/portal/slots/:id/shares`,
    auth: 'none',
    params: SlotIdParams,
    response: ShareList,
    status: 200,
    summary: "The owner's view of a slot's share links",
  }),
  portalRevokeShare: endpoint({
    method: 'DELETE',
    path: `${PUBLIC_API}/portal/shares/:id`,
    auth: 'none',
    params: ShareIdParams,
    response: Share,
    status: 200,
    summary: 'The owner revokes a share link of their slot',
  }),
  /** Public: the share page exchanges its token (from its URL) for a terminal ticket; no cookie needed. */
  shareTicket: endpoint({
    method: 'POST',
    path: `${PUBLIC_API}/share/:token/ticket`,
    auth: 'none',
    params: ShareTokenParams,
    response: ShareTicket,
    status: 201,
    summary: 'A short-lived terminal ticket for a share viewer',
  }),
};
