import { useEffect, useRef, useState } from 'preact/hooks';
import type { DashboardInfo, ProfileEntry, ProfilesAnswer } from '../../src/dashboard/model.js';
import { api } from './api.js';
import { Announcer, NamespaceSelect } from './components.js';
import { parseRoute, type Route } from './route.js';
import { NO_SESSION, pageProfile, profileUrl } from './session.js';
import { useStore } from './store.js';
import { Overview } from './views/overview.js';
import { PodDetail } from './views/pod.js';
import { Services } from './views/services.js';
import { Workloads } from './views/workloads.js';
import { YamlView } from './views/yaml.js';
import { Resources } from './views/resources.js';
import { ObjectView } from './views/object.js';
import { Editor } from './views/editor.js';
import { TerminalView } from './views/terminal.js';

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => {
      setRoute(parseRoute(location.hash));
      // Move focus to the new view, as a page load would for keyboard and screen-reader users.
      requestAnimationFrame(() => document.getElementById('main')?.focus({ preventScroll: true }));
    };
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}

function ConnectionStatus() {
  const store = useStore();
  const c = store.cluster;
  let tone = 'ok';
  let text = 'Live';
  if (store.server === 'refused') {
    tone = 'bad';
    text = NO_SESSION;
  } else if (store.server === 'gone') {
    tone = 'bad';
    text = 'No such profile (deleted?): choose another';
  } else if (store.server === 'lost') {
    tone = 'bad';
    text = 'Dashboard stopped: run minilab dashboard again';
  } else if (store.server === 'connecting' && store.loaded) {
    tone = 'warn';
    text = 'Dashboard server unreachable, retrying…';
  } else if (c.state === 'connecting' || !store.loaded) {
    tone = 'warn';
    text = 'Connecting…';
  } else if (c.state === 'reconnecting') {
    tone = 'bad';
    text = `Cluster unreachable (${c.message}); retrying in ${Math.round(c.retryInMs / 1000)} s`;
  }
  return (
    <p class={`connection connection-${tone}`} role="status" title={text}>
      <span class="dot" aria-hidden="true" />
      <span class="connection-text">{text}</span>
    </p>
  );
}

/**
 * The profile shown, from the page's address: `?profile=` set by the switcher (a new history entry,
 * so Back returns to the last one) or by a link, kept by a reload.
 */
function useProfile(): [string, (profile: string) => void] {
  const [profile, setProfile] = useState(pageProfile);
  useEffect(() => {
    const update = () => setProfile(pageProfile());
    addEventListener('popstate', update);
    return () => removeEventListener('popstate', update);
  }, []);
  const choose = (next: string) => {
    history.pushState(null, '', profileUrl(next));
    setProfile(next);
  };
  return [profile, choose];
}

const STATUS_TEXT: Record<ProfileEntry['status'] | 'unlisted', string> = {
  unlisted: 'not found',
  running: 'running',
  stopped: 'stopped',
  partial: 'partly running',
  missing: 'no nodes',
  unreachable: 'engine not answering',
};

/** Every profile of the user's, with its state, read again whenever the list is opened. */
function ProfileSwitcher(props: { current?: string; onChange: (profile: string) => void }) {
  const [profiles, setProfiles] = useState<ProfileEntry[]>();
  const load = () =>
    api<ProfilesAnswer>('GET', '/api/profiles').then(
      (a) => setProfiles(a.profiles),
      () => undefined,
    );
  useEffect(() => void load(), []);
  const listed = profiles ?? [];
  // The profile shown but not listed (deleted meanwhile, or the list not read yet) keeps its entry.
  const shown: { name: string; status: ProfileEntry['status'] | 'unlisted' }[] =
    props.current === undefined || listed.some((p) => p.name === props.current)
      ? listed
      : [{ name: props.current, status: profiles ? 'unlisted' : 'running' }, ...listed];
  return (
    <label class="field inline profile-switch">
      <span class="visually-hidden">Profile</span>
      <select
        value={props.current ?? ''}
        onFocus={() => void load()}
        onChange={(e) => props.onChange(e.currentTarget.value)}
      >
        {shown.map((p) => (
          <option key={p.name} value={p.name}>
            {p.name}
            {p.status === 'running' ? '' : ` (${STATUS_TEXT[p.status]})`}
          </option>
        ))}
      </select>
    </label>
  );
}

const NAV = [
  { view: 'overview', label: 'Overview', href: '#/' },
  { view: 'workloads', label: 'Workloads', href: '#/workloads' },
  { view: 'services', label: 'Services', href: '#/services' },
  { view: 'resources', label: 'Resources', href: '#/resources' },
  { view: 'create', label: 'Create', href: '#/create' },
] as const;

/** The navigation entry a view belongs to. */
function section(route: Route): string {
  if (route.view === 'pod' || route.view === 'terminal') return 'workloads';
  if (route.view === 'object' || route.view === 'edit') return 'resources';
  return route.view;
}

/** A key that changes when the view shows another thing (its state starts afresh then). */
function routeKey(route: Route): string {
  if (route.view === 'resources') return `resources/${route.ref ? Object.values(route.ref).join('/') : ''}`;
  return JSON.stringify(route);
}

export function App() {
  const store = useStore();
  const route = useRoute();
  const [profile, chooseProfile] = useProfile();
  const [info, setInfo] = useState<DashboardInfo>();
  const [namespace, setNamespace] = useState(() => sessionStorage.getItem('namespace') ?? '');
  const first = useRef(true);
  useEffect(() => {
    if (first.current) store.connect();
    else store.reconnect();
    first.current = false;
    setInfo(undefined);
    // A reply for the profile shown before (switched away and back while it was read) is dropped:
    // the title and switcher must name the profile the API calls now go to.
    let live = true;
    api<DashboardInfo>('GET', '/api/info').then(
      (i) => {
        if (!live || (profile !== '' && i.profile !== profile)) return;
        setInfo(i);
        document.title = `${i.profile} · minilab dashboard`;
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [profile]);
  const choose = (ns: string) => {
    setNamespace(ns);
    sessionStorage.setItem('namespace', ns);
  };
  const current = section(route);

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div class="brand">
          <span class="logo" aria-hidden="true">
            ⎈
          </span>
          <span>minilab</span>
          <ProfileSwitcher current={info?.profile ?? (profile || undefined)} onChange={chooseProfile} />
        </div>
        <nav aria-label="Views">
          <ul>
            {NAV.map((n) => (
              <li key={n.view}>
                <a href={n.href} aria-current={current === n.view ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {(route.view === 'workloads' || route.view === 'services') && (
          <NamespaceSelect class="namespace" value={namespace} onChange={choose} />
        )}
        <ConnectionStatus />
      </header>
      {/* Keyed by profile: no view keeps what it loaded from the last one. */}
      <main id="main" tabIndex={-1} key={profile}>
        {route.view === 'overview' && <Overview info={info} />}
        {route.view === 'workloads' && <Workloads namespace={namespace} profile={info?.profile} />}
        {route.view === 'services' && <Services namespace={namespace} />}
        {route.view === 'pod' && (
          <PodDetail namespace={route.namespace} name={route.name} profile={info?.profile} />
        )}
        {route.view === 'yaml' && (
          <YamlView kind={route.kind} namespace={route.namespace} name={route.name} />
        )}
        {route.view === 'resources' && (
          <Resources key={routeKey(route)} target={route.ref} filter={route.filter} />
        )}
        {route.view === 'object' && (
          <ObjectView target={route.ref} namespace={route.namespace} name={route.name} />
        )}
        {route.view === 'edit' && (
          <Editor key={routeKey(route)} target={route.ref} namespace={route.namespace} name={route.name} />
        )}
        {route.view === 'create' && <Editor key="create" />}
        {route.view === 'terminal' && (
          <TerminalView key={routeKey(route)} namespace={route.namespace} pod={route.pod} />
        )}
      </main>
      <Announcer />
    </>
  );
}
