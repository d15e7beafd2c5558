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

/** Asks the system to open `url` in the default browser; `onFailure` hears if the opener gives up. */
export async function openBrowser(url: string, onFailure: (reason: string) => void): Promise<void> {
  try {
    // Loaded only when used: every other command starts without it.
    const { default: open } = await import('open');
    const child = await open(url);
    child.once('exit', (code) => {
      if (code !== 0 && code !== null) onFailure(`the system opener exited with code ${code}`);
    });
    child.once('error', (err) => onFailure(err.message));
  } catch (err) {
    onFailure(err instanceof Error ? err.message : String(err));
  }
}
