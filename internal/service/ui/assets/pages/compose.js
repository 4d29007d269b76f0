// One compose: where its build is, its log as it is written, what it
// installed, its manifest, and where its image went: to download, or
// delivered to a cloud or a registry.

import {
  composeName, confirmDialog, downloadImage, emptyState, errorPanel, field, fill, finished, formatBytes,
  formatDate, h, imageRequest, loading, progressBar, progressText, timeEl,
} from '../ui.js';
import {
  deliveredFacts, factValue, isLinkTarget, requestedFacts, targetTitle, uploadTypeOf,
} from '../targets.js';
import {
  blueprintLink, cancelled, statusBadge, waitingFor,
} from '../status.js';

const POLL_MS = 2000;
// The log reconnects after a dropped connection, waiting longer after
// each failed try, up to the last of these.
const RECONNECT_MS = [500, 1000, 2000, 4000, 8000];

const STEP_LABELS = {
  queued: 'Queued', depsolved: 'Packages resolved', building: 'Building', uploading: 'Uploading', done: 'Done',
  failed: 'Failed', cancelled: 'Cancelled',
};
const PATH = ['queued', 'depsolved', 'building', 'uploading', 'done'];

/**
 * steps are the timeline's entries: every step of the way, each reached
 * (with its time), current or still to come; a failure ends the line.
 */
export function timelineSteps(st) {
  const reached = new Map();
  for (const s of (st && st.timeline) || []) reached.set(s.step, s.at);
  // A service that gives no timeline: reached steps follow from the status.
  if (!reached.size && st) {
    const upto = { pending: 0, building: 2, uploading: 3, registering: 3, success: 4 }[st.status];
    if (upto !== undefined) for (let i = 0; i <= upto; i += 1) reached.set(PATH[i], '');
    if (st.status === 'failure') reached.set('queued', '').set('failed', '');
  }
  const end = reached.has('cancelled') ? 'cancelled' : reached.has('failed') ? 'failed' : '';
  const out = [];
  let lastReached = -1;
  PATH.forEach((step, i) => { if (reached.has(step)) lastReached = i; });
  PATH.forEach((step, i) => {
    if (end && !reached.has(step)) return;
    let state = 'todo';
    if (reached.has(step)) state = 'done';
    if (!end && i === lastReached && step !== 'done') state = 'current';
    out.push({ step, at: reached.get(step) || '', state });
  });
  if (end) out.push({ step: end, at: reached.get(end) || '', state: 'failed' });
  return out;
}

export async function render(root, ctx) {
  const { api, params, navigate, toast } = ctx;
  const id = params.id;
  let stopped = false;
  let timer = null;
  const logAbort = new AbortController();

  let status;
  try {
    status = await api.get(`/composes/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404 || err.status === 400) {
      root.append(h('div', { class: 'page' }, emptyState('Image not found',
        'There is no image with this ID in your organization. It may have been deleted.',
        h('a', { class: 'btn btn-primary', href: '#/' }, 'Back to Images'))));
      return undefined;
    }
    throw err;
  }

  const c = { id, ...status };
  const name = composeName(c);
  const ir = imageRequest(c);
  const req = c.request || {};

  // ---- layout ----
  const badgeSlot = h('span', { class: 'title-badge' });
  const actionsSlot = h('div', { class: 'actions' });
  const timelineSlot = h('div', {});
  const errorSlot = h('div', {});
  const waitingSlot = h('div', { hidden: true });
  const downloadSlot = h('div', {});
  const blueprintSlot = h('dd', { class: 'from-blueprint' }, '—');
  const logPre = h('pre', { class: 'log', role: 'log', tabindex: '0', 'aria-label': 'Build log', 'aria-live': 'off' });
  const logState = h('p', { class: 'muted small log-state' });
  const jumpBtn = h('button', { type: 'button', class: 'btn btn-small', hidden: true }, 'Follow the log');
  const packagesSlot = h('div', {}, h('p', { class: 'muted' }, 'The installed packages are listed once the image is built.'));
  const manifestPre = h('pre', { class: 'code', tabindex: '0' });
  const manifest = h('details', { class: 'card collapsible' },
    h('summary', {}, h('span', { class: 'card-title' }, 'Manifest'), h('span', { class: 'muted small' }, ' The build plan kiln executed, as JSON')),
    manifestPre);

  root.append(h('div', { class: 'page' },
    h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Images'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { 'aria-current': 'page' }, name)),
    h('div', { class: 'page-header' },
      h('div', {}, h('h1', { tabindex: '-1' }, name, ' ', badgeSlot),
        h('p', { class: 'subtitle' }, [req.distribution, ir.image_type, ir.architecture].filter(Boolean).join(' · '))),
      actionsSlot),
    errorSlot,
    waitingSlot,
    h('div', { class: 'grid-2' },
      h('section', { class: 'card', 'aria-labelledby': 'tl-h' }, h('h2', { id: 'tl-h', class: 'card-title' }, 'Progress'), timelineSlot),
      h('section', { class: 'card', 'aria-labelledby': 'dl-h' }, h('h2', { id: 'dl-h', class: 'card-title' }, 'Image'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Distribution'), h('dd', {}, req.distribution || '—'),
          h('dt', {}, 'Image type'), h('dd', {}, ir.image_type || '—'),
          h('dt', {}, 'Architecture'), h('dd', {}, ir.architecture || '—'),
          h('dt', {}, 'Created'), h('dd', {}, status.created_at ? formatDate(status.created_at) : '—'),
          h('dt', {}, 'Blueprint'), blueprintSlot,
          h('dt', {}, 'Target'), h('dd', { class: 'target-name' }, targetTitle(uploadTypeOf(c))),
          requestedFacts(ir.upload_request).map((f) => [h('dt', {}, f.label), h('dd', {}, f.value)]),
          h('dt', {}, 'Compose ID'), h('dd', { class: 'mono small' }, id)),
        downloadSlot)),
    h('section', { class: 'card', 'aria-labelledby': 'log-h' },
      h('div', { class: 'card-header' }, h('h2', { id: 'log-h', class: 'card-title' }, 'Build log'), h('div', { class: 'log-tools' }, logState, jumpBtn)),
      logPre),
    h('section', { class: 'card', 'aria-labelledby': 'pkg-h' }, h('h2', { id: 'pkg-h', class: 'card-title' }, 'Installed packages'), packagesSlot),
    manifest));

  // ---- status, timeline, actions ----
  function drawStatus(st) {
    fill(badgeSlot, statusBadge(st));
    const steps = timelineSteps(st);
    fill(timelineSlot, h('ol', { class: 'timeline' }, steps.map((s) => {
      let label = STEP_LABELS[s.step] || s.step;
      if (s.step === 'building' && s.state === 'current' && progressText(st)) label = `Building: ${progressText(st).toLowerCase()}`;
      if (s.step === 'uploading' && s.state === 'current' && st.status === 'registering') label = `Registering in ${targetTitle(uploadTypeOf(status), true)}`;
      // Where it stopped, and why it does not go on.
      if (s.state === 'current' && waitingFor(st)) label = `${label}: waiting for a worker that builds ${waitingFor(st)}`;
      return h('li', { class: `tl-${s.state}`, 'aria-current': s.state === 'current' ? 'step' : false },
        h('span', { class: 'tl-dot', 'aria-hidden': 'true' }),
        h('span', { class: 'tl-label' }, label),
        s.at ? h('span', { class: 'tl-time muted small' }, timeEl(s.at)) : null,
        s.step === 'building' && s.state === 'current' ? progressBar(st) : null);
    })));

    const err = st.error;
    const wasCancelled = cancelled(st);
    if (wasCancelled) {
      // Not an error: someone chose to stop it.
      fill(errorSlot, h('div', { class: 'alert cancelled-note', role: 'status' },
        h('h2', { class: 'alert-title' }, 'The build was cancelled'),
        h('p', { class: 'error-reason' }, err && err.reason ? `It was ${err.reason}; no image was made.` : 'No image was made.')));
    } else {
      fill(errorSlot, st.status === 'failure' && err ? h('div', { class: 'alert alert-error', role: 'alert' },
        h('h2', { class: 'alert-title' }, 'The build failed'),
        h('p', { class: 'error-reason' }, err.reason || 'The build failed.'),
        failureDetails(err.details)) : null);
    }

    // A job waits for a worker of an architecture none of the connected
    // ones builds: say so and how to start one, until one connects.
    const wait = st.waiting && !finished(st.status) ? st.waiting : null;
    waitingSlot.hidden = !wait;
    fill(waitingSlot, wait ? h('div', { class: 'alert alert-warning waiting', role: 'status' },
      h('h2', { class: 'alert-title' }, `Waiting for a worker that builds ${wait.architecture}`),
      h('p', { class: 'waiting-reason' }, codeSpans(wait.reason))) : null);

    const us = st.upload_status || {};
    const opts = us.options || {};
    const type = uploadTypeOf({ ...status, image_status: st });
    if (st.status === 'success' && !isLinkTarget(type)) {
      // Delivered where it runs: what to launch or pull it by.
      fill(downloadSlot, h('div', { class: 'delivered' },
        h('h3', { class: 'delivered-title' }, `Delivered to ${targetTitle(type)}`),
        h('dl', { class: 'delivery' }, deliveredFacts(us).map((f) => [h('dt', {}, f.label), h('dd', {}, factValue(f, name))]))));
    } else if (st.status === 'success') {
      const dl = h('button', {
        type: 'button', class: 'btn btn-primary',
        onclick: async () => {
          dl.disabled = true;
          dl.textContent = 'Downloading…';
          try {
            await downloadImage(id, opts);
          } catch (e) {
            toast(`Download failed: ${e.message}`, 'error');
          } finally {
            dl.disabled = false;
            dl.textContent = 'Download image';
          }
        },
      }, 'Download image');
      fill(downloadSlot, h('div', { class: 'download' }, dl,
        h('p', { class: 'muted small download-facts' },
          opts.size ? h('span', { class: 'download-size' }, formatBytes(opts.size)) : null,
          opts.size && opts.expires_at ? ' · ' : null,
          opts.expires_at ? h('span', {}, 'available until ', formatDate(opts.expires_at)) : null)));
    } else if (st.status === 'failure') {
      const why = wasCancelled ? 'the build was cancelled' : 'the build did not finish';
      fill(downloadSlot, h('p', { class: 'muted' }, `No image: ${why}.`));
      fill(packagesSlot, h('p', { class: 'muted' }, `No packages: ${why}.`));
    } else if (isLinkTarget(type)) {
      fill(downloadSlot, h('p', { class: 'muted' }, 'The image can be downloaded here when the build is done.'));
    } else {
      fill(downloadSlot, h('p', { class: 'muted' }, st.status === 'registering'
        ? `${targetTitle(type)} is importing the image; its name is shown here when it is ready.`
        : `The image goes to ${targetTitle(type)} when the build is done.`));
    }

    const acts = [];
    if (!finished(st.status)) {
      acts.push(h('button', {
        type: 'button', class: 'btn',
        onclick: async () => {
          if (!(await confirmDialog({ title: `Cancel ${name}?`, message: 'The build stops and no image is made.', confirm: 'Cancel build', dismiss: 'Keep building' }))) return;
          try {
            await api.post(`/composes/${id}/cancel`);
            toast('The build was cancelled.');
            poll();
          } catch (e) {
            toast(`Could not cancel: ${e.message}`, 'error');
          }
        },
      }, 'Cancel build'));
    }
    acts.push(h('button', {
      type: 'button', class: 'btn btn-danger',
      onclick: async () => {
        if (!(await confirmDialog({ title: `Delete ${name}?`, message: 'The image and its log are removed. This cannot be undone.' }))) return;
        try {
          await api.del(`/composes/${id}`);
          toast(`${name} was deleted.`);
          navigate('#/');
        } catch (e) {
          toast(`Could not delete: ${e.message}`, 'error');
        }
      },
    }, 'Delete'));
    fill(actionsSlot, acts);
  }

  // ---- log ----
  let follow = true;
  const atBottom = () => logPre.scrollHeight - logPre.scrollTop - logPre.clientHeight < 24;
  logPre.addEventListener('scroll', () => {
    follow = atBottom();
    jumpBtn.hidden = follow || finished(status.image_status.status);
  });
  jumpBtn.addEventListener('click', () => {
    follow = true;
    logPre.scrollTop = logPre.scrollHeight;
    jumpBtn.hidden = true;
  });
  // The log is followed from the bytes already received: after a dropped
  // connection (or a stream the server ended while the build goes on) it
  // asks again from there, so no line shows twice and none is lost.
  let received = 0;
  let logTimer = null;
  const logSleep = (ms) => new Promise((resolve) => { logTimer = setTimeout(resolve, ms); });
  function showLogState(text) {
    logState.textContent = text;
  }
  async function streamLog() {
    let tries = 0;
    for (;;) {
      if (stopped) return;
      const following = () => showLogState(finished(status.image_status.status) ? '' : 'Following the build as it runs…');
      if (!tries) following();
      try {
        await api.stream(`/composes/${id}/logs`, (chunk, bytes) => {
          received += bytes;
          tries = 0;
          if (!chunk) return;
          logPre.append(chunk);
          if (follow) logPre.scrollTop = logPre.scrollHeight;
        }, logAbort.signal, { query: received ? { offset: received } : undefined, onOpen: following });
        // The stream ended: the log is complete once the compose is.
        const next = await api.get(`/composes/${id}`, { signal: logAbort.signal });
        if (finished(next.image_status.status)) break;
      } catch (e) {
        if (e.name === 'AbortError' || stopped) return;
        // A refusal that asking again does not mend (not found, signed
        // out) ends the log; a dropped connection or a busy server does not.
        if (e.status && e.status !== 429 && e.status < 500) {
          showLogState(`The log could not be loaded: ${e.message}`);
          return;
        }
      }
      if (stopped) return;
      showLogState('Reconnecting…');
      await logSleep(RECONNECT_MS[Math.min(tries, RECONNECT_MS.length - 1)]);
      tries += 1;
    }
    logPre.dataset.complete = 'true';
    // An empty log says so once: the box that waits for the build's first
    // line goes.
    logPre.hidden = !received;
    showLogState(received ? '' : 'No log was written.');
  }

  // ---- packages ----
  async function loadPackages() {
    fill(packagesSlot, loading('Loading packages…'));
    let meta;
    try {
      meta = await api.get(`/composes/${id}/metadata`);
    } catch (e) {
      fill(packagesSlot, errorPanel(e, loadPackages));
      return;
    }
    const pkgs = ((meta && meta.packages) || []).slice().sort((a, b) => a.name.localeCompare(b.name));
    if (!pkgs.length) {
      fill(packagesSlot, h('p', { class: 'muted' }, 'This image lists no packages.'));
      return;
    }
    const search = h('input', { type: 'search', class: 'input', placeholder: 'e.g. openssh', autocomplete: 'off' });
    const count = h('p', { class: 'muted small', role: 'status', 'aria-live': 'polite' });
    const tbody = h('tbody', {});
    const rowsByName = pkgs.map((p) => {
      const tr = h('tr', {}, h('td', { 'data-label': 'Package', class: 'mono' }, p.name), h('td', { 'data-label': 'Version', class: 'mono' }, p.version), h('td', { 'data-label': 'Architecture' }, p.arch));
      tbody.append(tr);
      return [p.name.toLowerCase(), tr];
    });
    const apply = () => {
      const q = search.value.trim().toLowerCase();
      let n = 0;
      for (const [n0, tr] of rowsByName) {
        const show = !q || n0.includes(q);
        tr.hidden = !show;
        if (show) n += 1;
      }
      count.textContent = q ? `${n} of ${pkgs.length} packages match “${search.value.trim()}”` : `${pkgs.length} packages`;
    };
    search.addEventListener('input', apply);
    fill(packagesSlot,
      h('div', { class: 'toolbar' }, field('Search packages', search), count),
      h('div', { class: 'table-wrap scroll-y', tabindex: '0', role: 'group', 'aria-label': 'Installed packages' },
        h('table', { class: 'table table-compact' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Package'), h('th', { scope: 'col' }, 'Version'), h('th', { scope: 'col' }, 'Architecture'))),
          tbody)));
    apply();
  }

  // ---- manifest ----
  let manifestLoaded = false;
  manifest.addEventListener('toggle', async () => {
    if (!manifest.open || manifestLoaded) return;
    manifestLoaded = true;
    manifestPre.textContent = 'Loading…';
    try {
      const m = await api.get(`/composes/${id}/manifests`);
      manifestPre.textContent = JSON.stringify(Array.isArray(m) && m.length === 1 ? m[0] : m, null, 2);
    } catch (e) {
      manifestLoaded = false;
      manifestPre.textContent = `The manifest could not be loaded: ${e.message}`;
    }
  });

  // ---- the blueprint it was built from ----
  async function showBlueprint() {
    if (!status.blueprint_id) return;
    let bpName = '';
    try {
      bpName = (await api.get(`/blueprints/${encodeURIComponent(status.blueprint_id)}`)).name;
    } catch (e) {
      if (e.status === 404) {
        fill(blueprintSlot, `A deleted blueprint${status.blueprint_version ? `, version ${status.blueprint_version}` : ''}`);
        return;
      }
    }
    fill(blueprintSlot, blueprintLink(status, new Map(bpName ? [[status.blueprint_id, bpName]] : [])));
  }

  // ---- polling ----
  async function poll() {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const next = await api.get(`/composes/${id}`);
      if (stopped) return;
      const was = status.image_status.status;
      status = next;
      drawStatus(status.image_status);
      if (finished(status.image_status.status)) {
        jumpBtn.hidden = true;
        if (status.image_status.status === 'success' && was !== 'success') loadPackages();
        return;
      }
    } catch (e) {
      if (stopped) return;
    }
    timer = setTimeout(poll, POLL_MS);
  }

  drawStatus(status.image_status);
  showBlueprint();
  streamLog();
  if (status.image_status.status === 'success') loadPackages();
  if (!finished(status.image_status.status)) timer = setTimeout(poll, POLL_MS);

  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(logTimer);
    logAbort.abort();
  };
}

// failureDetails shows a failure's details: when the compose failed on
// fields of its request (a service, group or shell its packages lack),
// one line per problem naming its field; else the text, folded away.
function failureDetails(details) {
  if (Array.isArray(details)) {
    return h('ul', { class: 'field-problems' }, details.map((p) => h('li', {},
      p.field ? h('code', {}, p.field) : null, p.field ? ': ' : null,
      p.field && (p.detail || '').startsWith(p.field + ': ') ? p.detail.slice(p.field.length + 2) : p.detail)));
  }
  if (!details) return null;
  return h('details', {}, h('summary', {}, 'Details'),
    h('pre', { class: 'code' }, typeof details === 'string' ? details : JSON.stringify(details, null, 2)));
}

// codeSpans renders text whose `quoted` parts are commands as text and
// code elements.
function codeSpans(text) {
  return String(text).split('`').map((part, i) => (i % 2 ? h('code', {}, part) : part));
}
