// Small DOM and formatting helpers shared by the pages. Everything the
// pages show is built with h(), which sets text as text: nothing a user
// or the API supplies is ever parsed as HTML.

import { BASE, api, fieldErrors, session } from './api.js';

/**
 * h builds an element: h('a', {href: '#/', class: 'btn'}, 'Images').
 * Attributes starting with "on" are event listeners; false/null skip.
 */
export function h(tag, attrs, ...children) {
  const svg = tag === 'svg' || tag === 'path' || tag === 'rect' || tag === 'circle' || tag === 'g';
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && !svg) el.value = v;
    else if (k === 'checked' && !svg) el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** clear empties an element and fills it with children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** id returns an id unique in the page, for label/control pairs. */
export function id(prefix = 'f') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** The kiln logo: a kiln's arch with a flame, in the accent colour. */
export function logo(size = 28) {
  return h('svg', { class: 'logo', width: size, height: size, viewBox: '0 0 32 32', 'aria-hidden': 'true', focusable: 'false' },
    h('rect', { x: '2', y: '2', width: '28', height: '28', rx: '7', class: 'logo-bg' }),
    h('path', { d: 'M8 25V15a8 8 0 0 1 16 0v10', class: 'logo-arch' }),
    h('path', { d: 'M16 24c-2.6 0-4-1.7-4-3.6 0-2.3 2.2-3.4 2.6-6 1.9 1.2 2.4 2.7 2.2 4 .8-.4 1.3-1.2 1.4-2 1.2 1.1 1.8 2.4 1.8 3.9 0 2-1.5 3.7-4 3.7z', class: 'logo-flame' }),
  );
}

// ---- formatting ----

export function formatBytes(n) {
  if (n === undefined || n === null || Number.isNaN(Number(n))) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export function formatDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateFmt.format(d);
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
export function relativeTime(iso, now = Date.now()) {
  const d = new Date(iso).getTime();
  if (Number.isNaN(d)) return '';
  const s = Math.round((d - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return rtf.format(s, 'second');
  if (abs < 45 * 60) return rtf.format(Math.round(s / 60), 'minute');
  if (abs < 22 * 3600) return rtf.format(Math.round(s / 3600), 'hour');
  if (abs < 30 * 86400) return rtf.format(Math.round(s / 86400), 'day');
  return formatDate(iso);
}

/** timeEl is a <time> showing a relative time, the full date on hover. */
export function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: formatDate(iso) }, relativeTime(iso));
}

// ---- compose status ----

// STATUSES are the statuses the image list filters by. An image's status
// may also be registering (a cloud is importing it), which the API's
// filter counts as uploading, the status it refines.
export const STATUSES = ['pending', 'building', 'uploading', 'success', 'failure'];
export const STATUS_LABELS = {
  pending: 'Pending', building: 'Building', uploading: 'Uploading', registering: 'Registering', success: 'Success', failure: 'Failure',
};

export function finished(status) {
  return status === 'success' || status === 'failure';
}

/** badge is a compose's status as a coloured label with its text. */
export function badge(status) {
  const s = Object.hasOwn(STATUS_LABELS, status) ? status : 'pending';
  return h('span', { class: `badge badge-${s}` }, STATUS_LABELS[s]);
}

/** progressText says how far a build is: "Stage 3 of 12". */
export function progressText(imageStatus) {
  const p = imageStatus && imageStatus.progress;
  if (!p || !p.total) return '';
  return `Stage ${Math.min(p.done + 1, p.total)} of ${p.total}`;
}

/** progressBar is a labelled <progress> for a build that is running. */
export function progressBar(imageStatus, label) {
  const p = imageStatus && imageStatus.progress;
  if (!p || !p.total) return null;
  return h('progress', { class: 'progress', max: String(p.total), value: String(p.done), 'aria-label': label || progressText(imageStatus) });
}

/** composeName is what a compose is called in lists and titles. */
export function composeName(c) {
  const req = c.request || {};
  return c.image_name || req.image_name || `Image ${String(c.id || '').slice(0, 8)}`;
}

export function imageRequest(c) {
  const req = c.request || {};
  return (req.image_requests && req.image_requests[0]) || {};
}

// ---- downloads ----

/** saveBlob hands a blob to the browser as a file named filename. */
export function saveBlob(blob, filename) {
  const u = URL.createObjectURL(blob);
  const a = h('a', { href: u, download: filename, class: 'visually-hidden' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(u), 60_000);
}

function filenameFrom(headers, fallback) {
  const cd = headers.get('Content-Disposition') || '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  return m ? decodeURIComponent(m[1]) : fallback;
}

/**
 * downloadImage saves a finished compose's image. The API's own download
 * path needs the API token, so with a token the file is fetched here and
 * handed over; a presigned URL (or a gateway that authenticates the
 * browser) is a plain link.
 */
export async function downloadImage(composeId, uploadOptions) {
  const u = (uploadOptions && uploadOptions.url) || `${BASE}/composes/${composeId}/download`;
  // A bucket's presigned URL and the service's own signed link download
  // without the token, straight to disk; only an unsigned API path needs
  // the token, and so a fetch.
  const signed = u.startsWith(BASE + '/') && new URL(u, location.href).searchParams.has('signature');
  if (!u.startsWith(BASE + '/') || signed || !session.token) {
    const a = h('a', { href: u, class: 'visually-hidden', rel: 'noreferrer' });
    document.body.append(a);
    a.click();
    a.remove();
    return;
  }
  const { blob, headers } = await api.blob(u.slice(BASE.length));
  saveBlob(blob, filenameFrom(headers, `${composeId}.img`));
}

// ---- forms ----

/**
 * field builds the contract's field wrapper around a control:
 * <div class="field"><label/>control<p class="hint"/><p class="field-error"/></div>.
 * The control gets an id; data-field names the API field it is about.
 */
export function field(label, control, { hint, name } = {}) {
  if (!control.id) control.id = id('field');
  if (name) control.dataset.field = name;
  const errId = `${control.id}-error`;
  const hintEl = hint ? h('p', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' },
    h('label', { for: control.id }, label),
    control,
    hintEl,
    h('p', { class: 'field-error', role: 'alert', id: errId, hidden: true }),
  );
}

/** clearErrors removes every field error and form alert in root. */
export function clearErrors(root) {
  for (const c of root.querySelectorAll('[aria-invalid="true"]')) {
    c.removeAttribute('aria-invalid');
    const hint = c.id && root.querySelector(`#${CSS.escape(c.id)}-hint`);
    if (hint) c.setAttribute('aria-describedby', hint.id);
    else c.removeAttribute('aria-describedby');
  }
  for (const p of root.querySelectorAll('.field-error')) {
    p.textContent = '';
    p.hidden = true;
  }
  for (const a of root.querySelectorAll('.form-alert')) a.remove();
}

/** setError shows message at control's field and marks it invalid. */
export function setError(control, message) {
  const p = document.getElementById(`${control.id}-error`);
  if (!p) return false;
  p.textContent = message;
  p.hidden = false;
  control.setAttribute('aria-invalid', 'true');
  const hint = document.getElementById(`${control.id}-hint`);
  control.setAttribute('aria-describedby', hint ? `${p.id} ${hint.id}` : p.id);
  return true;
}

/**
 * showErrors puts each of an API error's items next to the control whose
 * data-field matches its field (or the longest matching prefix, or
 * fallback(field)); what matches no control goes into one alert at the
 * top of form. The first invalid control gets the focus.
 */
export function showErrors(form, err, fallback) {
  clearErrors(form);
  const controls = [...form.querySelectorAll('[data-field]')];
  const loose = [];
  let first = null;
  for (const [path, detail] of fieldErrors(err)) {
    let target = null;
    if (path) {
      target = controls.find((c) => c.dataset.field === path) ||
        controls.filter((c) => path.startsWith(c.dataset.field + '.') || path.startsWith(c.dataset.field + '['))
          .sort((a, b) => b.dataset.field.length - a.dataset.field.length)[0] ||
        (fallback ? fallback(path) : null);
    }
    if (target) {
      const prev = document.getElementById(`${target.id}-error`);
      const text = prev && !prev.hidden && prev.textContent ? `${prev.textContent} ${detail}` : detail;
      setError(target, text);
      first = first || target;
    } else {
      loose.push(detail);
    }
  }
  if (loose.length) {
    form.prepend(h('div', { class: 'alert alert-error form-alert', role: 'alert' }, loose.length === 1 ? loose[0] : h('ul', {}, loose.map((l) => h('li', {}, l)))));
  }
  if (first) first.focus();
}

// ---- dialogs ----

/**
 * confirmDialog asks before something that cannot be undone; it
 * resolves to true when the user confirms.
 */
export function confirmDialog({ title, message, confirm = 'Delete', dismiss = 'Cancel', danger = true }) {
  return new Promise((resolve) => {
    const titleId = id('dlg');
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      h('form', { method: 'dialog' },
        h('h2', { id: titleId }, title),
        h('p', {}, message),
        h('div', { class: 'dialog-actions' },
          h('button', { class: 'btn btn-ghost', value: 'cancel', type: 'submit' }, dismiss),
          h('button', { class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, value: 'ok', type: 'submit' }, confirm),
        ),
      ),
    );
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
    dlg.querySelector('button[value="cancel"]').focus();
  });
}

/** emptyState is the friendly panel shown where a list has nothing. */
export function emptyState(title, text, ...actions) {
  return h('div', { class: 'empty-state' },
    h('div', { class: 'empty-icon', 'aria-hidden': 'true' }, logo(40)),
    h('h2', {}, title),
    h('p', {}, text),
    actions.length ? h('div', { class: 'empty-actions' }, actions) : null,
  );
}

/** errorPanel shows why a page could not load, with a way to retry. */
export function errorPanel(err, retry) {
  return h('div', { class: 'alert alert-error', role: 'alert' },
    h('p', {}, err && err.message ? err.message : String(err)),
    err && err.requestId ? h('p', { class: 'muted small' }, `Request ID: ${err.requestId}`) : null,
    retry ? h('button', { class: 'btn', type: 'button', onclick: retry }, 'Try again') : null,
  );
}

/** spinner is a small loading indicator with a text alternative. */
export function loading(text = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}
