// Debian's Chromium, headless, driven by playwright-core.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { repoRoot } from './service.js';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// Flags for a quiet, reproducible headless run on a CI machine (no
// sandbox: tests run as root); playwright gives every launch a new
// --user-data-dir.
export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Background tabs keep their timers: several tabs of one test are "open"
  // at once, and only one can be in front.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** Launches Chromium; close it in t.after (or an after hook). */
export function launchBrowser() {
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
}

/** Where tests leave screenshots and logs (gitignored). */
export const artifactsDir = path.join(repoRoot, 'e2e', 'artifacts');

export function artifactPath(name) {
  mkdirSync(artifactsDir, { recursive: true });
  return path.join(artifactsDir, name);
}

/**
 * The URL of a page on the service's own origin for tests to run scripts
 * in: its /health, a real answer from the loopback address. (A page made up
 * by request interception has no address of its own, and Chromium's local
 * network access checks then refuse its WebSockets to 127.0.0.1.) Pages of
 * one context share localStorage, Web Locks and BroadcastChannel, like the
 * tabs of one browser profile; separate contexts share nothing.
 */
export function originPage(svc) {
  return `${svc.url}/health`;
}

/** Collects a page's console messages and errors (for failure messages). */
export function recordConsole(page, into = []) {
  page.on('console', (m) => into.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => into.push(`pageerror: ${e.message}`));
  return into;
}
