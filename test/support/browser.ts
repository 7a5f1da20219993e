/**
 * Headless Chromium for page tests: Debian's `/usr/bin/chromium` driven by `playwright-core` (which
 * never downloads a browser), with the flags this machine needs (no sandbox as root, and nothing
 * that reaches for the network in the background: the closed network refuses those connections)
 * and a fresh profile directory per launch. Under CI=true a missing browser fails the test; elsewhere
 * the caller may skip.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";

export const CHROMIUM = process.env["CEBRIDGE_CHROMIUM"] ?? "/usr/bin/chromium";

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export interface Chromium {
  readonly context: BrowserContext;
  /** A new page (tab) with this viewport. */
  page(viewport: { width: number; height: number }): Promise<Page>;
  close(): Promise<void>;
}

/** Starts Chromium on a new, empty profile directory (removed on close). */
export async function launchChromium(): Promise<Chromium> {
  if (!chromiumAvailable()) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does it)`);
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "cebridge-chromium-"));
  // launchPersistentContext is how playwright passes --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: 60_000,
    colorScheme: "light",
  });
  return {
    context,
    async page(viewport) {
      const page = await context.newPage();
      await page.setViewportSize(viewport);
      return page;
    },
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
