// Images: the organization's composes, newest first, with their status
// kept current while anything is still being built, and where each image
// went (an AMI, a cloud image, a registry digest or a download link).

import {
  composeName, confirmDialog, downloadImage, emptyState, errorPanel, field, fill,
  finished, h, imageRequest, loading, progressBar, progressText, timeEl,
} from '../ui.js';
import {
  deliveredFacts, factValue, isLinkTarget, requestedFacts, targetTitle, uploadTypeOf,
} from '../targets.js';
import {
  FILTERS, FILTER_LABELS, blueprintLink, expiry, plural, statusBadge, statusText,
} from '../status.js';

const PAGE_SIZE = 20;
const POLL_MS = 2000;
const IDLE_POLL_MS = 10000;

let imageTypesCache = null;
/** imageTypes are the names of every image type any distribution builds. */
async function imageTypes(api) {
  if (imageTypesCache) return imageTypesCache;
  const names = new Set();
  try {
    const distros = await api.get('/distributions');
    const details = await Promise.all((distros || []).map((d) => api.get(`/distributions/${encodeURIComponent(d.name)}`).catch(() => null)));
    for (const d of details) for (const t of (d && d.image_types) || []) names.add(t.name);
  } catch {
    // The filter then offers no types; the list itself still works.
  }
  imageTypesCache = [...names].sort();
  return imageTypesCache;
}

// rowState is what a row shows of an image's status: a change of it
// redraws the row's status, target, expiry and actions.
function rowState(st) {
  return `${statusText(st)} ${(st && st.upload_status && st.upload_status.status) || ''}`;
}

export async function render(root, ctx) {
  const { api, query, navigate, toast } = ctx;
  const status = FILTERS.includes(query.get('status')) ? query.get('status') : '';
  const imageType = query.get('image_type') || '';
  const page = Math.max(1, parseInt(query.get('page') || '1', 10) || 1);
  const filtered = Boolean(status || imageType);

  const go = (changes) => {
    const q = new URLSearchParams({ ...(status && { status }), ...(imageType && { image_type: imageType }), page: String(page), ...changes });
    for (const [k, v] of [...q.entries()]) if (!v || (k === 'page' && v === '1')) q.delete(k);
    const s = q.toString();
    navigate(s ? `#/?${s}` : '#/');
  };

  const statusSelect = h('select', { class: 'input', onchange: (e) => go({ status: e.target.value, page: '1' }) },
    h('option', { value: '' }, 'All statuses'),
    FILTERS.map((s) => h('option', { value: s, selected: s === status }, FILTER_LABELS[s])));
  const typeSelect = h('select', { class: 'input', onchange: (e) => go({ image_type: e.target.value, page: '1' }) },
    h('option', { value: '' }, 'All image types'));
  if (imageType) typeSelect.append(h('option', { value: imageType, selected: true }, imageType));
  imageTypes(api).then((types) => {
    for (const t of types) if (t !== imageType) typeSelect.append(h('option', { value: t }, t));
  });

  const body = h('div', { class: 'list-body' }, loading('Loading images…'));
  const filters = h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter images' },
    field('Status', statusSelect),
    field('Image type', typeSelect),
    filtered ? h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => navigate('#/') }, 'Clear filters') : null);

  root.append(h('div', { class: 'page' },
    h('div', { class: 'page-header' },
      h('div', {}, h('h1', { tabindex: '-1' }, 'Images'), h('p', { class: 'subtitle' }, 'Every image your organization has built, newest first.')),
      h('div', { class: 'actions' }, h('a', { class: 'btn btn-primary', href: '#/create' }, 'Create image'))),
    filters,
    body));

  let timer = null;
  let stopped = false;
  const rows = new Map(); // compose id → {row, status}
  // The names of the blueprints images were built from, by ID: read once,
  // when the first page shows an image built from one.
  let blueprintNames = null;
  async function namesOf(items) {
    if (blueprintNames || !items.some((c) => c.blueprint_id)) return;
    blueprintNames = new Map();
    try {
      const res = await api.get('/blueprints', { query: { limit: 100 } });
      for (const bp of (res && res.data) || []) blueprintNames.set(bp.id, bp.name);
    } catch {
      // The images still show their blueprint's version, without its name.
    }
  }

  async function fetchPage() {
    const res = await api.get('/composes', {
      query: { limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE, status, image_type: imageType },
    });
    const items = (res && res.data) || [];
    // A service without image_status in its listing: ask each compose.
    await Promise.all(items.map(async (c) => {
      if (!c.image_status) {
        try {
          c.image_status = (await api.get(`/composes/${c.id}`)).image_status;
        } catch {
          c.image_status = { status: 'pending' };
        }
      }
    }));
    await namesOf(items);
    return { items, count: (res && res.meta && res.meta.count) || 0 };
  }

  function actions(c) {
    const st = c.image_status || {};
    const name = composeName(c);
    const out = [];
    if (st.status === 'success' && isLinkTarget(uploadTypeOf(c))) {
      out.push(h('button', {
        type: 'button', class: 'btn btn-small', 'aria-label': `Download ${name}`,
        onclick: async (e) => {
          const b = e.currentTarget;
          b.disabled = true;
          try {
            await downloadImage(c.id, st.upload_status && st.upload_status.options);
          } catch (err) {
            toast(`Download failed: ${err.message}`, 'error');
          } finally {
            b.disabled = false;
          }
        },
      }, 'Download'));
    }
    out.push(h('a', { class: 'btn btn-small btn-ghost', href: `#/composes/${c.id}`, 'aria-label': `View ${name}` }, 'View'));
    if (!finished(st.status)) {
      out.push(h('button', {
        type: 'button', class: 'btn btn-small btn-ghost', 'aria-label': `Cancel ${name}`,
        onclick: async () => {
          if (!(await confirmDialog({ title: `Cancel ${name}?`, message: 'The build stops and the image is not made. The image stays listed as cancelled.', confirm: 'Cancel build', dismiss: 'Keep building' }))) return;
          try {
            await api.post(`/composes/${c.id}/cancel`);
            toast(`${name} was cancelled.`);
            refresh();
          } catch (err) {
            toast(`Could not cancel: ${err.message}`, 'error');
          }
        },
      }, 'Cancel'));
    }
    out.push(h('button', {
      type: 'button', class: 'btn btn-small btn-ghost btn-danger-text', 'aria-label': `Delete ${name}`,
      onclick: async () => {
        if (!(await confirmDialog({ title: `Delete ${name}?`, message: 'The image and its build log are removed from this list and cannot be downloaded any more. This cannot be undone.' }))) return;
        try {
          await api.del(`/composes/${c.id}`);
          toast(`${name} was deleted.`);
          refresh();
        } catch (err) {
          toast(`Could not delete: ${err.message}`, 'error');
        }
      },
    }, 'Delete'));
    return h('div', { class: 'row-actions' }, out);
  }

  function statusCell(c) {
    const st = c.image_status || {};
    const running = st.status === 'building' && st.progress && st.progress.total;
    return h('div', { class: 'status-cell' },
      statusBadge(st),
      running ? h('span', { class: 'status-progress' }, progressBar(st, `${composeName(c)}: ${progressText(st)}`), h('span', { class: 'muted small' }, progressText(st))) : null,
      st.waiting ? h('span', { class: 'muted small waiting-note', title: st.waiting.reason }, `No ${st.waiting.architecture} worker connected`) : null);
  }

  // targetCell says where the image goes: the target and, once it is
  // delivered, where it is (what to launch, pull or download).
  function targetCell(c) {
    const st = c.image_status || {};
    const type = uploadTypeOf(c);
    const facts = deliveredFacts(st.upload_status);
    const name = composeName(c);
    const ir = imageRequest(c);
    const asked = facts.length ? [] : requestedFacts({ type, options: (ir.upload_request && ir.upload_request.options) || {} })
      .filter((f) => f.label === 'Region' || f.label === 'Resource group' || f.label === 'Name');
    return h('div', { class: 'target-cell' },
      h('span', { class: 'target-name' }, targetTitle(type, true)),
      facts.length ? h('dl', { class: 'delivery' }, facts.map((f) => [h('dt', {}, f.label), h('dd', {}, factValue(f, name))])) : null,
      asked.length ? h('span', { class: 'muted small' }, ' ', asked.map((f) => f.value).join(', ')) : null);
  }

  function row(c) {
    const ir = imageRequest(c);
    const req = c.request || {};
    const from = blueprintLink(c, blueprintNames);
    return h('tr', { dataset: { id: c.id } },
      h('td', { 'data-label': 'Name' }, h('div', { class: 'name-cell' },
        h('a', { href: `#/composes/${c.id}`, class: 'strong' }, composeName(c)),
        from ? h('span', { class: 'muted small from-blueprint' }, 'From ', from) : null)),
      h('td', { 'data-label': 'Distribution' }, req.distribution || '—'),
      h('td', { 'data-label': 'Type' }, ir.image_type || '—'),
      h('td', { 'data-label': 'Architecture' }, ir.architecture || '—'),
      h('td', { 'data-label': 'Created' }, timeEl(c.created_at)),
      h('td', { 'data-label': 'Status', class: 'cell-status' }, statusCell(c)),
      h('td', { 'data-label': 'Target', class: 'cell-target' }, targetCell(c)),
      h('td', { 'data-label': 'Expires', class: 'cell-expires' }, expiry(c.image_status)),
      h('td', { 'data-label': 'Actions', class: 'cell-actions' }, actions(c)));
  }

  function pager(count) {
    const pages = Math.max(1, Math.ceil(count / PAGE_SIZE));
    if (count <= PAGE_SIZE && page === 1) return h('p', { class: 'muted small list-count' }, plural(count, 'image'));
    const from = (page - 1) * PAGE_SIZE + 1;
    const to = Math.min(count, page * PAGE_SIZE);
    return h('nav', { class: 'pager', 'aria-label': 'Pages' },
      h('button', { type: 'button', class: 'btn btn-small', disabled: page <= 1, onclick: () => go({ page: String(page - 1) }) }, 'Previous'),
      h('span', { class: 'muted small' }, count ? `${from}–${to} of ${count}` : `Page ${page}`),
      h('button', { type: 'button', class: 'btn btn-small', disabled: page >= pages, onclick: () => go({ page: String(page + 1) }) }, 'Next'));
  }

  function draw({ items, count }) {
    rows.clear();
    if (!items.length) {
      if (filtered) {
        fill(body, emptyState('No images match these filters', 'Try another status or image type, or clear the filters to see every image.',
          h('button', { type: 'button', class: 'btn', onclick: () => navigate('#/') }, 'Clear filters')));
      } else if (page > 1) {
        fill(body, emptyState('No more images', 'This page is past the end of the list.', h('a', { class: 'btn', href: '#/' }, 'First page')));
      } else {
        fill(body, emptyState('No images yet',
          'An image is built from a blueprint: choose a distribution, an image type such as a cloud disk or a root tarball, and what to install. The build runs on the server and the image is ready to download in a few minutes.',
          h('a', { class: 'btn btn-primary', href: '#/create' }, 'Create image'),
          h('a', { class: 'btn', href: '#/blueprints' }, 'Import a blueprint')));
      }
      return;
    }
    const tbody = h('tbody', {});
    for (const c of items) {
      const tr = row(c);
      rows.set(c.id, { tr, status: rowState(c.image_status), progress: progressText(c.image_status) });
      tbody.append(tr);
    }
    fill(body,
      h('div', { class: 'table-wrap card' },
        h('table', { class: 'table table-stack' },
          h('caption', { class: 'visually-hidden' }, 'Images'),
          h('thead', {}, h('tr', {}, ['Name', 'Distribution', 'Type', 'Architecture', 'Created', 'Status', 'Target', 'Expires', 'Actions'].map((t) => h('th', { scope: 'col', class: t === 'Actions' ? 'th-actions' : false }, t)))),
          tbody)),
      pager(count));
  }

  /** update changes only the rows whose status moved, keeping focus. */
  function update(data) {
    const same = data.items.length === rows.size && data.items.every((c) => rows.has(c.id));
    if (!same) {
      draw(data);
      return;
    }
    for (const c of data.items) {
      const r = rows.get(c.id);
      const st = rowState(c.image_status);
      const pr = progressText(c.image_status);
      if (r.status === st && r.progress === pr) continue;
      fill(r.tr.querySelector('.cell-status'), statusCell(c));
      if (r.status !== st) {
        fill(r.tr.querySelector('.cell-target'), targetCell(c));
        fill(r.tr.querySelector('.cell-expires'), expiry(c.image_status));
        fill(r.tr.querySelector('.cell-actions'), actions(c));
      }
      r.status = st;
      r.progress = pr;
    }
  }

  async function refresh(first = false) {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const data = await fetchPage();
      if (stopped) return;
      if (first) draw(data);
      else update(data);
      // Quick while something is being built; slower otherwise, to
      // pick up images started elsewhere.
      const busy = data.items.some((c) => !finished(c.image_status && c.image_status.status));
      timer = setTimeout(() => refresh(), busy ? POLL_MS : IDLE_POLL_MS);
    } catch (err) {
      if (stopped) return;
      if (first || !rows.size) fill(body, errorPanel(err, () => refresh(true)));
      else timer = setTimeout(() => refresh(), POLL_MS * 2);
    }
  }

  await refresh(true);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
