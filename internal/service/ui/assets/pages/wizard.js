// The Create image wizard (#/create, and #/create?blueprint=<id>&version=<n>
// to edit a stored blueprint). Everything the user enters lives in one
// state object, separate from the DOM: steps are rebuilt from it whenever
// they are shown, so nothing typed is lost when moving between steps or when
// the API rejects a request. The API is the judge of what is valid: checks
// made here only explain problems early and never stop a request.
//
// This module is the page: loading, the stepper, moving between steps,
// the API's errors at the fields, and sending the request. The rest is in
// pages/wizard/: state.js (the model and the requests made from it),
// checks.js (the client-side checks and the wording of the API's errors),
// controls.js (the form controls), steps.js and review.js (the steps).
//
// The steps share one context, wz: the state and what the steps need of
// the page (see steps.js and review.js for what each uses).

import { h } from '../ui.js';
import { apiErrors, fieldChecks } from './wizard/checks.js';
import { showFieldError } from './wizard/controls.js';
import { review } from './wizard/review.js';
import {
  REVIEW, STEPS, blueprintRequest, composeRequest, missingChoices, newState, stateFromBlueprint, stepOf,
} from './wizard/state.js';
import { steps } from './wizard/steps.js';

// renderers render each step, by the step's id in STEPS.
const renderers = { ...steps, review };

/** render shows the wizard in root; it returns what stops it. */
export async function render(root, ctx) {
  const { api, query, navigate, toast } = ctx;
  let step = 0;
  let visited = 0; // highest step reached
  let busy = false;
  const timers = new Set();

  const page = h('div', { class: 'page wizard' });
  root.replaceChildren(page);

  const header = h('div', { class: 'page-header' }, h('h1', { id: 'wz-title' }, 'Create image'));
  const stepper = h('ol', { class: 'stepper', 'aria-label': 'Steps' });
  const main = h('div', { class: 'wizard-main' });
  page.append(header, h('div', { class: 'wizard-layout' }, h('nav', { class: 'wizard-nav', 'aria-label': 'Wizard steps' }, stepper), main));

  const wz = {
    api,
    toast,
    state: newState(),
    editing: null, // {id, version, name} when editing a stored blueprint
    serverErrors: [], // [{field, detail}] from the last request
    alive: true, // false once the user left the page
    cache: { distributions: null, detail: {} },
    toml: { text: '', error: null, loading: false, key: '' },
    tomlTimer: null,
    main,
    later(fn, ms) {
      const t = setTimeout(() => { timers.delete(t); if (wz.alive) fn(); }, ms);
      timers.add(t);
      return t;
    },
    distributionDetail,
    dropErrors,
    forgetErrorsUnder,
    // rerender rebuilds the current step keeping the focus on element id.
    rerender: (id) => renderStep(id ? '#' + CSS.escape(id) : null),
    go,
    submit,
  };

  // ---- loading

  try {
    if (query?.get('blueprint')) {
      const id = query.get('blueprint');
      const version = query.get('version');
      const bp = await api.get('/blueprints/' + encodeURIComponent(id), version ? { query: { version } } : {});
      wz.state = stateFromBlueprint(bp);
      wz.editing = { id, version: bp.version, name: bp.name };
      header.querySelector('h1').textContent = `Edit blueprint ${bp.name}`;
      header.append(h('p', { class: 'hint' }, `Starting from version ${bp.version}. Saving records a new version.`));
      visited = REVIEW;
    }
    wz.cache.distributions = await api.get('/distributions');
    if (wz.state.distribution) await distributionDetail(wz.state.distribution);
  } catch (err) {
    main.replaceChildren(h('div', { class: 'alert alert-error', role: 'alert' },
      h('p', {}, `Could not load ${wz.editing || query?.get('blueprint') ? 'the blueprint' : 'the distributions'}: `, apiErrors(err).map((e) => e.detail).join('; '))));
    return () => { wz.alive = false; };
  }

  async function distributionDetail(name) {
    const { cache } = wz;
    if (!cache.detail[name]) {
      const d = await api.get('/distributions/' + encodeURIComponent(name));
      // The API keys architectures by name (image-builder's shape); the wizard walks the names.
      cache.detail[name] = { ...d, architectures: Object.keys(d.architectures || {}) };
    }
    return cache.detail[name];
  }

  // ---- errors

  function errorsOf(stepIndex) {
    return wz.serverErrors.filter((e) => stepOf(e.field) === stepIndex);
  }

  // dropErrors forgets the server's errors about a field once it is edited.
  function dropErrors(path) {
    const before = wz.serverErrors.length;
    wz.serverErrors = wz.serverErrors.filter((e) => !(e.field === path || e.field.startsWith(path + '.') || e.field.startsWith(path + '[')));
    if (wz.serverErrors.length !== before) renderStepper();
  }

  // forgetErrorsUnder forgets the server's errors about every field whose
  // path starts with prefix, when a row of a list is removed and the
  // indexes they name no longer fit.
  function forgetErrorsUnder(prefix) {
    wz.serverErrors = wz.serverErrors.filter((e) => !e.field.startsWith(prefix));
  }

  // applyErrors puts each server error of the step next to its control:
  // the control whose data-field is the longest prefix of the error's path.
  // Errors with no control on the step are listed at its top.
  function applyErrors(form, stepIndex) {
    const controls = [...form.querySelectorAll('[data-field]')];
    const byPath = new Map();
    const loose = [];
    for (const e of errorsOf(stepIndex)) {
      let best = null;
      for (const c of controls) {
        const f = c.dataset.field;
        if ((e.field === f || e.field.startsWith(f + '.') || e.field.startsWith(f + '[')) && (!best || f.length > best.dataset.field.length)) best = c;
      }
      if (best) byPath.set(best, [...(byPath.get(best) || []), e.detail]);
      else loose.push(e);
    }
    for (const c of controls) {
      const server = byPath.get(c) || [];
      if (!/^(INPUT|TEXTAREA|SELECT)$/.test(c.tagName)) {
        // A fieldset, or a chip: the message goes inside it.
        c.querySelector(':scope > .wizard-container-error')?.remove();
        c.classList.toggle('wizard-invalid', server.length > 0);
        if (server.length) c.append(h('p', { class: 'field-error wizard-container-error', role: 'alert' }, server.join(' ')));
        continue;
      }
      const client = c.dataset.check ? fieldChecks[c.dataset.check](c.value) : '';
      const msg = [client, ...server.filter((m) => m !== client)].filter(Boolean).join(' ');
      if (msg || c.getAttribute('aria-invalid')) showFieldError(c, msg);
    }
    const box = form.querySelector('.wizard-step-errors');
    if (box) {
      box.replaceChildren();
      box.hidden = !loose.length;
      if (loose.length) {
        box.append(h('p', {}, 'The server rejected the request:'),
          h('ul', {}, loose.map((e) => h('li', {}, e.field ? h('code', {}, e.field) : null, e.field ? ': ' : null, e.detail))));
      }
    }
    return controls.find((c) => c.getAttribute('aria-invalid') === 'true' || c.classList.contains('wizard-invalid'));
  }

  // ---- navigation

  function renderStepper() {
    stepper.replaceChildren(...STEPS.map((s, i) => {
      const errs = errorsOf(i).length > 0;
      const label = [h('span', { class: 'stepper-title' }, s.title)];
      if (errs) label.push(h('span', { class: 'visually-hidden' }, ' (has errors)'));
      const li = h('li', { class: [i < step ? 'done' : '', errs ? 'has-error' : ''].filter(Boolean).join(' ') || undefined });
      if (i === step) {
        li.setAttribute('aria-current', 'step');
        li.append(h('span', { class: 'stepper-item' }, label));
      } else if (i <= visited) {
        li.append(h('button', { type: 'button', class: 'stepper-item', onclick: () => go(i) }, label));
      } else {
        li.append(h('span', { class: 'stepper-item', 'aria-disabled': 'true' }, label));
      }
      return li;
    }));
  }

  async function go(i, { focus = 'heading' } = {}) {
    step = i;
    visited = Math.max(visited, i);
    renderStepper();
    await renderStep(focus);
  }

  // ---- the steps

  async function renderStep(focus) {
    renderStepper();
    const s = STEPS[step];
    const heading = h('h2', { tabindex: '-1', id: 'wz-step-heading' }, `${step + 1}. ${s.title}`);
    const body = h('div', { class: 'wizard-step-body' });
    const stepErrors = h('div', { class: 'alert alert-error wizard-step-errors', role: 'alert', hidden: true });
    const problem = h('p', { class: 'field-error wizard-step-problem', role: 'alert', hidden: true });
    const back = h('button', { type: 'button', class: 'btn', onclick: () => go(step - 1) }, 'Back');
    const actions = h('div', { class: 'wizard-actions' });
    if (step > 0) actions.append(back);
    if (step < REVIEW) actions.append(h('button', { type: 'submit', class: 'btn btn-primary' }, 'Next'));
    const form = h('form', { class: 'card wizard-step', 'aria-labelledby': heading.id, novalidate: true }, heading, stepErrors, body, problem, actions);
    // Enter in a search or list input acts on that input (keydown); its
    // keypress must not submit the step either.
    form.addEventListener('keypress', (e) => {
      if (e.key === 'Enter' && e.target.dataset?.enter === 'local') e.preventDefault();
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (step === REVIEW) return;
      const msg = canLeave();
      problem.textContent = msg;
      problem.hidden = !msg;
      if (!msg) go(step + 1);
    });
    main.replaceChildren(form);
    await renderers[s.id](wz, body, actions);
    if (!wz.alive) return;
    const firstInvalid = applyErrors(form, step);
    if (focus === 'error' && firstInvalid) {
      (firstInvalid.matches('input, textarea, select') ? firstInvalid : firstInvalid.querySelector('input, textarea, select, button') || heading).focus();
    } else if (focus === 'error') heading.focus();
    else if (typeof focus === 'string' && focus.startsWith('#')) (form.querySelector(focus) || heading).focus();
    else if (focus === 'heading') heading.focus();
  }

  // canLeave returns why the current step cannot be left forward, or ''.
  // Only choices the request cannot be made without are required here.
  function canLeave() {
    return missingChoices(STEPS[step].id, wz.state).join(' ');
  }

  // ---- submitting

  async function submit(kind) {
    if (busy) return;
    busy = true;
    main.querySelectorAll('.wizard-actions button').forEach((b) => { b.disabled = true; });
    main.querySelector('.wizard-actions')?.setAttribute('aria-busy', 'true');
    wz.serverErrors = [];
    try {
      if (kind === 'save') {
        const body = blueprintRequest(wz.state);
        const { editing } = wz;
        const res = editing
          ? await api.put('/blueprints/' + encodeURIComponent(editing.id), body)
          : await api.post('/blueprints', body);
        toast(editing ? `Saved a new version of ${body.name}.` : `Saved blueprint ${body.name}.`, 'ok');
        navigate('#/blueprints/' + (res?.id || editing?.id));
        return;
      }
      const ids = [];
      const { state } = wz;
      for (const [i, type] of state.imageTypes.entries()) {
        try {
          const res = await api.post('/compose', composeRequest(state, type));
          ids.push(res.id);
        } catch (err) {
          if (ids.length) toast(`${ids.length} of ${state.imageTypes.length} builds started; ${type} was refused.`, 'error');
          // Each compose has one image request: its errors are about the
          // image type at index i, as the blueprint's would be.
          err.imageRequest = i;
          throw err;
        }
      }
      toast(ids.length === 1 ? 'Build started.' : `${ids.length} builds started.`, 'ok');
      navigate(ids.length === 1 ? '#/composes/' + ids[0] : '#/');
    } catch (err) {
      if (!wz.alive) return;
      if (err?.status === 401) return; // api.js sends the user to sign in
      wz.serverErrors = apiErrors(err).map((e) => (err?.imageRequest
        ? { ...e, field: e.field.replace(/^image_requests\[0\]/, `image_requests[${err.imageRequest}]`) } : e));
      busy = false;
      const first = Math.min(...wz.serverErrors.map((e) => stepOf(e.field)));
      visited = Math.max(visited, first);
      // No toast: it would cover the step's buttons. The step with the
      // first error opens, its fields say what is wrong (role=alert), and
      // the focus goes to the first of them.
      await go(first, { focus: 'error' });
      return;
    } finally {
      busy = false;
    }
  }

  renderStepper();
  await renderStep(null);
  if (!wz.editing) main.querySelector('input')?.focus();

  return () => {
    wz.alive = false;
    for (const t of timers) clearTimeout(t);
  };
}
