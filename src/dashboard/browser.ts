import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Whether a graphical browser can be started: on Linux only with a display (otherwise xdg-open
 * would start a text browser in the user's terminal, or fail).
 */
export function canOpenBrowser(
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform = process.platform,
): boolean {
  if (platform !== 'linux' && platform !== 'freebsd' && platform !== 'openbsd') return true;
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY || env.WSL_DISTRO_NAME);
}

/** The opener's process, as far as it matters here: how it ended. */
export interface OpenerProcess {
  once(event: 'exit', listener: (code: number | null) => void): unknown;
  once(event: 'error', listener: (err: Error) => void): unknown;
}

/** Hands one target to the system's opener (xdg-open, open, start); resolves to the opener's process. */
export type Opener = (target: string) => Promise<OpenerProcess>;

const systemOpener: Opener = async (target) => {
  // Loaded only when used: every other command starts without it.
  const { default: open } = await import('open');
  return open(target);
};

export interface LaunchTarget {
  target: string;
  /** Removes what was written for the target. */
  dispose(): Promise<void>;
}

/**
 * What the opener gets: never the token. The opener's command line, and the browser's when it was not
 * running yet (for that browser's whole life), can be read by every local user (ps, /proc/PID/cmdline).
 * - Linux: the one-time launch URL. The server honours it only for a connection owned by the user
 *   running minilab (peer.ts), so the code is worthless to whoever reads it, and used up once the
 *   browser came. A file would not do here: browsers packaged as snaps see neither /tmp nor hidden
 *   folders of the home (Jupyter's redirect file fails so: jupyter/notebook#5479).
 * - Elsewhere (no socket table to tell the user by): a page that forwards the browser to the token
 *   URL, as Jupyter's redirect file does, written 0600 in a folder of this user's only; the command
 *   line names only the file.
 */
export async function launchTarget(
  dashboard: { url: string; launchUrl: string },
  platform: NodeJS.Platform = process.platform,
  parent = tmpdir(),
): Promise<LaunchTarget> {
  if (platform === 'linux') return { target: dashboard.launchUrl, dispose: async () => undefined };
  // mkdtemp makes the folder 0700.
  const dir = await mkdtemp(join(parent, 'minilab-dashboard-'));
  const file = join(dir, 'open.html');
  await writeFile(
    file,
    '<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">' +
      `<meta http-equiv="refresh" content="0;url=${dashboard.url}">` +
      `<title>minilab dashboard</title><p><a href="${dashboard.url}">Open the minilab dashboard</a></p>\n`,
    { mode: 0o600, flag: 'wx' },
  );
  return {
    target: pathToFileURL(file).href,
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Opens the dashboard in the default browser without putting its token on any command line;
 * `onFailure` hears if the opener gives up. Resolves to what removes the launch page (call it when
 * the dashboard stops).
 */
export async function openDashboard(
  dashboard: { url: string; launchUrl: string },
  onFailure: (reason: string) => void,
  opts: { open?: Opener; platform?: NodeJS.Platform; parent?: string } = {},
): Promise<() => Promise<void>> {
  let launch: LaunchTarget | undefined;
  try {
    launch = await launchTarget(dashboard, opts.platform, opts.parent);
    const child = await (opts.open ?? systemOpener)(launch.target);
    child.once('exit', (code) => {
      if (code !== 0 && code !== null) onFailure(`the system opener exited with code ${code}`);
    });
    child.once('error', (err) => onFailure(err.message));
  } catch (err) {
    onFailure(err instanceof Error ? err.message : String(err));
  }
  return async () => launch?.dispose();
}
