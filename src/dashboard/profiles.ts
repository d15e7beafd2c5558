import type { LiveCluster } from './cluster.js';
import { HttpError } from './errors.js';
import type { DashboardInfo, ProfileEntry } from './model.js';
import type { UsageSampler } from './sampler.js';

/** One profile as the server shows it: what it is and its live view. */
export interface ProfileView {
  /** Its name and API server (known once its credentials are read). */
  info(): Promise<DashboardInfo>;
  cluster: Pick<LiveCluster, 'snapshot' | 'subscribe' | 'clients' | 'state'>;
  /** Its usage over the last minutes (none in tests that need none). */
  usage?: Pick<UsageSampler, 'nodes' | 'pods' | 'recordNodes' | 'recordPods'>;
  /** Stops its watches (when the dashboard stops, or no page shows it any more). */
  close?(): Promise<void>;
}

export interface ProfileSource {
  /** The profile the command named: what a request naming none is served. */
  initial: string;
  /** The user's profiles with their state (what `minilab profile list` shows). */
  list(): Promise<ProfileEntry[]>;
  /** Starts the live view of a profile (the initial one, or one the list holds). */
  open(name: string): ProfileView;
}

export interface SessionTimes {
  now?: () => number;
  /** How long another profile's view lives with no page streaming it. */
  idleMs?: number;
  /** How often views are checked for that. */
  sweepMs?: number;
}

/** A listing asks every engine; the page's switcher asks again within seconds at most. */
const LIST_FRESH_MS = 3000;
/**
 * Each view keeps watches and a usage sampler (and, for a stopped cluster, a reconnect every 10 s
 * that lists the engine's containers): one no page has shown for this long goes.
 */
const IDLE_MS = 5 * 60_000;
const SWEEP_MS = 60_000;
/** Profile names are DNS labels (src/profile/name.ts). */
const PROFILE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface Session {
  view: ProfileView;
  /** The end of each page stream showing it (a stream keeps a view; closing the view ends them). */
  streams: Set<() => void>;
  /** Since when no stream shows it. */
  idleSince: number;
}

/**
 * The profiles one dashboard serves: any of the user's, each started the first time a page asks for
 * it (its credentials read then, as for the first), so switching back is instant. Another profile's
 * view goes when a listing no longer holds it (deleted) or when no page has streamed it for
 * IDLE_MS; the initial profile's stays until the dashboard stops. A name the user has no profile of
 * is refused, never started; after close() every profile is refused.
 */
export class ProfileSessions {
  private readonly sessions = new Map<string, Session>();
  private listed?: { at: number; entries: Promise<ProfileEntry[]> };
  private closed = false;
  private sweeper?: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly idleMs: number;
  private readonly sweepMs: number;

  constructor(
    private readonly source: ProfileSource,
    times: SessionTimes = {},
  ) {
    this.now = times.now ?? (() => Date.now());
    this.idleMs = times.idleMs ?? IDLE_MS;
    this.sweepMs = times.sweepMs ?? SWEEP_MS;
  }

  get initial(): string {
    return this.source.initial;
  }

  /**
   * The profiles, read again when the last reading is older than a few seconds (or failed); the
   * views of profiles a new reading no longer holds are closed.
   */
  list(fresh = false): Promise<ProfileEntry[]> {
    const l = this.listed;
    if (!fresh && l && this.now() - l.at < LIST_FRESH_MS) return l.entries;
    const entries = this.source.list();
    this.listed = { at: this.now(), entries };
    entries.then(
      (listed) => {
        const names = new Set(listed.map((p) => p.name));
        for (const name of this.sessions.keys()) {
          if (name !== this.initial && !names.has(name)) void this.end(name);
        }
      },
      () => {
        if (this.listed?.entries === entries) this.listed = undefined;
      },
    );
    return entries;
  }

  /** The view of a profile already started, without waiting: terminals and port-forwards use it. */
  started(name: string): ProfileView | undefined {
    return this.sessions.get(name)?.view;
  }

  /** The view of `name` (the initial profile when empty), started on first use. */
  async view(name: string): Promise<ProfileView> {
    const wanted = name || this.source.initial;
    this.refuseWhenClosed();
    const known = this.sessions.get(wanted);
    if (known) return known.view;
    if (wanted !== this.source.initial) {
      if (!PROFILE_NAME.test(wanted)) throw new HttpError(400, 'invalid profile name');
      const listed = async (fresh: boolean) => (await this.list(fresh)).some((p) => p.name === wanted);
      if (!(await listed(false)) && !(await listed(true))) {
        throw new HttpError(404, `there is no profile "${wanted}" (minilab profile list shows them)`);
      }
      // The dashboard may have stopped, or another request started the view, while this one listed.
      this.refuseWhenClosed();
      const raced = this.sessions.get(wanted);
      if (raced) return raced.view;
    }
    const view = this.source.open(wanted);
    this.sessions.set(wanted, { view, streams: new Set(), idleSince: this.now() });
    if (wanted !== this.source.initial) this.sweepLater();
    return view;
  }

  /**
   * Marks a page's stream of `name` open until the returned function is called; `end` runs if the
   * view closes first (its profile deleted, or the dashboard stopping).
   */
  attach(name: string, end: () => void): () => void {
    const session = this.sessions.get(name || this.source.initial);
    if (!session) {
      end();
      return () => undefined;
    }
    session.streams.add(end);
    return () => {
      if (session.streams.delete(end) && session.streams.size === 0) session.idleSince = this.now();
    };
  }

  /** Closes the views of other profiles that no page has streamed for the idle time. */
  async sweep(): Promise<void> {
    const idle = [...this.sessions].filter(
      ([name, s]) => name !== this.initial && s.streams.size === 0 && this.now() - s.idleSince >= this.idleMs,
    );
    await Promise.all(idle.map(([name]) => this.end(name)));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.sweeper);
    await Promise.all([...this.sessions.keys()].map((name) => this.end(name)));
  }

  private refuseWhenClosed(): void {
    if (this.closed) throw new HttpError(503, 'the dashboard is stopping');
  }

  /** Checks for idle views every sweepMs while another profile's view is open. */
  private sweepLater(): void {
    if (this.sweeper) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      void this.sweep().then(() => {
        if (!this.closed && [...this.sessions.keys()].some((n) => n !== this.initial)) this.sweepLater();
      });
    }, this.sweepMs);
    this.sweeper.unref();
  }

  private async end(name: string): Promise<void> {
    const session = this.sessions.get(name);
    if (!session) return;
    this.sessions.delete(name);
    for (const end of [...session.streams]) end();
    await session.view.close?.();
  }
}
