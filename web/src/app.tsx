import { useEffect, useState } from 'preact/hooks';
import type { DashboardInfo } from '../../src/dashboard/model.js';
import { api } from './api.js';
import { Announcer } from './components.js';
import { parseRoute, type Route } from './route.js';
import { NO_SESSION } from './session.js';
import { useStore } from './store.js';
import { Overview } from './views/overview.js';
import { PodDetail } from './views/pod.js';
import { Services } from './views/services.js';
import { Workloads } from './views/workloads.js';
import { YamlView } from './views/yaml.js';

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

const NAV = [
  { view: 'overview', label: 'Overview', href: '#/' },
  { view: 'workloads', label: 'Workloads', href: '#/workloads' },
  { view: 'services', label: 'Services', href: '#/services' },
] as const;

export function App() {
  const store = useStore();
  const route = useRoute();
  const [info, setInfo] = useState<DashboardInfo>();
  const [namespace, setNamespace] = useState(() => sessionStorage.getItem('namespace') ?? '');
  useEffect(() => {
    store.connect();
    api<DashboardInfo>('GET', '/api/info').then(
      (i) => {
        setInfo(i);
        document.title = `${i.profile} · minilab dashboard`;
      },
      () => undefined,
    );
  }, []);
  const choose = (ns: string) => {
    setNamespace(ns);
    sessionStorage.setItem('namespace', ns);
  };
  const current = route.view === 'pod' ? 'workloads' : route.view;
  const namespaces = store.list('Namespace').map((n) => n.name);

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
          <span>
            minilab <span class="profile">{info?.profile}</span>
          </span>
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
          <label class="field inline namespace">
            <span>Namespace</span>
            <select value={namespace} onChange={(e) => choose(e.currentTarget.value)}>
              <option value="">All namespaces</option>
              {(namespaces.includes(namespace) || namespace === ''
                ? namespaces
                : [...namespaces, namespace]
              ).map((ns) => (
                <option key={ns} value={ns}>
                  {ns}
                </option>
              ))}
            </select>
          </label>
        )}
        <ConnectionStatus />
      </header>
      <main id="main" tabIndex={-1}>
        {route.view === 'overview' && <Overview info={info} />}
        {route.view === 'workloads' && <Workloads namespace={namespace} profile={info?.profile} />}
        {route.view === 'services' && <Services namespace={namespace} />}
        {route.view === 'pod' && <PodDetail namespace={route.namespace} name={route.name} />}
        {route.view === 'yaml' && (
          <YamlView kind={route.kind} namespace={route.namespace} name={route.name} />
        )}
      </main>
      <Announcer />
    </>
  );
}
