import { useEffect, useState } from 'preact/hooks';
import type { NoUsage } from '../../src/dashboard/model.js';
import { api } from './api.js';
import { useStore } from './store.js';

/**
 * metrics-server (the add-on) scrapes every 10 s: reading more often shows nothing new. Read while
 * usage is missing too, so enabling the add-on shows in an open page by itself.
 */
const REFRESH_S = 15;

/**
 * The metrics API's answer at `path`, read while the cluster is connected and the page is visible,
 * then again every REFRESH_S seconds, one request at a time. `reload` reads it now.
 */
export function useUsage<T extends { available: true } | NoUsage>(
  path: string,
): { usage: T | undefined; reload: () => void } {
  const connected = useStore().cluster.state === 'connected';
  const [usage, setUsage] = useState<T>();
  const [asked, setAsked] = useState(0);
  useEffect(() => {
    if (!connected) return;
    let stopped = false;
    let loading = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      clearTimeout(timer);
      // A hidden page stops reading; it reads again when shown.
      if (loading || document.visibilityState === 'hidden') return;
      loading = true;
      const answer = await api<T>('GET', path).catch((err: Error): NoUsage => ({
        available: false,
        reason: err.message,
        missing: false,
      }));
      loading = false;
      if (stopped) return;
      setUsage(answer as T);
      timer = setTimeout(() => void load(), REFRESH_S * 1000);
    };
    const shown = () => void load();
    document.addEventListener('visibilitychange', shown);
    void load();
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', shown);
    };
  }, [connected, path, asked]);
  return { usage, reload: () => setAsked((n) => n + 1) };
}

/** Why usage is not shown, and how to get it: the metrics-server add-on. */
export function NoUsageHint(props: { usage: { available: true } | NoUsage | undefined; profile?: string }) {
  const u = props.usage;
  if (!u || u.available) return null;
  const enable = (
    <code>minilab addons enable metrics-server{props.profile ? ` -p ${props.profile}` : ''}</code>
  );
  return (
    <p class="hint">
      Usage is not shown: {u.reason}.{' '}
      {u.missing ? (
        <>Run {enable} to see it.</>
      ) : (
        <>
          Checked again every {REFRESH_S} s; if it stays so, {enable} shows what keeps metrics-server from
          working.
        </>
      )}
    </p>
  );
}
