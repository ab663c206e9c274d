/**
 * ttyd's WebSocket protocol, which the agent's slot terminals speak so that ttyd's own web client can attach too.
 * Every frame starts with one ASCII command byte. The client opens with a JSON message (AuthToken, columns, rows).
 */
export const TTYD_SUBPROTOCOL = 'tty';

export const ClientCommand = {
  INPUT: '0',
  RESIZE: '1',
  PAUSE: '2',
  RESUME: '3',
  /** The opening message is a bare JSON object. */
  JSON_DATA: '{',
} as const;

export const ServerCommand = {
  OUTPUT: '0',
  SET_WINDOW_TITLE: '1',
  SET_PREFERENCES: '2',
} as const;

/** WebSocket close codes the agent uses, beyond the standard ones. */
export const TerminalCloseCode = {
  /** The slot stopped or was deleted. */
  SLOT_GONE: 4404,
  /** The opening message did not carry a valid ticket. */
  UNAUTHORIZED: 4401,
  /** The opening message was missing or malformed. */
  PROTOCOL_ERROR: 4400,
  /** The agent is shutting down (the slot keeps running). */
  AGENT_RESTARTING: 4503,
  /** What the viewer's access hung on ended: the share link was revoked or expired, the session ended. Do not retry. */
  ACCESS_ENDED: 4403,
  /** The share link already has as many viewers as it allows. */
  VIEWER_LIMIT: 4429,
} as const;
