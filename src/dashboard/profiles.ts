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
  /** Stops its watches (when the dashboard stops). */
  close?(): Promise<void>;
}

export interface ProfileSource {
  /** The profile the command named: what a request naming none is served. */
  initial: string;
  /** The user's profiles with their state (what `minilab profile list` shows). */
  list(): Promise<ProfileEntry[]>;
  /** Starts the live view of a profile (the initial one, or one the list holds); once per profile. */
  open(name: string): ProfileView;
}

/** A listing asks every engine; the page's switcher asks again within seconds at most. */
const LIST_FRESH_MS = 3000;
/** Profile names are DNS labels (src/profile/name.ts). */
const PROFILE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The profiles one dashboard serves: any of the user's, each started the first time a page asks for
 * it (its credentials read then, as for the first) and kept until the dashboard stops, so switching
 * back is instant. A name the user has no profile of is refused, never started.
 */
export class ProfileSessions {
  private readonly views = new Map<string, ProfileView>();
  private listed?: { at: number; entries: Promise<ProfileEntry[]> };

  constructor(
    private readonly source: ProfileSource,
    private readonly now = () => Date.now(),
  ) {}

  get initial(): string {
    return this.source.initial;
  }

  /** The profiles, read again when the last reading is older than a few seconds (or failed). */
  list(fresh = false): Promise<ProfileEntry[]> {
    const l = this.listed;
    if (!fresh && l && this.now() - l.at < LIST_FRESH_MS) return l.entries;
    const entries = this.source.list();
    this.listed = { at: this.now(), entries };
    entries.catch(() => {
      if (this.listed?.entries === entries) this.listed = undefined;
    });
    return entries;
  }

  /** The view of a profile already started, without waiting: terminals and port-forwards use it. */
  started(name: string): ProfileView | undefined {
    return this.views.get(name);
  }

  /** The view of `name` (the initial profile when empty), started on first use. */
  async view(name: string): Promise<ProfileView> {
    const wanted = name || this.source.initial;
    const known = this.views.get(wanted);
    if (known) return known;
    if (wanted !== this.source.initial) {
      if (!PROFILE_NAME.test(wanted)) throw new HttpError(400, 'invalid profile name');
      const listed = async (fresh: boolean) => (await this.list(fresh)).some((p) => p.name === wanted);
      if (!(await listed(false)) && !(await listed(true))) {
        throw new HttpError(404, `there is no profile "${wanted}" (minilab profile list shows them)`);
      }
      // Another request may have started it while this one listed.
      const raced = this.views.get(wanted);
      if (raced) return raced;
    }
    const view = this.source.open(wanted);
    this.views.set(wanted, view);
    return view;
  }

  async close(): Promise<void> {
    const views = [...this.views.values()];
    this.views.clear();
    await Promise.all(views.map((v) => v.close?.()));
  }
}
