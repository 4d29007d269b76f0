// The shell: finds out who is signed in, routes hash URLs to page
// modules, keeps the top bar current and shows toasts.

import { api, session, setUnauthorizedHandler } from './api.js';
import { errorPanel, h, loading, logo } from './ui.js';

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
  document.getElementById('signout').addEventListener('click', () => {
    session.clear();
    updateTopbar();
    toast('You are signed out.');
    navigate('#/signin');
  });
  setUnauthorizedHandler(() => {
    session.clear();
    const { raw, path } = parse(location.hash);
    if (path !== '/signin') location.hash = `#/signin?next=${encodeURIComponent('#' + raw)}`;
  });
  window.addEventListener('kiln:signedin', () => updateTopbar());
  window.addEventListener('hashchange', route);
  signedIn().then(() => route());
}

start();
