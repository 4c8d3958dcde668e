// HS256 tokens as the backend (Laravel) mints them for browsers.
import { createHmac } from 'node:crypto';

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/**
 * A token for sub, signed with secret. expiresIn is in seconds from now
 * (negative: already expired); channels is the claim of the channels it
 * may subscribe to; extra claims are merged in.
 */
export function mintToken({ secret, sub, channels, expiresIn = 3600, ...extra }) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub, iat: now, exp: now + expiresIn, ...extra };
  if (channels !== undefined) payload.channels = channels;
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
