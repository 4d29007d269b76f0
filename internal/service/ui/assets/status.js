// What a compose's status means to a person: its badge (a cancelled
// build is not a failure, an image no worker can build waits rather than
// queues), the statuses the images list filters by, when its image
// expires, and counted nouns.

import {
  STATUSES, STATUS_LABELS, finished, formatDate, h, relativeTime,
} from './ui.js';

/**
 * FILTERS are the images list's status filters: image-builder's statuses
 * and cancelled, a kiln extension of the listing (status=failure lists
 * cancelled builds too, as image-builder does).
 */
export const FILTERS = [...STATUSES, 'cancelled'];
export const FILTER_LABELS = { ...STATUS_LABELS, failure: 'Failure', cancelled: 'Cancelled' };

/** cancelled tells whether an image status is a build its owner cancelled. */
export function cancelled(st) {
  if (!st || st.status !== 'failure') return false;
  if (st.cancelled) return true;
  // A service without the cancelled field: the timeline says it.
  return ((st.timeline || []).some((s) => s.step === 'cancelled'));
}

/** waitingFor is the architecture an unfinished image waits a worker for, or ''. */
export function waitingFor(st) {
  return st && st.waiting && !finished(st.status) ? st.waiting.architecture : '';
}

/**
 * statusText is what an image's status is called: "Cancelled", "Waiting
 * for a worker that builds aarch64", or the status's label.
 */
export function statusText(st) {
  if (cancelled(st)) return 'Cancelled';
  const arch = waitingFor(st);
  if (arch) return `Waiting for a worker that builds ${arch}`;
  const s = st && st.status;
  return Object.hasOwn(STATUS_LABELS, s) ? STATUS_LABELS[s] : STATUS_LABELS.pending;
}

/** statusBadge is an image's status as a coloured label with its text. */
export function statusBadge(st) {
  let kind = st && Object.hasOwn(STATUS_LABELS, st.status) ? st.status : 'pending';
  if (cancelled(st)) kind = 'cancelled';
  else if (waitingFor(st)) kind = 'waiting';
  return h('span', { class: `badge badge-${kind}` }, statusText(st));
}

/** plural is a count with its noun: "1 blueprint", "2 blueprints". */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * expiry says until when an image can be downloaded: "in 13 days" (the
 * date in the title), "Expired" once past, "—" when the status gives no
 * expiry (not built yet, or delivered elsewhere).
 */
export function expiry(st, now = Date.now()) {
  const opts = (st && st.upload_status && st.upload_status.options) || {};
  const at = st && st.status === 'success' ? opts.expires_at : '';
  if (!at || Number.isNaN(new Date(at).getTime())) return h('span', { class: 'muted' }, '—');
  if (new Date(at).getTime() <= now) return h('time', { class: 'expired', datetime: at, title: `Expired ${formatDate(at)}` }, 'Expired');
  return h('time', { datetime: at, title: `Expires ${formatDate(at)}` }, relativeTime(at, now));
}

/**
 * blueprintLink names the blueprint and version an image was built from,
 * linked to that blueprint at that version; null for an image built from
 * a request alone. names maps blueprint IDs to their names when known.
 */
export function blueprintLink(c, names) {
  if (!c || !c.blueprint_id) return null;
  const name = (names && names.get(c.blueprint_id)) || 'Blueprint';
  const v = c.blueprint_version;
  return h('a', { class: 'blueprint-link', href: `#/blueprints/${encodeURIComponent(c.blueprint_id)}${v ? `?version=${v}` : ''}` },
    v ? `${name}, version ${v}` : name);
}
