import {
  embedOriginProblem,
  SHARE_MAX_EXPIRY_MINUTES,
  SHARE_MAX_FRAME_ANCESTORS,
  SHARE_MAX_VIEWERS,
  type CreatedShare,
  type CreateShareBody,
} from '../../../../shared/ipc/contract';

export type ExpiryPreset = '1h' | '1d' | '7d' | '30d' | 'custom';
export const EXPIRY_PRESETS: ReadonlyArray<{ value: ExpiryPreset; label: string }> = [
  { value: '1h', label: '1 hour' },
  { value: '1d', label: '1 day' },
  { value: '7d', label: '7 days' },
  { value: '30d', label: '30 days' },
  { value: 'custom', label: 'Custom' },
];
const PRESET_MINUTES: Record<Exclude<ExpiryPreset, 'custom'>, number> = {
  '1h': 60,
  '1d': 24 * 60,
  '7d': 7 * 24 * 60,
  '30d': 30 * 24 * 60,
};

/** The share dialog's fields as typed. */
export interface ShareDraft {
  mode: 'read' | 'write';
  expiry: ExpiryPreset;
  customAmount: string;
  customUnit: 'minutes' | 'hours' | 'days';
  maxViewers: string;
  signInRequired: boolean;
  allowedUserIds: string[];
  /** One origin a line (commas work too). */
  origins: string;
  label: string;
}

export const EMPTY_SHARE_DRAFT: ShareDraft = {
  mode: 'read',
  expiry: '1d',
  customAmount: '',
  customUnit: 'hours',
  maxViewers: '',
  signInRequired: false,
  allowedUserIds: [],
  origins: '',
  label: '',
};

export type ShareField = 'expiry' | 'maxViewers' | 'allowedUserIds' | 'origins' | 'label';
export type ShareProblems = Partial<Record<ShareField, string>>;

const UNIT_MINUTES = { minutes: 1, hours: 60, days: 24 * 60 } as const;

/** The origins typed, one a line or comma-separated, each checked; duplicates are dropped. */
export function parseOrigins(text: string): { origins: string[]; problems: string[] } {
  const origins: string[] = [];
  const problems: string[] = [];
  for (const item of text.split(/[\n,]/)) {
    const value = item.trim();
    if (!value) continue;
    const problem = embedOriginProblem(value);
    if (problem) problems.push(problem);
    else {
      const origin = value.replace(/\/$/, '');
      if (!origins.includes(origin)) origins.push(origin);
    }
  }
  return { origins, problems };
}

/** The expiry in minutes, or why it is not one. */
export function expiryMinutes(draft: Pick<ShareDraft, 'expiry' | 'customAmount' | 'customUnit'>): number | string {
  if (draft.expiry !== 'custom') return PRESET_MINUTES[draft.expiry];
  const amount = Number(draft.customAmount.trim());
  if (!draft.customAmount.trim() || !Number.isInteger(amount) || amount <= 0)
    return 'enter a whole number above 0 for how long the link works';
  const minutes = amount * UNIT_MINUTES[draft.customUnit];
  if (minutes > SHARE_MAX_EXPIRY_MINUTES) return 'a share link works 30 days at most: pick a shorter time';
  return minutes;
}

/**
 * The request for the agent from the dialog's fields, or what the admin must fix first, by field. The agent checks
 * again; this lets the dialog say it before anything is sent.
 */
export function shareRequest(draft: ShareDraft): { body: CreateShareBody } | { problems: ShareProblems } {
  const problems: ShareProblems = {};
  const minutes = expiryMinutes(draft);
  if (typeof minutes === 'string') problems.expiry = minutes;
  let maxViewers: number | null = null;
  if (draft.maxViewers.trim()) {
    const n = Number(draft.maxViewers.trim());
    if (!Number.isInteger(n) || n < 1 || n > SHARE_MAX_VIEWERS)
      problems.maxViewers = `a whole number from 1 to ${SHARE_MAX_VIEWERS}, or empty for no limit`;
    else maxViewers = n;
  }
  if (draft.signInRequired && draft.allowedUserIds.length === 0)
    problems.allowedUserIds = 'pick at least one user who may open it, or turn “sign-in required” off';
  const { origins, problems: originProblems } = parseOrigins(draft.origins);
  if (originProblems.length > 0) problems.origins = originProblems.join('; ');
  else if (origins.length > SHARE_MAX_FRAME_ANCESTORS)
    problems.origins = `at most ${SHARE_MAX_FRAME_ANCESTORS} origins`;
  if (draft.label.trim().length > 80) problems.label = 'at most 80 characters';
  if (Object.keys(problems).length > 0 || typeof minutes === 'string') return { problems };
  return {
    body: {
      mode: draft.mode,
      expiresInMinutes: minutes,
      maxViewers,
      signInRequired: draft.signInRequired,
      ...(draft.signInRequired ? { allowedUserIds: draft.allowedUserIds } : {}),
      frameAncestors: origins,
      ...(draft.label.trim() ? { label: draft.label.trim() } : {}),
    },
  };
}

/** What the two copy buttons of a new share put on the clipboard: the link, and the agent's iframe snippet. */
export function shareCopies(
  created: Pick<CreatedShare, 'link' | 'iframeSnippet'>,
): Array<{ label: string; text: string }> {
  return [
    { label: 'Copy link', text: created.link },
    { label: 'Copy iframe snippet', text: created.iframeSnippet },
  ];
}
