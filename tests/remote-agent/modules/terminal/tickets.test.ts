import { describe, expect, it } from 'vitest';
import { originAccepted, TicketStore } from '../../../../remote-agent/src/modules/terminal/tickets.js';

const TTL_MS = 30_000;

/** A ticket store on a clock the test moves by hand. */
function storeWithClock(start = 1_000_000): { store: TicketStore; advance: (ms: number) => void } {
  let now = start;
  return { store: new TicketStore(() => now), advance: (ms) => (now += ms) };
}

describe('TicketStore', () => {
  it('issues URL-safe tickets of 256 random bits that expire after the TTL', () => {
    const { store } = storeWithClock(5000);
    const { ticket, expiresAt } = store.issue(
      { slotId: 'aaaaaaaaaa', mode: 'writable', origin: null, audience: 'admin' },
      TTL_MS,
    );
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(ticket, 'base64url')).toHaveLength(32);
    expect(expiresAt).toBe(5000 + TTL_MS);
    const many = new Set(
      Array.from(
        { length: 1000 },
        () => store.issue({ slotId: 'a', mode: 'writable', origin: null, audience: 'admin' }, 1).ticket,
      ),
    );
    expect(many.size).toBe(1000);
  });

  it('grants the slot and mode once: a second use of the same ticket fails', () => {
    const { store } = storeWithClock();
    const { ticket } = store.issue(
      { slotId: 'aaaaaaaaaa', mode: 'read-only', origin: null, audience: 'admin' },
      TTL_MS,
    );
    expect(store.redeem(ticket)).toMatchObject({
      slotId: 'aaaaaaaaaa',
      mode: 'read-only',
      origin: null,
      audience: 'admin',
    });
    expect(store.redeem(ticket)).toBeNull();
  });

  it('refuses a ticket once its TTL has passed, and accepts it just before', () => {
    const { store, advance } = storeWithClock();
    const early = store.issue(
      { slotId: 'aaaaaaaaaa', mode: 'writable', origin: null, audience: 'admin' },
      TTL_MS,
    ).ticket;
    const late = store.issue(
      { slotId: 'aaaaaaaaaa', mode: 'writable', origin: null, audience: 'admin' },
      TTL_MS,
    ).ticket;
    advance(TTL_MS - 1);
    expect(store.redeem(early)).toMatchObject({
      slotId: 'aaaaaaaaaa',
      mode: 'writable',
      origin: null,
      audience: 'admin',
    });
    advance(1);
    expect(store.redeem(late)).toBeNull();
  });

  it('refuses unknown, altered and empty tickets', () => {
    const { store } = storeWithClock();
    const { ticket } = store.issue({ slotId: 'aaaaaaaaaa', mode: 'writable', origin: null, audience: 'admin' }, TTL_MS);
    expect(store.redeem('')).toBeNull();
    expect(store.redeem('not-a-ticket')).toBeNull();
    expect(store.redeem(ticket.slice(0, -1))).toBeNull();
    expect(store.redeem(`${ticket}A`)).toBeNull();
    // The real one still works: failed attempts do not use it up.
    expect(store.redeem(ticket)).not.toBeNull();
  });

  it("revokes every ticket of a stopped slot and only that slot's", () => {
    const { store } = storeWithClock();
    const stopped = [
      store.issue({ slotId: 'aaaaaaaaaa', mode: 'writable', origin: null, audience: 'admin' }, TTL_MS).ticket,
      store.issue({ slotId: 'aaaaaaaaaa', mode: 'read-only', origin: null, audience: 'admin' }, TTL_MS).ticket,
    ];
    const other = store.issue(
      { slotId: 'bbbbbbbbbb', mode: 'writable', origin: null, audience: 'admin' },
      TTL_MS,
    ).ticket;
    store.revokeSlot('aaaaaaaaaa');
    expect(stopped.map((ticket) => store.redeem(ticket))).toEqual([null, null]);
    expect(store.redeem(other)).toMatchObject({
      slotId: 'bbbbbbbbbb',
      mode: 'writable',
      origin: null,
      audience: 'admin',
    });
  });

  it('keeps the page origin a ticket was minted for', () => {
    const { store } = storeWithClock();
    const grant = {
      slotId: 'aaaaaaaaaa',
      mode: 'writable' as const,
      origin: 'http://127.0.0.1:5173',
      audience: 'admin' as const,
    };
    expect(store.redeem(store.issue(grant, TTL_MS).ticket)).toMatchObject(grant);
  });
});

describe('originAccepted', () => {
  const panel = 'http://127.0.0.1:43210';

  it('takes a browser-bound ticket only from its own origin, never without an Origin header', () => {
    expect(originAccepted(panel, panel, [])).toBe(true);
    expect(originAccepted(panel, 'http://127.0.0.1:43211', [])).toBe(false);
    expect(originAccepted(panel, 'http://localhost:43210', [])).toBe(false);
    expect(originAccepted(panel, 'null', [])).toBe(false);
    expect(originAccepted(panel, undefined, [])).toBe(false);
    // The allow-list is for tickets minted without an origin, not a way around a ticket's own.
    expect(originAccepted(panel, 'https://share.example.com', ['https://share.example.com'])).toBe(false);
  });

  it("takes an origin-less ticket without Origin (the CLI), or from an allowed page's origin only", () => {
    expect(originAccepted(null, undefined, [])).toBe(true);
    expect(originAccepted(null, 'https://evil.example', [])).toBe(false);
    expect(originAccepted(null, 'https://share.example.com', ['https://share.example.com'])).toBe(true);
  });

  it("takes an app://slotdeck ticket only from the Electron panel's page", () => {
    expect(originAccepted('app://slotdeck', 'app://slotdeck', [])).toBe(true);
    expect(originAccepted('app://slotdeck', 'app://evil', [])).toBe(false);
    expect(originAccepted('app://slotdeck', 'null', [])).toBe(false);
    expect(originAccepted('app://slotdeck', undefined, [])).toBe(false);
  });

  it('never takes Origin: null (sandboxed iframes, data: and file: pages send it), whatever the ticket', () => {
    for (const bound of [panel, 'file://', 'app://slotdeck', null]) {
      expect(originAccepted(bound, 'null', []), String(bound)).toBe(false);
      expect(originAccepted(bound, 'null', ['null']), String(bound)).toBe(false);
    }
    // An older panel's file:// ticket still opens from a page that names itself file://, nothing else.
    expect(originAccepted('file://', 'file://', [])).toBe(true);
    expect(originAccepted('file://', 'http://127.0.0.1:43210', [])).toBe(false);
  });

  it("keeps a ticket's audience and lease, and forgets every ticket of a lease at once", () => {
    const store = new TicketStore();
    const grant = {
      slotId: 'aaaaaaaaaa',
      mode: 'read-only' as const,
      origin: 'https://agent.example',
      audience: 'public' as const,
    };
    const leased = [1, 2].map(
      () => store.issue({ ...grant, lease: 'share:sh_0000000001', leaseLimit: 2 }, TTL_MS).ticket,
    );
    const other = store.issue({ ...grant, lease: 'share:sh_0000000002' }, TTL_MS).ticket;
    expect(store.redeem(leased[0]!)).toMatchObject({ ...grant, lease: 'share:sh_0000000001', leaseLimit: 2 });
    store.revokeLease('share:sh_0000000001');
    expect(store.redeem(leased[1]!)).toBeNull();
    expect(store.redeem(other)).toMatchObject({ ...grant, lease: 'share:sh_0000000002' });
  });

  it('says a redeemed grant ended when its share or session ended after it was minted, for a minute', () => {
    let now = 1_000_000;
    const store = new TicketStore(() => now);
    const grant = { slotId: 'aaaaaaaaaa', mode: 'writable' as const, origin: null, audience: 'public' as const };
    const viewer = store.redeem(
      store.issue({ ...grant, lease: 'share:sh_0000000001', alsoLease: 'session:s1' }, TTL_MS).ticket,
    )!;
    expect(store.leaseEnded(viewer)).toBe(false);
    // A ticket of the viewer's session (its second lease) is forgotten with the session.
    const pending = store.issue({ ...grant, lease: 'share:sh_0000000002', alsoLease: 'session:s1' }, TTL_MS).ticket;
    now += 10;
    store.revokeLease('session:s1');
    expect(store.leaseEnded(viewer)).toBe(true);
    expect(store.redeem(pending)).toBeNull();
    // A ticket minted after the end (a new share opening) is not ended by it.
    now += 10;
    const later = store.redeem(store.issue({ ...grant, alsoLease: 'session:s1' }, TTL_MS).ticket)!;
    expect(store.leaseEnded(later)).toBe(false);
  });
});
