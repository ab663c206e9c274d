import { z } from 'zod';
import { endpoint } from './http.js';

const API = '/api/v1';

/**
 * Idle auto-stop: the agent keeps the activity clock (terminal input from any client, a gateway request, an admin
 * API call that changes something; the panel's polling GETs do not count), so the policy works while the panel is
 * closed. When the host has been idle for `minutes`, the agent runs its stop command once.
 */
export const IdlePolicy = z.strictObject({
  enabled: z.boolean(),
  minutes: z
    .int({ message: 'must be a whole number of minutes' })
    .min(1, { message: 'at least 1 minute' })
    .max(7 * 24 * 60, { message: 'at most a week (10080 minutes)' }),
});
export type IdlePolicy = z.infer<typeof IdlePolicy>;

export const IdleActivity = z.enum(['start', 'terminal', 'gateway', 'admin', 'keep-awake']);

export const IdleStatus = z.object({
  policy: IdlePolicy,
  /** What the agent runs to stop the machine (from its config file; never settable over the API). */
  stopCommand: z.string(),
  lastActivityAt: z.string(),
  lastActivity: IdleActivity,
  keepAwakeUntil: z.string().nullable(),
  /** When the machine will be stopped if nothing happens (null: policy off). */
  stopAt: z.string().nullable(),
  secondsLeft: z.number().nullable(),
  /** `stopping`: the command is running or ran; `failed`: it ran and failed (see lastStop), the clock restarted. */
  state: z.enum(['off', 'counting', 'stopping', 'failed']),
  lastStop: z.object({ at: z.string(), exitCode: z.number().nullable(), output: z.string() }).nullable(),
});
export type IdleStatus = z.infer<typeof IdleStatus>;

export const KeepAwakeBody = z.strictObject({
  minutes: z
    .int()
    .min(1)
    .max(24 * 60)
    .default(60),
});

export const idleApi = {
  getIdle: endpoint({
    method: 'GET',
    path: `${API}/idle`,
    auth: 'admin',
    response: IdleStatus,
    status: 200,
    summary: 'The idle auto-stop policy and its countdown',
  }),
  setIdle: endpoint({
    method: 'PUT',
    path: `${API}/idle`,
    auth: 'admin',
    body: IdlePolicy,
    response: IdleStatus,
    status: 200,
    summary: 'Turn idle auto-stop on or off and set its minutes',
  }),
  keepAwake: endpoint({
    method: 'POST',
    path: `${API}/idle/keep-awake`,
    auth: 'admin',
    body: KeepAwakeBody,
    response: IdleStatus,
    status: 200,
    summary: 'Postpone the idle stop: the host counts as busy for the given minutes',
  }),
};
