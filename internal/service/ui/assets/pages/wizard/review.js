// The wizard's last step: the name and description, a summary of every
// step with a way back to it, the blueprint as TOML (rendered by the API
// as the user types) and the buttons that save it or build it. When the
// API finds problems rendering the blueprint (or the wizard's own checks
// do), the steps with them are marked and named here, so that no step
// with a problem looks done.
//
// Of the wizard's context wz (see pages/wizard.js) it uses: state; api;
// toast; mode ('image' or 'blueprint': which button comes last); editing
// (the stored blueprint being edited, or null); toml (the TOML shown:
// {text, error, loading, key}, key being the request it was rendered
// from); tomlTimer; main; alive and later(fn, ms); go(step), submit(kind),
// setReviewErrors(errors) and stepsWithErrors(); and what controls.js
// needs.

import { requestedFacts, targetTitle } from '../../targets.js';
import { h } from '../../ui.js';
import { apiErrors } from './checks.js';
import { field, input } from './controls.js';
import {
  REVIEW, STEPS, blueprintRequest, customizations, stepOf, uploadRequest,
} from './state.js';

/** review renders the review step into body and its buttons into actions. */
export async function review(wz, body, actions) {
  const { state } = wz;
  const name = input(state.name, (v) => { state.name = v; scheduleToml(wz); }, { id: 'wz-name', autocomplete: 'off', spellcheck: 'false', placeholder: 'web-server', required: true });
  const desc = h('textarea', { id: 'wz-description', rows: '2', oninput: (e) => { state.description = e.target.value; scheduleToml(wz); } });
  desc.value = state.description;
  body.append(h('div', { class: 'wizard-grid' },
    field(wz, 'Name', name, { path: 'name', hint: 'Names the blueprint and the image: letters, digits, -, _ and ., e.g. web-server.' }),
    field(wz, 'Description', desc, { path: 'description', hint: 'Optional.' })));
  body.append(h('div', { class: 'alert alert-error wizard-review-problems', id: 'wz-review-problems', role: 'alert', hidden: true }));
  body.append(h('h3', { class: 'wizard-subhead' }, 'Summary'), summary(wz));
  const pre = h('pre', { class: 'code wizard-toml', id: 'wz-toml', tabindex: '0', 'aria-label': 'Blueprint as TOML', 'aria-busy': 'true' });
  const copy = h('button', { type: 'button', class: 'btn btn-small', onclick: () => copyToml(wz, pre) }, 'Copy TOML');
  body.append(h('div', { class: 'wizard-toml-head' }, h('h3', { class: 'wizard-subhead', id: 'wz-toml-title' }, 'Blueprint (TOML)'), copy),
    h('p', { class: 'hint' }, 'The blueprint in the osbuild format, as kiln’s export gives it; it works with kiln blueprint and other osbuild tools.'), pre);
  // Create blueprint ends with Save, Create image with Build; Build
  // saves the blueprint first either way.
  const forBlueprint = wz.mode === 'blueprint';
  const save = h('button', { type: 'button', class: forBlueprint ? 'btn btn-primary' : 'btn', onclick: () => wz.submit('save') }, 'Save blueprint');
  const build = h('button', { type: 'button', class: forBlueprint ? 'btn' : 'btn btn-primary', onclick: () => wz.submit('build') }, 'Build image');
  actions.append(h('span', { class: 'wizard-spacer' }), ...(forBlueprint ? [build, save] : [save, build]));
  actions.append(h('p', { class: 'hint wizard-actions-note' }, wz.editing
    ? `Saving, and building, records a new version of ${wz.editing.name}.`
    : 'Build image saves the blueprint first, so that it can be built again.'));
  showProblems(wz);
  showToml(wz, pre);
  scheduleToml(wz, 0);
}

// summary is every step's choices in a line each, with an Edit button
// that goes back to the step.
function summary(wz) {
  const { state } = wz;
  const c = customizations(state);
  const row = (label, value, stepIndex) => [h('dt', {}, label),
    h('dd', {}, value || h('span', { class: 'hint' }, 'None'), ' ',
      h('button', { type: 'button', class: 'btn btn-ghost btn-small wizard-edit', 'aria-label': `Edit ${label}`, onclick: () => wz.go(stepIndex, { focus: 'heading' }) }, 'Edit'))];
  const list = (xs) => (xs && xs.length ? xs.join(', ') : '');
  const fw = [...(c.firewall?.ports || []), ...(c.firewall?.services?.enabled || []).map((x) => `${x} (service)`)];
  const svc = ['enabled', 'disabled', 'masked'].map((k) => (c.services?.[k]?.length ? `${k}: ${c.services[k].join(', ')}` : '')).filter(Boolean).join('; ');
  // Each row goes back to the step that shows its fields.
  const at = (path) => stepOf(path);
  return h('dl', { class: 'wizard-summary' },
    row('Distribution', state.distribution, at('distribution')),
    row('Architecture', state.architecture, at('image_requests[0].architecture')),
    row('Image types', list(state.imageTypes), at('image_requests[0].image_type')),
    row('Target', state.imageTypes.map((t) => {
      const ur = uploadRequest(state, t);
      const facts = requestedFacts(ur).map((f) => `${f.label.toLowerCase()} ${f.value}`);
      return `${t}: ${targetTitle(ur.type)}${facts.length ? ` (${facts.join('; ')})` : ''}`;
    }).join('; '), at('image_requests[0].upload_request')),
    row('Packages', list(state.packages), at('customizations.packages')),
    row('Users', list(state.users.map((u) => u.name + (u.ssh_key.trim() ? ' (SSH key)' : '') + (u.password ? ' (password)' : ''))), at('customizations.users')),
    row('System', [c.hostname && `hostname ${c.hostname}`, c.timezone?.timezone && `time zone ${c.timezone.timezone}`,
      c.locale?.languages && `languages ${c.locale.languages.join(', ')}`, c.locale?.keyboard && `keyboard ${c.locale.keyboard}`,
      c.kernel?.append && `kernel arguments ${c.kernel.append}`].filter(Boolean).join('; '), at('customizations.hostname')),
    row('Services & firewall', [svc, fw.length ? `firewall: ${fw.join(', ')}` : ''].filter(Boolean).join('; '), at('customizations.services')),
    row('Filesystems', list((c.filesystem || []).map((f) => `${f.mountpoint} ≥ ${f.min_size ?? '?'}`)), at('customizations.filesystem')),
    row('Files & directories', list([...(c.files || []).map((f) => f.path), ...(c.directories || []).map((d) => d.path + '/')]), at('customizations.files')),
    row('Repositories', list((c.custom_repositories || []).map((r) => r.id)), at('customizations.custom_repositories')),
    row('First-boot scripts', list((c.firstboot?.scripts || []).map((x, i) => x.name || `script ${i + 1}`)), at('customizations.firstboot')));
}

// showProblems names the steps that have problems above the summary,
// each a button that goes to it, or hides the box when none has.
function showProblems(wz) {
  const box = wz.main.querySelector('#wz-review-problems');
  if (!box) return;
  const marked = wz.stepsWithErrors();
  // The box is an alert: it changes only when the steps named do, so
  // that each rendering as the user types does not announce it again.
  if (box.dataset.steps === marked.join() && box.childElementCount === (marked.length ? 2 : 0)) return;
  box.dataset.steps = marked.join();
  box.hidden = !marked.length;
  if (!marked.length) { box.replaceChildren(); return; }
  const goTo = (i) => (i === REVIEW
    ? h('span', {}, STEPS[i].title)
    : h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => wz.go(i, { focus: 'error' }) }, STEPS[i].title));
  box.replaceChildren(h('p', {}, marked.length === 1 ? 'This step has problems to fix before the blueprint can be saved or built:' : 'These steps have problems to fix before the blueprint can be saved or built:'),
    h('ul', { class: 'wizard-review-steps' }, marked.map((i) => h('li', {}, goTo(i)))));
}

// showToml shows wz.toml in pre (by default the step's own).
function showToml(wz, pre) {
  pre = pre || wz.main.querySelector('#wz-toml');
  if (!pre) return;
  const { toml } = wz;
  pre.setAttribute('aria-busy', toml.loading ? 'true' : 'false');
  pre.classList.toggle('wizard-toml-error', !!toml.error);
  if (toml.error) pre.textContent = toml.error;
  else pre.textContent = toml.text || (toml.loading ? 'Rendering…' : '');
}

// scheduleToml renders the TOML anew after ms, unless asked again sooner.
function scheduleToml(wz, ms = 400) {
  clearTimeout(wz.tomlTimer);
  wz.tomlTimer = wz.later(() => renderToml(wz), ms);
}

// renderToml asks the API to render the blueprint as it stands, unless
// the TOML shown is already of it.
async function renderToml(wz) {
  const body = blueprintRequest(wz.state);
  if (!body.name) body.name = 'unnamed';
  const key = JSON.stringify(body);
  if (key === wz.toml.key && (wz.toml.text || wz.toml.error)) { showToml(wz); return; }
  wz.toml = { ...wz.toml, key, loading: true };
  showToml(wz);
  try {
    const res = await wz.api.post('/blueprints/render', body);
    if (wz.toml.key !== key) return;
    wz.toml = { key, text: res.toml, error: null, loading: false };
    if (wz.alive) wz.setReviewErrors([]);
  } catch (err) {
    if (wz.toml.key !== key) return;
    // A name not given yet is asked for at the Name field, not reported.
    const errs = apiErrors(err).filter((e) => !(e.field === 'name' && !wz.state.name.trim()));
    const cannot = err?.status === 404 && !err.errors?.some((e) => e.field);
    wz.toml = { key, text: '', loading: false, error: cannot
      ? 'The server cannot render blueprints yet.'
      : 'The blueprint has problems the server reported:\n' + errs.map((e) => (e.field ? `• ${e.field}: ` : '• ') + e.detail).join('\n') };
    // Each problem marks the step that shows its field.
    if (wz.alive && !cannot && err?.status !== 401) wz.setReviewErrors(errs);
  }
  if (wz.alive) {
    showToml(wz);
    showProblems(wz);
  }
}

// copyToml puts the TOML on the clipboard, or selects it and copies the
// selection where the clipboard API is not allowed.
async function copyToml(wz, pre) {
  const text = wz.toml.text;
  if (!text) { wz.toast('There is no TOML to copy yet.', 'error'); return; }
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const range = document.createRange();
    range.selectNodeContents(pre);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    document.execCommand('copy');
  }
  wz.toast('Blueprint TOML copied.', 'ok');
}
