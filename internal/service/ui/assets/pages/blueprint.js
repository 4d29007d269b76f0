// One blueprint: its versions, what changed between two of them, and
// building, editing, exporting or deleting it.

import { lineDiff, stableJSON } from '../diff.js';
import {
  composeName, emptyState, errorPanel, field, fill, formatDate, h, imageRequest, loading, timeEl,
} from '../ui.js';
import { buildBlueprint, deleteBlueprint, exportBlueprint } from './blueprints.js';
import { statusBadge } from '../status.js';

/**
 * definition is what a version defines, as a blueprint request: without
 * its ID, version, time and the checks' findings (lint).
 */
function definition(bp) {
  const { name, description, distribution, image_requests: imageRequests, customizations } = bp;
  return { name, description, distribution, image_requests: imageRequests, customizations };
}

/**
 * comparable is a version as the user knows it: the TOML the API renders
 * of it (what the wizard's review shows and export writes), without the
 * defaults a stored request carries. A version the API cannot render
 * (stored before a check it now fails) is compared as JSON.
 */
async function comparable(api, bp) {
  try {
    const res = await api.post('/blueprints/render', definition(bp));
    if (res && typeof res.toml === 'string') return { text: res.toml, toml: true };
  } catch (e) {
    if (e.status === 401) throw e;
  }
  return { text: stableJSON(definition(bp)), toml: false };
}

export async function render(root, ctx) {
  const { api, params, navigate, toast, query } = ctx;
  const bpId = params.id;
  let bp;
  try {
    bp = await api.get(`/blueprints/${encodeURIComponent(bpId)}`);
  } catch (err) {
    if (err.status === 404 || err.status === 400) {
      root.append(h('div', { class: 'page' }, emptyState('Blueprint not found',
        'There is no blueprint with this ID in your organization. It may have been deleted.',
        h('a', { class: 'btn btn-primary', href: '#/blueprints' }, 'Back to Blueprints'))));
      return undefined;
    }
    throw err;
  }
  let versions = [];
  try {
    const res = await api.get(`/blueprints/${bpId}/versions`);
    versions = (res && res.data) || [];
  } catch {
    versions = [];
  }
  if (!versions.length) versions = [{ version: bp.version, last_modified_at: bp.last_modified_at, name: bp.name, description: bp.description }];

  const build = async (version, btn) => {
    btn.disabled = true;
    try {
      const ids = await buildBlueprint(api, bp, version);
      toast(ids.length === 1 ? `Building ${bp.name} version ${version || bp.version}.` : `Started ${ids.length} builds of ${bp.name}.`);
      navigate(ids.length === 1 ? `#/composes/${ids[0]}` : '#/');
    } catch (err) {
      toast(`Could not build: ${err.message}`, 'error');
      btn.disabled = false;
    }
  };

  const types = (bp.image_requests || []).map((r) => `${r.image_type} (${r.architecture})`);
  const diffSlot = h('div', {});
  const composesSlot = h('div', {}, loading('Loading builds…'));

  // ---- versions ----
  // A version's name is worth a column only when some version had another.
  const renamed = versions.some((v) => v.name && v.name !== bp.name);
  // #/blueprints/ID?version=N (an image's link to what it was built from)
  // marks that version.
  const shown = Number(query && query.get('version')) || 0;
  const versionRows = versions.map((v) => h('tr', { class: v.version === shown ? 'row-current' : false, 'aria-current': v.version === shown ? 'true' : false },
    // The number and its badge are one item, kept together when the
    // table stacks on a narrow screen.
    h('td', { 'data-label': 'Version' }, h('span', { class: 'version-label' },
      h('span', { class: 'strong' }, `Version ${v.version}`), v.version === bp.version ? h('span', { class: 'tag' }, 'latest') : null)),
    h('td', { 'data-label': 'Saved' }, timeEl(v.last_modified_at)),
    renamed ? h('td', { 'data-label': 'Name' }, v.name || bp.name) : null,
    h('td', { 'data-label': 'Actions', class: 'cell-actions' }, h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Build version ${v.version}`, onclick: (e) => build(v.version, e.currentTarget) }, 'Build'),
      h('a', { class: 'btn btn-small btn-ghost', href: `#/create?blueprint=${bpId}&version=${v.version}`, 'aria-label': `Edit version ${v.version}` }, 'Edit')))));

  // ---- diff ----
  const fromSel = h('select', { class: 'input' }, versions.map((v) => h('option', { value: String(v.version) }, `Version ${v.version}`)));
  const toSel = h('select', { class: 'input' }, versions.map((v) => h('option', { value: String(v.version) }, `Version ${v.version}`)));
  if (versions.length > 1) {
    const i = Math.max(0, versions.findIndex((v) => v.version === shown));
    // The version linked to, against the one before it (or the next).
    toSel.value = String(versions[i === versions.length - 1 ? i - 1 : i].version);
    fromSel.value = String(versions[i === versions.length - 1 ? i : i + 1].version);
  }
  const cache = new Map([[bp.version, bp]]);
  const version = async (n) => {
    if (!cache.has(n)) cache.set(n, await api.get(`/blueprints/${bpId}`, { query: { version: n } }));
    return cache.get(n);
  };
  async function showDiff() {
    const a = Number(fromSel.value);
    const b = Number(toSel.value);
    if (a === b) {
      fill(diffSlot, h('p', { class: 'muted diff-summary', role: 'status' }, 'Choose two different versions to compare.'));
      return;
    }
    fill(diffSlot, loading('Comparing…'));
    let ta;
    let tb;
    try {
      const [va, vb] = await Promise.all([version(a), version(b)]);
      [ta, tb] = await Promise.all([comparable(api, va), comparable(api, vb)]);
      if (ta.toml !== tb.toml) [ta, tb] = [{ text: stableJSON(definition(va)) }, { text: stableJSON(definition(vb)) }];
    } catch (e) {
      fill(diffSlot, errorPanel(e, showDiff));
      return;
    }
    if (Number(fromSel.value) !== a || Number(toSel.value) !== b) return; // another pair was chosen meanwhile
    const lines = lineDiff(ta.text, tb.text);
    const added = lines.filter((l) => l.op === '+').length;
    const removed = lines.filter((l) => l.op === '-').length;
    if (!added && !removed) {
      fill(diffSlot, h('p', { class: 'muted diff-summary', role: 'status' }, `Versions ${a} and ${b} are the same.`));
      return;
    }
    fill(diffSlot,
      h('p', { class: 'diff-summary', role: 'status' }, `From version ${a} to version ${b}: `,
        h('span', { class: 'diff-count-add' }, `${added} ${added === 1 ? 'line' : 'lines'} added`), ', ',
        h('span', { class: 'diff-count-del' }, `${removed} ${removed === 1 ? 'line' : 'lines'} removed`)),
      h('div', { class: 'diff', role: 'table', 'aria-label': `Changes from version ${a} to version ${b}`, dataset: { format: ta.toml ? 'toml' : 'json' } },
        lines.map((l) => h('div', { class: `diff-line ${l.op === '+' ? 'diff-add' : l.op === '-' ? 'diff-del' : 'diff-same'}`, role: 'row' },
          h('span', { class: 'diff-num', role: 'cell' }, l.a || ''),
          h('span', { class: 'diff-num', role: 'cell' }, l.b || ''),
          h('span', { class: 'diff-op', role: 'cell', 'aria-label': l.op === '+' ? 'added' : l.op === '-' ? 'removed' : 'unchanged' }, l.op === ' ' ? '' : l.op === '-' ? '−' : '+'),
          h('span', { class: 'diff-text', role: 'cell' }, l.text)))));
  }
  fromSel.addEventListener('change', showDiff);
  toSel.addEventListener('change', showDiff);

  // ---- composes built from it ----
  async function loadComposes() {
    try {
      const res = await api.get(`/blueprints/${bpId}/composes`, { query: { limit: 10 } });
      const items = (res && res.data) || [];
      await Promise.all(items.map(async (c) => {
        if (!c.image_status) c.image_status = (await api.get(`/composes/${c.id}`).catch(() => ({}))).image_status;
      }));
      if (!items.length) {
        fill(composesSlot, h('p', { class: 'muted' }, 'No images were built from this blueprint yet.'));
        return;
      }
      fill(composesSlot, h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack table-compact' },
        h('thead', {}, h('tr', {}, ['Image', 'Version', 'Type', 'Created', 'Status'].map((t) => h('th', { scope: 'col', class: t === 'Actions' ? 'th-actions' : false }, t)))),
        h('tbody', {}, items.map((c) => h('tr', {},
          h('td', { 'data-label': 'Image' }, h('a', { href: `#/composes/${c.id}` }, composeName(c))),
          h('td', { 'data-label': 'Version' }, c.blueprint_version ? String(c.blueprint_version) : '—'),
          h('td', { 'data-label': 'Type' }, imageRequest(c).image_type || '—'),
          h('td', { 'data-label': 'Created' }, timeEl(c.created_at)),
          h('td', { 'data-label': 'Status' }, statusBadge(c.image_status))))))));
    } catch (e) {
      fill(composesSlot, errorPanel(e, loadComposes));
    }
  }

  const buildBtn = h('button', { type: 'button', class: 'btn btn-primary', onclick: (e) => build(undefined, e.currentTarget) }, 'Build image');
  root.append(h('div', { class: 'page' },
    h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/blueprints' }, 'Blueprints'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { 'aria-current': 'page' }, bp.name)),
    h('div', { class: 'page-header' },
      h('div', {}, h('h1', { tabindex: '-1' }, bp.name), h('p', { class: 'subtitle' }, bp.description || 'No description.')),
      h('div', { class: 'actions' },
        buildBtn,
        h('a', { class: 'btn', href: `#/create?blueprint=${bpId}&version=${bp.version}` }, 'Edit'),
        h('button', { type: 'button', class: 'btn', onclick: () => exportBlueprint(api, bp).catch((e) => toast(`Could not export: ${e.message}`, 'error')) }, 'Export TOML'),
        h('button', {
          type: 'button', class: 'btn btn-danger',
          onclick: async () => {
            try {
              if (await deleteBlueprint(api, bp)) {
                toast(`${bp.name} was deleted.`);
                navigate('#/blueprints');
              }
            } catch (e) {
              toast(`Could not delete: ${e.message}`, 'error');
            }
          },
        }, 'Delete'))),
    h('div', { class: 'grid-2' },
      h('section', { class: 'card', 'aria-labelledby': 'sum-h' }, h('h2', { class: 'card-title', id: 'sum-h' }, 'Summary'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Distribution'), h('dd', {}, bp.distribution),
          h('dt', {}, 'Image types'), h('dd', {}, types.join(', ') || '—'),
          h('dt', {}, 'Latest version'), h('dd', {}, `${bp.version}, saved ${formatDate(bp.last_modified_at)}`),
          h('dt', {}, 'Packages'), h('dd', {}, String(((bp.customizations || {}).packages || []).length)))),
      h('section', { class: 'card', 'aria-labelledby': 'ver-h' }, h('h2', { class: 'card-title', id: 'ver-h' }, 'Versions'),
        h('div', { class: 'table-wrap' }, h('table', { class: 'table table-stack table-compact' },
          h('thead', {}, h('tr', {}, ['Version', 'Saved', renamed && 'Name', 'Actions'].filter(Boolean).map((t) => h('th', { scope: 'col', class: t === 'Actions' ? 'th-actions' : false }, t)))),
          h('tbody', {}, versionRows))))),
    h('section', { class: 'card', 'aria-labelledby': 'diff-h' },
      h('h2', { class: 'card-title', id: 'diff-h' }, 'Compare versions'),
      versions.length > 1
        ? [h('div', { class: 'form-row compare' }, field('From version', fromSel), field('To version', toSel)), diffSlot]
        : h('p', { class: 'muted' }, 'There is only one version. Edit the blueprint to make another, then compare them here.')),
    h('section', { class: 'card', 'aria-labelledby': 'bc-h' }, h('h2', { class: 'card-title', id: 'bc-h' }, 'Images built from this blueprint'), composesSlot)));

  if (versions.length > 1) showDiff();
  loadComposes();
  return undefined;
}
