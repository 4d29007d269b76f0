// The Create image wizard (#/create; #/create?mode=blueprint is the same
// wizard as Create blueprint, and #/create?blueprint=<id>&version=<n>
// edits a stored blueprint). Everything the user enters lives in one
// state object, separate from the DOM: steps are rebuilt from it whenever
// they are shown, so nothing typed is lost when moving between steps or when
// the API rejects a request. The API is the judge of what is valid: the
// checks made here apply the API's own rules to a few fields (host name,
// user and group names) so that their problems show as a field is left,
// and a request known to fail is not sent; the others only explain early.
//
// Every problem known is shown at once: the API's (one item per problem,
// each with its field), those of the blueprint as Review rendered it, and
// the wizard's own, each at its control, and every step with one is
// marked in the stepper. Build saves the blueprint first (a new version
// when editing) and builds what was saved; leaving the wizard with
// unsaved changes asks first (app.js's setLeaveGuard).
//
// This module is the page: loading, the stepper, moving between steps,
// the errors at the fields, and sending the requests. The rest is in
// pages/wizard/: state.js (the model and the requests made from it),
// checks.js (the client-side checks and the wording of the API's errors),
// controls.js (the form controls), steps.js and review.js (the steps).
//
// The steps share one context, wz: the state and what the steps need of
// the page (see steps.js and review.js for what each uses).

import { setLeaveGuard } from '../app.js';
import { h } from '../ui.js';
import {
  apiErrors, checkOfField, clientProblems, fieldChecks,
} from './wizard/checks.js';
import { showFieldError } from './wizard/controls.js';
import { review } from './wizard/review.js';
import {
  REVIEW, STEPS, blueprintRequest, missingChoices, newState, stateFromBlueprint, stepOf,
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

  // Create blueprint is the same wizard, titled for it; its last button
  // saves (and building is offered beside it).
  const mode = query?.get('mode') === 'blueprint' && !query?.get('blueprint') ? 'blueprint' : 'image';
  const header = h('div', { class: 'page-header' }, h('h1', { id: 'wz-title' }, mode === 'blueprint' ? 'Create blueprint' : 'Create image'));
  const stepper = h('ol', { class: 'stepper', 'aria-label': 'Steps' });
  const main = h('div', { class: 'wizard-main' });
  page.append(header, h('div', { class: 'wizard-layout' }, h('nav', { class: 'wizard-nav', 'aria-label': 'Wizard steps' }, stepper), main));

  const wz = {
    api,
    toast,
    state: newState(),
    mode, // 'image' (Create image) or 'blueprint' (Create blueprint)
    editing: null, // {id, version, name} when editing a stored blueprint
    serverErrors: [], // [{field, detail}] from the last request
    reviewErrors: [], // [{field, detail}] the API found rendering the blueprint for Review
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
    setReviewErrors,
    stepsWithErrors,
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

  // allErrors are the problems known now, each once: the API's answer to
  // the last request, its verdict on the blueprint Review rendered, and
  // what the wizard's own checks find in the state.
  function allErrors() {
    const seen = new Set();
    return [...wz.serverErrors, ...wz.reviewErrors, ...clientProblems(wz.state)].filter((e) => {
      const key = e.field + '\n' + e.detail;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  function errorsOf(stepIndex) {
    return allErrors().filter((e) => stepOf(e.field) === stepIndex);
  }

  // stepsWithErrors are the indexes of the steps that have problems.
  function stepsWithErrors() {
    return [...new Set(allErrors().map((e) => stepOf(e.field)))].sort((a, b) => a - b);
  }

  const within = (field, path) => field === path || field.startsWith(path + '.') || field.startsWith(path + '[');

  // dropErrors forgets the API's errors about a field once it is edited.
  function dropErrors(path) {
    const before = wz.serverErrors.length + wz.reviewErrors.length;
    wz.serverErrors = wz.serverErrors.filter((e) => !within(e.field, path));
    wz.reviewErrors = wz.reviewErrors.filter((e) => !within(e.field, path));
    if (wz.serverErrors.length + wz.reviewErrors.length !== before) renderStepper();
  }

  // forgetErrorsUnder forgets the API's errors about every field whose
  // path starts with prefix, when a row of a list is removed and the
  // indexes they name no longer fit.
  function forgetErrorsUnder(prefix) {
    wz.serverErrors = wz.serverErrors.filter((e) => !e.field.startsWith(prefix));
    wz.reviewErrors = wz.reviewErrors.filter((e) => !e.field.startsWith(prefix));
  }

  // setReviewErrors takes the problems the API found in the blueprint
  // Review rendered (none when it rendered), and marks their steps.
  function setReviewErrors(errors) {
    wz.reviewErrors = errors;
    renderStepper();
  }

  // messagesAt is what to say at a control: its own check's verdict on
  // its value, then the known problems it is the closest control of, each
  // message once.
  function messagesAt(control, problems) {
    const client = control.dataset.check ? fieldChecks[control.dataset.check](control.value) : '';
    return [...new Set([client, ...problems].filter(Boolean))].join(' ');
  }

  // watchChecks gives the controls of the fields the wizard checks by the
  // API's rules their check, run as the control is left; the API's other
  // verdicts on the field stay beside it.
  function watchChecks(form) {
    for (const c of form.querySelectorAll('input[data-field], textarea[data-field]')) {
      const check = c.dataset.check ? '' : checkOfField(c.dataset.field);
      if (!check) continue;
      c.dataset.check = check;
      c.addEventListener('blur', (e) => {
        if (!wz.alive) return;
        // Left for a button (Next, a step, Add): the message would move
        // the button under the pointer and the click would be lost; the
        // step is marked now, and the button's own action shows the rest.
        if (e.relatedTarget?.matches?.('button')) {
          renderStepper();
          return;
        }
        const path = c.dataset.field;
        const others = [...wz.serverErrors, ...wz.reviewErrors].filter((e) => within(e.field, path)).map((e) => e.detail);
        showFieldError(c, messagesAt(c, others));
        renderStepper();
      });
    }
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
      const server = [...new Set(byPath.get(c) || [])];
      if (!/^(INPUT|TEXTAREA|SELECT)$/.test(c.tagName)) {
        // A fieldset, or a chip: the message goes inside it.
        c.querySelector(':scope > .wizard-container-error')?.remove();
        c.classList.toggle('wizard-invalid', server.length > 0);
        if (server.length) c.append(h('p', { class: 'field-error wizard-container-error', role: 'alert' }, server.join(' ')));
        continue;
      }
      const msg = messagesAt(c, server);
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

  // renderStepper shows the steps: the current one, those that can be
  // gone back to, and which have problems. While the current step stays
  // the same only the marks change, in place: a click on a step is not
  // lost to a stepper rebuilt by the blur that came with it.
  let stepperShape = '';
  function renderStepper() {
    const marked = stepsWithErrors();
    const shape = `${step}/${visited}`;
    if (shape === stepperShape && stepper.children.length === STEPS.length) {
      [...stepper.children].forEach((li, i) => markStep(li, i, marked.includes(i)));
      return;
    }
    stepperShape = shape;
    stepper.replaceChildren(...STEPS.map((s, i) => {
      const label = [h('span', { class: 'stepper-title' }, s.title)];
      const li = h('li', {});
      if (i === step) {
        li.setAttribute('aria-current', 'step');
        li.append(h('span', { class: 'stepper-item' }, label));
      } else if (i <= visited) {
        li.append(h('button', { type: 'button', class: 'stepper-item', onclick: () => go(i) }, label));
      } else {
        li.append(h('span', { class: 'stepper-item', 'aria-disabled': 'true' }, label));
      }
      markStep(li, i, marked.includes(i));
      return li;
    }));
  }

  // markStep marks step i's entry as having problems or not; a step with
  // a problem is never shown as done.
  function markStep(li, i, errs) {
    li.classList.toggle('done', i < step && !errs);
    li.classList.toggle('has-error', errs);
    const item = li.querySelector('.stepper-item');
    const note = item.querySelector('.visually-hidden');
    if (errs && !note) item.append(h('span', { class: 'visually-hidden' }, ' (has errors)'));
    if (!errs && note) note.remove();
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
    watchChecks(form);
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

  // showProblems opens the first step with a problem, with every problem
  // at its control and every step with one marked.
  async function showProblems() {
    busy = false;
    const first = stepsWithErrors()[0] ?? REVIEW;
    visited = Math.max(visited, first);
    // No toast: it would cover the step's buttons. The step with the
    // first error opens, its fields say what is wrong (role=alert), and
    // the focus goes to the first of them.
    await go(first, { focus: 'error' });
  }

  // submit saves the blueprint ('save'), or saves it and builds what was
  // saved ('build'): a new blueprint is stored, an edited one gets a new
  // version, and the build is of that version, so that nothing built
  // from the wizard is lost. When saving fails, nothing is built.
  async function submit(kind) {
    if (busy) return;
    busy = true;
    main.querySelectorAll('.wizard-actions button').forEach((b) => { b.disabled = true; });
    main.querySelector('.wizard-actions')?.setAttribute('aria-busy', 'true');
    wz.serverErrors = [];
    const body = blueprintRequest(wz.state);
    let saved = false;
    try {
      if (clientProblems(wz.state).length) {
        // The wizard knows the API would refuse this: nothing is saved or
        // built, but the API's verdict on the rest of the blueprint is
        // asked for, so that every problem shows at once.
        try {
          await api.post('/blueprints/render', body);
        } catch (err) {
          if (err?.status === 401) return; // api.js sends the user to sign in
          wz.serverErrors = apiErrors(err);
        }
        if (wz.alive) await showProblems();
        return;
      }
      const { editing } = wz;
      const res = editing
        ? await api.put('/blueprints/' + encodeURIComponent(editing.id), body)
        : await api.post('/blueprints', body);
      saved = true;
      const id = res?.id || editing.id;
      savedKey = stateKey();
      if (kind === 'save') {
        toast(editing ? `Saved a new version of ${body.name}.` : `Saved blueprint ${body.name}.`, 'ok');
        navigate('#/blueprints/' + id);
        return;
      }
      // Build the version just saved, by its number.
      const stored = await api.get('/blueprints/' + encodeURIComponent(id));
      wz.editing = { id, version: stored.version, name: stored.name };
      const composes = await api.post(`/blueprints/${encodeURIComponent(id)}/compose`, { version: stored.version });
      const ids = Array.isArray(composes) ? composes.map((c) => c.id) : [];
      toast(`Saved ${stored.name} version ${stored.version}; ${ids.length === 1 ? 'its build started' : `${ids.length} builds started`}.`, 'ok');
      navigate(ids.length === 1 ? '#/composes/' + ids[0] : '#/');
    } catch (err) {
      if (!wz.alive) return;
      if (err?.status === 401) return; // api.js sends the user to sign in
      if (saved) toast('The blueprint is saved, but its build was refused; the steps marked say why.', 'error');
      wz.serverErrors = apiErrors(err);
      await showProblems();
    } finally {
      busy = false;
    }
  }

  // ---- unsaved changes

  // stateKey is the blueprint the state makes, to tell whether it changed.
  const stateKey = () => JSON.stringify(blueprintRequest(wz.state));
  // savedKey is the state when the wizard opened or last saved; null
  // until the first step is shown (which may choose what has one choice).
  let savedKey = null;
  const dropGuard = setLeaveGuard(() => {
    if (savedKey === null || stateKey() === savedKey) return '';
    return wz.editing
      ? `Your changes to ${wz.editing.name} are not saved and will be lost. Save a new version first to keep them.`
      : 'What you entered in the wizard is not saved and will be lost. Save the blueprint first to keep it.';
  });

  renderStepper();
  await renderStep(null);
  savedKey = stateKey();
  if (!wz.editing) main.querySelector('input')?.focus();

  return () => {
    wz.alive = false;
    dropGuard();
    for (const t of timers) clearTimeout(t);
  };
}
