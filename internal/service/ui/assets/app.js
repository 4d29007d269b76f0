// The shell: finds out who is signed in, routes hash URLs to page
// modules, keeps the top bar current, shows toasts, and asks before a
// page with unsaved work is left (see setLeaveGuard).

import { api, session, setUnauthorizedHandler } from './api.js';
import { confirmDialog, errorPanel, h, loading, logo } from './ui.js';

// Each route: a pattern on the hash's path and the module that renders it.
const routes = [
  { name: 'images', pattern: /^\/$/, load: () => import('./pages/images.js') },
  { name: 'create', pattern: /^\/create$/, load: () => import('./pages/wizard.js'), optional: true },
  { name: 'blueprints', pattern: /^\/blueprints$/, load: () => import('./pages/blueprints.js') },
  { name: 'blueprints', pattern: /^\/blueprints\/(?<id>[^/]+)$/, load: () => import('./pages/blueprint.js') },
  { name: 'images', pattern: /^\/composes\/(?<id>[^/]+)$/, load: () => import('./pages/compose.js') },
  { name: 'signin', pattern: /^\/signin$/, load: () => import('./pages/signin.js'), public: true },
];

const main = document.getElementById('main');
let cleanup = null;
let renderSeq = 0;
let firstRender = true;
// shownHash is the hash of the page shown (or being shown): where the
// user stays when they decide not to leave it.
let shownHash = location.hash;

// ---- leaving a page with unsaved work

// leaveGuard, when a page set one, says what would be lost by leaving the
// page now ('' when nothing would be).
let leaveGuard = null;

/**
 * setLeaveGuard makes the page shown ask before it is left while
 * unsaved() returns a message (what would be lost): by a link, the back
 * button, a typed address, signing out (a dialog in the page) or closing
 * the tab (the browser's own question). It returns the function that
 * takes the guard away; a change of page takes it away too.
 */
export function setLeaveGuard(unsaved) {
  leaveGuard = unsaved;
  return () => { if (leaveGuard === unsaved) leaveGuard = null; };
}

/** unsavedWork is what leaving the page now would lose, or ''. */
function unsavedWork() {
  if (!leaveGuard) return '';
  try {
    return leaveGuard() || '';
  } catch (e) {
    console.error(e);
    return '';
  }
}

/** mayLeave asks, if there is unsaved work, whether to leave it. */
async function mayLeave() {
  const lost = unsavedWork();
  if (!lost) return true;
  const leave = await confirmDialog({ title: 'Leave this page?', message: lost, confirm: 'Leave', dismiss: 'Cancel' });
  if (leave) leaveGuard = null;
  return leave;
}

// guardLinks asks before a link to another page is followed; the page's
// own buttons (the wizard's steps) are not links and are not asked about.
function guardLinks(e) {
  if (!leaveGuard || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest?.('a[href]');
  const href = a?.getAttribute('href') || '';
  if (!href.startsWith('#/') || href === location.hash || a.target || a.hasAttribute('download') || !unsavedWork()) return;
  e.preventDefault();
  mayLeave().then((leave) => { if (leave) navigate(href); });
}

// hashChanged routes to the new hash, unless the page shown has unsaved
// work and the user decides to stay: then the address goes back to the
// page (without a new history entry) and nothing is rendered anew.
function hashChanged() {
  if (location.hash === shownHash) return;
  if (!unsavedWork()) {
    route();
    return;
  }
  const target = location.hash;
  history.replaceState(history.state, '', shownHash || '#/');
  mayLeave().then((leave) => {
    if (!leave) return;
    history.replaceState(history.state, '', target);
    route();
  });
}

// beforeUnload has the browser ask before the tab is closed or reloaded
// while there is unsaved work.
function beforeUnload(e) {
  if (!unsavedWork()) return;
  e.preventDefault();
  e.returnValue = '';
}

/** parse splits "#/composes/x?a=1" into its path and query. */
function parse(hash) {
  const raw = (hash || '').replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  return { path: path || '/', query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)), raw };
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  const el = h('div', { class: `toast toast-${kind === 'error' ? 'error' : 'ok'}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', {}, message),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: () => el.remove() }, '×'),
  );
  box.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 10000 : 5000);
}

/** signedIn: a token in this tab, or a gateway that vouches for us. */
let gatewayChecked = false;
async function signedIn() {
  if (session.token) return true;
  if (!gatewayChecked) {
    gatewayChecked = true;
    try {
      await api.get('/composes', { query: { limit: 1 }, token: '', noRedirect: true });
      session.gateway = true;
    } catch {
      session.gateway = false;
    }
  }
  return session.gateway;
}

// The organization the user acts for, shown in the top bar: asked of the
// API (GET /identity) once per sign-in.
let org = '';
let orgAskedFor = null;

function showOrg() {
  const orgEl = document.getElementById('org');
  orgEl.hidden = !org;
  orgEl.textContent = org ? `Organization: ${org}` : '';
}

function updateTopbar(active) {
  const bar = document.getElementById('topbar');
  const show = session.token || session.gateway;
  bar.hidden = !show;
  const who = session.token || (session.gateway ? 'gateway' : '');
  if (who !== orgAskedFor) {
    orgAskedFor = who;
    org = '';
    if (who) {
      api.get('/identity', { noRedirect: true })
        .then((id) => {
          if (orgAskedFor === who) {
            org = id.org_id || '';
            showOrg();
          }
        })
        .catch(() => {}); // the name is a courtesy; the pages report real errors
    }
  }
  showOrg();
  document.getElementById('signout').hidden = !session.token;
  if (active !== undefined) {
    for (const a of bar.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === active) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }
}

async function route() {
  const seq = ++renderSeq;
  shownHash = location.hash;
  leaveGuard = null;
  const { path, query, raw } = parse(location.hash);
  const match = routes.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  if (typeof cleanup === 'function') {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
  }
  cleanup = null;

  if (!match) {
    main.replaceChildren(h('div', { class: 'page' },
      h('div', { class: 'empty-state' }, h('h1', {}, 'Page not found'), h('p', {}, 'There is no page at this address.'),
        h('a', { class: 'btn btn-primary', href: '#/' }, 'Go to Images'))));
    return;
  }
  const { r, m } = match;
  if (!r.public && !(await signedIn())) {
    location.hash = `#/signin?next=${encodeURIComponent('#' + raw)}`;
    return;
  }
  if (seq !== renderSeq) return;
  updateTopbar(r.name);
  main.replaceChildren(h('div', { class: 'page' }, loading()));

  let mod;
  try {
    mod = await r.load();
  } catch (e) {
    if (seq !== renderSeq) return;
    console.error(e);
    main.replaceChildren(h('div', { class: 'page' },
      r.optional
        ? h('div', { class: 'empty-state' }, h('h1', {}, 'The image wizard is not available'),
          h('p', {}, 'This build of kiln has no Create image wizard yet. You can still import a blueprint and build it.'),
          h('a', { class: 'btn btn-primary', href: '#/blueprints' }, 'Go to Blueprints'))
        : errorPanel(new Error('This page could not be loaded. Reload the page to try again.'))));
    return;
  }
  if (seq !== renderSeq) return;
  const root = h('div', {});
  main.replaceChildren(root);
  const ctx = { api, params: { ...(m.groups || {}) }, query, navigate, toast };
  try {
    const c = await mod.render(root, ctx);
    if (seq !== renderSeq) {
      if (typeof c === 'function') c();
      return;
    }
    cleanup = c;
  } catch (e) {
    if (seq !== renderSeq) return;
    console.error(e);
    root.replaceChildren(h('div', { class: 'page' }, errorPanel(e, () => route())));
  }
  const title = main.querySelector('h1');
  document.title = title ? `${title.textContent} · kiln` : 'kiln';
  // After a change of page, keyboard and screen-reader users start at its
  // heading, unless the page put the focus somewhere itself.
  if (!firstRender && title && !main.contains(document.activeElement)) {
    if (!title.hasAttribute('tabindex')) title.setAttribute('tabindex', '-1');
    title.focus({ preventScroll: true });
  }
  firstRender = false;
}

function start() {
  document.getElementById('brand').prepend(logo(28));
  document.getElementById('skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    main.focus();
  });
  document.getElementById('signout').addEventListener('click', async () => {
    if (!(await mayLeave())) return;
    session.clear();
    updateTopbar();
    toast('You are signed out.');
    navigate('#/signin');
  });
  setUnauthorizedHandler(() => {
    // Nothing can be saved without a token: the page is left unasked.
    leaveGuard = null;
    session.clear();
    const { raw, path } = parse(location.hash);
    if (path !== '/signin') location.hash = `#/signin?next=${encodeURIComponent('#' + raw)}`;
  });
  window.addEventListener('kiln:signedin', () => updateTopbar());
  window.addEventListener('hashchange', hashChanged);
  window.addEventListener('beforeunload', beforeUnload);
  document.addEventListener('click', guardLinks, true);
  signedIn().then(() => route());
}

start();
