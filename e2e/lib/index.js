// The end-to-end harness: see README.md beside this file.
export { buildService, startService, Service, repoRoot } from './service.js';
export { startRedis } from './redis.js';
export { freePort } from './ports.js';
export { waitFor, withDeadline } from './wait.js';
export { mintToken } from './jwt.js';
export { launchBrowser, chromiumPath, chromiumArgs, originPage, recordConsole, artifactPath, artifactsDir } from './browser.js';
export { openClientPage, addClient, until, waitForState, waitForNotifications, titles, record } from './client-page.js';
