// Blueprints: the organization's stored image definitions, and importing
// one from an osbuild-format TOML or JSON file.

import {
  clearErrors, confirmDialog, emptyState, errorPanel, field, fill, h, id as uid, loading, saveBlob, setError, showErrors, timeEl,
} from '../ui.js';
import { plural } from '../status.js';

/** exportBlueprint saves a blueprint's latest version as a TOML file. */
export async function exportBlueprint(api, bp) {
  const toml = await api.text(`/blueprints/${bp.id}/export`, { headers: { Accept: 'application/toml' } });
  const safe = (bp.name || 'blueprint').replace(/[^A-Za-z0-9._-]+/g, '-');
  saveBlob(new Blob([toml], { type: 'application/toml' }), `${safe}.toml`);
}

/** buildBlueprint starts the builds of a blueprint (version n, or the latest). */
export async function buildBlueprint(api, bp, version) {
  const body = version ? { version } : {};
  const res = await api.post(`/blueprints/${bp.id}/compose`, body);
  return Array.isArray(res) ? res.map((r) => r.id) : [];
}

export async function deleteBlueprint(api, bp) {
  const ok = await confirmDialog({
    title: `Delete ${bp.name}?`,
    message: 'The blueprint and all its versions are deleted. Images already built from it stay. This cannot be undone.',
  });
  if (!ok) return false;
  await api.del(`/blueprints/${bp.id}`);
  return true;
}

/** importForm is the import card: a file, and what to build from it. */
function importForm(api, { navigate, toast, onCancel }) {
  const file = h('input', { type: 'file', class: 'input', accept: '.toml,.json,application/toml,application/json', required: true });
  const distro = h('select', { class: 'input', required: true });
  const arch = h('select', { class: 'input', required: true });
  const typesBox = h('div', { class: 'checks', role: 'group' });
  const typesId = uid('types');
  typesBox.id = typesId;
  typesBox.tabIndex = -1;
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Import');
  let detail = null;
  // Nothing is chosen for the user, as in the wizard: importing with no
  // type is stopped at the types box.
  const chosenTypes = new Set();

  const typesLegend = h('legend', {}, 'Image types');
  const typesField = h('fieldset', { class: 'field fieldset', 'aria-describedby': `${typesId}-error` },
    typesLegend, typesBox, h('p', { class: 'hint' }, 'Each build of the blueprint makes one image of each type chosen here.'),
    h('p', { class: 'field-error', role: 'alert', id: `${typesId}-error`, hidden: true }));
  typesBox.dataset.field = 'image_type';

  function drawTypes() {
    const a = arch.value;
    const types = ((detail && detail.image_types) || []).filter((t) => !a || (t.architectures || []).includes(a));
    fill(typesBox, types.map((t) => {
      const cb = h('input', { type: 'checkbox', value: t.name, checked: chosenTypes.has(t.name), onchange: (e) => { if (e.target.checked) chosenTypes.add(t.name); else chosenTypes.delete(t.name); } });
      const cid = uid('type');
      cb.id = cid;
      return h('div', { class: 'check' }, cb, h('label', { for: cid }, h('span', { class: 'strong' }, t.name), t.description ? h('span', { class: 'muted small' }, ` — ${t.description}`) : null));
    }));
    if (!types.length) typesBox.append(h('p', { class: 'muted' }, 'Choose a distribution first.'));
  }

  async function loadDistro() {
    try {
      detail = await api.get(`/distributions/${encodeURIComponent(distro.value)}`);
    } catch {
      detail = null;
    }
    // x86_64 first, as the API's default: the architectures come keyed by
    // name, aarch64 sorting before it.
    const keep = arch.value || 'x86_64';
    fill(arch, Object.keys((detail && detail.architectures) || {}).map((a) => h('option', { value: a, selected: a === keep }, a)));
    drawTypes();
  }
  distro.addEventListener('change', loadDistro);
  arch.addEventListener('change', drawTypes);

  (async () => {
    try {
      const ds = await api.get('/distributions');
      fill(distro, (ds || []).map((d) => h('option', { value: d.name, selected: d.name === 'debian-12' }, d.description ? `${d.description} (${d.name})` : d.name)));
      await loadDistro();
    } catch (e) {
      typesBox.append(errorPanel(e));
    }
  })();

  distro.dataset.field = 'distribution';
  arch.dataset.field = 'architecture';
  const form = h('form', { class: 'form card import-card', novalidate: true, 'aria-labelledby': 'import-h' },
    h('div', { class: 'card-header' }, h('h2', { class: 'card-title', id: 'import-h' }, 'Import a blueprint')),
    h('p', { class: 'muted' }, 'Upload a blueprint file in the osbuild format (TOML or JSON), such as one exported from kiln or from Image Builder. Its name and description come from the file.'),
    field('Blueprint file', file, { hint: 'A .toml or .json file.', name: 'file' }),
    h('div', { class: 'form-row' }, field('Distribution', distro), field('Architecture', arch)),
    typesField,
    h('div', { class: 'form-actions' }, submit, h('button', { type: 'button', class: 'btn btn-ghost', onclick: onCancel }, 'Cancel')));

  // Errors about the file's content name fields in the file's spelling:
  // they are shown at the file input.
  const toFile = (path) => (path && path !== 'distribution' && path !== 'architecture' && !path.startsWith('image_type') ? file : null);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const f = file.files && file.files[0];
    const types = [...typesBox.querySelectorAll('input:checked')].map((c) => c.value);
    let bad = false;
    if (!f) {
      setError(file, 'Choose a blueprint file to import.');
      bad = true;
    }
    if (!types.length) {
      const p = document.getElementById(`${typesId}-error`);
      p.textContent = 'Choose at least one image type.';
      p.hidden = false;
      bad = true;
    }
    if (bad) {
      (f ? typesBox.querySelector('input') || typesBox : file).focus();
      return;
    }
    const text = await f.text();
    const json = /\.json$/i.test(f.name) || f.type === 'application/json' || /^\s*\{/.test(text);
    submit.disabled = true;
    submit.textContent = 'Importing…';
    try {
      const res = await api.post('/blueprints/import', text, {
        headers: { 'Content-Type': json ? 'application/json' : 'application/toml' },
        query: { distribution: distro.value, architecture: arch.value, image_type: types },
      });
      toast('The blueprint was imported.');
      navigate(`#/blueprints/${res.id}`);
    } catch (err) {
      // The API words problems with the query (what was chosen beside
      // the file) as "query parameter NAME: ..." without a field.
      for (const item of err.errors || []) {
        const m = !item.field && /^query parameter (distribution|architecture|image_type)\b/.exec(item.detail || '');
        if (m) item.field = m[1];
      }
      showErrors(form, err, (path) => {
        if (path.startsWith('image_type')) return typesBox;
        return toFile(path);
      });
      separateItems(form, err);
    } finally {
      submit.disabled = false;
      submit.textContent = 'Import';
    }
  });
  return form;
}

/**
 * separateItems shows each of the API's problems at a field as an item of
 * its own (showErrors runs them together into one paragraph): the field's
 * error is split back into the problems it was joined from.
 */
function separateItems(form, err) {
  const details = (err.errors || []).map((e) => e.detail || e.title || '').filter(Boolean);
  for (const p of form.querySelectorAll('.field-error:not([hidden])')) {
    let rest = p.textContent;
    const items = [];
    for (;;) {
      const d = details.filter((x) => rest.startsWith(x)).sort((x, y) => y.length - x.length)[0];
      if (!d) break;
      items.push(d);
      rest = rest.slice(d.length).replace(/^ /, '');
    }
    if (items.length < 2 || rest) continue;
    fill(p, items.map((d, i) => [i ? h('br') : null, h('span', { class: 'error-item' }, d)]));
  }
}

export async function render(root, ctx) {
  const { api, navigate, toast, query } = ctx;
  const importSlot = h('div', {});
  const listSlot = h('div', {}, loading('Loading blueprints…'));
  const importBtn = h('button', { type: 'button', class: 'btn', 'aria-expanded': 'false' }, 'Import blueprint');

  function showImport(show) {
    importBtn.setAttribute('aria-expanded', String(show));
    if (!show) {
      importSlot.replaceChildren();
      importBtn.focus();
      return;
    }
    if (!importSlot.firstChild) {
      const form = importForm(api, { navigate, toast, onCancel: () => showImport(false) });
      importSlot.append(form);
      form.querySelector('input[type=file]').focus();
    }
  }
  importBtn.addEventListener('click', () => showImport(importBtn.getAttribute('aria-expanded') !== 'true'));

  root.append(h('div', { class: 'page' },
    h('div', { class: 'page-header' },
      h('div', {}, h('h1', { tabindex: '-1' }, 'Blueprints'), h('p', { class: 'subtitle' }, 'Saved image definitions. Every change is kept as a new version you can build, compare and export.')),
      h('div', { class: 'actions' }, importBtn, h('a', { class: 'btn btn-primary', href: '#/create?mode=blueprint' }, 'Create blueprint'))),
    importSlot,
    listSlot));
  if (query.get('import') === '1') showImport(true);

  async function load() {
    let res;
    try {
      res = await api.get('/blueprints', { query: { limit: 100 } });
    } catch (e) {
      fill(listSlot, errorPanel(e, load));
      return;
    }
    const items = (res && res.data) || [];
    if (!items.length) {
      fill(listSlot, emptyState('No blueprints yet',
        'A blueprint says what goes into an image: the distribution, packages, users and settings. Create one with the wizard, or import a file you already have.',
        h('a', { class: 'btn btn-primary', href: '#/create?mode=blueprint' }, 'Create blueprint'),
        h('button', { type: 'button', class: 'btn', onclick: () => showImport(true) }, 'Import blueprint')));
      return;
    }
    const tbody = h('tbody', {}, items.map((bp) => h('tr', {},
      h('td', { 'data-label': 'Name' }, h('a', { class: 'strong', href: `#/blueprints/${bp.id}` }, bp.name)),
      h('td', { 'data-label': 'Description' }, bp.description || h('span', { class: 'muted' }, '—')),
      h('td', { 'data-label': 'Version' }, String(bp.version)),
      h('td', { 'data-label': 'Last modified' }, timeEl(bp.last_modified_at)),
      h('td', { 'data-label': 'Actions', class: 'cell-actions' }, h('div', { class: 'row-actions' },
        h('button', {
          type: 'button', class: 'btn btn-small', 'aria-label': `Build ${bp.name}`,
          onclick: async (e) => {
            e.currentTarget.disabled = true;
            try {
              const ids = await buildBlueprint(api, bp);
              toast(ids.length === 1 ? `Building ${bp.name}.` : `Started ${ids.length} builds of ${bp.name}.`);
              navigate(ids.length === 1 ? `#/composes/${ids[0]}` : '#/');
            } catch (err) {
              toast(`Could not build: ${err.message}`, 'error');
              e.target.disabled = false;
            }
          },
        }, 'Build'),
        h('a', { class: 'btn btn-small btn-ghost', href: `#/create?blueprint=${bp.id}&version=${bp.version}`, 'aria-label': `Edit ${bp.name}` }, 'Edit'),
        h('button', {
          type: 'button', class: 'btn btn-small btn-ghost', 'aria-label': `Export ${bp.name}`,
          onclick: () => exportBlueprint(api, bp).catch((err) => toast(`Could not export: ${err.message}`, 'error')),
        }, 'Export'),
        h('button', {
          type: 'button', class: 'btn btn-small btn-ghost btn-danger-text', 'aria-label': `Delete ${bp.name}`,
          onclick: async () => {
            try {
              if (await deleteBlueprint(api, bp)) {
                toast(`${bp.name} was deleted.`);
                load();
              }
            } catch (err) {
              toast(`Could not delete: ${err.message}`, 'error');
            }
          },
        }, 'Delete'))))));
    fill(listSlot, h('div', { class: 'table-wrap card' },
      h('table', { class: 'table table-stack' },
        h('caption', { class: 'visually-hidden' }, 'Blueprints'),
        h('thead', {}, h('tr', {}, ['Name', 'Description', 'Version', 'Last modified', 'Actions'].map((t) => h('th', { scope: 'col', class: t === 'Actions' ? 'th-actions' : false }, t)))),
        tbody)),
    h('p', { class: 'muted small list-count' }, plural(res.meta && res.meta.count !== undefined ? res.meta.count : items.length, 'blueprint')));
  }
  await load();
  return undefined;
}

