import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (scripts/setup.sh installs it); playwright-core never downloads a browser here. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags that keep Chromium from reaching out to the network on its own: this machine's network is
 * closed, and such connections only slow it down and fill the log.
 */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** A headless Chromium with a fresh profile directory, removed again by close(). */
export async function launchChromium(viewport = { width: 1280, height: 800 }) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install it with apt-get install -y chromium (scripts/setup.sh does)`,
    );
  }
  const userDataDir = await mkdtemp(join(tmpdir(), 'minilab-chromium-'));
  const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
