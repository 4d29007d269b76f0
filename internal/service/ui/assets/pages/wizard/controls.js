// The wizard's form controls, built with ui.js's h() and field(): a
// field's error line, text inputs, removable chips, a list input that
// adds chips, a combobox with suggestions and choice cards.
//
// The controls that react to edits take the wizard's context (see
// pages/wizard.js): wz.dropErrors(path) forgets the server's verdict on a
// field once it is edited, wz.alive is false once the user left the page,
// and wz.later(fn, ms) runs fn after ms unless the user left.

import { h, field as uiField, id as uniqueId } from '../../ui.js';
import { apiErrors, fieldChecks } from './checks.js';

/**
 * showFieldError shows msg at a control wrapped by field() and marks the
 * control invalid; '' clears both.
 */
export function showFieldError(control, msg) {
  const wrap = control.closest('.field') || control.parentElement;
  const err = wrap.querySelector(':scope > .field-error');
  if (!err) return;
  err.textContent = msg;
  err.hidden = !msg;
  const hint = wrap.querySelector(':scope > .hint');
  const ids = [hint?.id, msg ? err.id : null].filter(Boolean).join(' ');
  if (ids) control.setAttribute('aria-describedby', ids); else control.removeAttribute('aria-describedby');
  if (msg) control.setAttribute('aria-invalid', 'true'); else control.removeAttribute('aria-invalid');
}

/**
 * field wraps a control with its label, hint and error line (ui.js's
 * field, the style.css .field block). path is the request field it edits;
 * check names the fieldChecks rule it runs as it is typed into; wide lets
 * it span the grid.
 */
export function field(wz, label, control, { hint, path, check, wide } = {}) {
  if (!control.id) control.id = uniqueId('wz-f');
  if (check) control.dataset.check = check;
  // Once edited, the server's verdict on the old value is gone; the
  // client-side check (if any) speaks for the new one.
  control.addEventListener('input', () => {
    if (path) wz.dropErrors(path);
    if (control.dataset.enter !== 'local') showFieldError(control, check ? fieldChecks[check](control.value) : '');
  });
  const f = uiField(label, control, { hint, name: path });
  if (wide) f.classList.add('field-wide');
  return f;
}

/** input is a text input showing value that calls onInput with each edit. */
export function input(value, onInput, attrs = {}) {
  return h('input', { type: 'text', value, ...attrs, oninput: (e) => onInput(e.target.value) });
}

/**
 * chips shows a list of values as removable chips; onRemove(i) is called
 * with the index of the chip whose button was pressed, and pathOf(i), if
 * given, names the request field of each chip (for the API's errors).
 */
export function chips(list, label, onRemove, pathOf) {
  const ul = h('ul', { class: 'chips', 'aria-label': label });
  list.forEach((v, i) => {
    const btn = h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${v}` }, '×');
    btn.addEventListener('click', () => onRemove(i));
    const li = h('li', { class: 'chip' }, h('span', {}, v), btn);
    if (pathOf) li.dataset.field = pathOf(i);
    ul.append(li);
  });
  return ul;
}

/**
 * chipList is a text input that adds what is typed to `list` on Enter or
 * with its Add button, and the chips of what is in the list. validate, if
 * given, explains why a value cannot be added; rerender(id) rebuilds the
 * step with the focus on the element id. Removing a chip moves the focus
 * to the next chip's button, or to the input when none is left.
 */
export function chipList(wz, { label, list, path, hint, placeholder, validate, rerender, inputId }) {
  const inputID = inputId || uniqueId('wz-chip');
  const control = h('input', { type: 'text', id: inputID, placeholder, autocomplete: 'off', 'data-enter': 'local' });
  const add = () => {
    const values = control.value.split(/[\s,]+/).map((v) => v.trim()).filter(Boolean);
    if (!values.length) return;
    for (const v of values) {
      const msg = validate ? validate(v) : '';
      if (msg) { showFieldError(control, msg); return; }
    }
    for (const v of values) if (!list.includes(v)) list.push(v);
    wz.dropErrors(path);
    rerender(inputID);
  };
  control.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); add(); } });
  control.addEventListener('input', () => showFieldError(control, ''));
  const f = field(wz, label, control, { hint, path });
  f.querySelector('label').after(h('div', { class: 'wizard-inline' }, control,
    h('button', { type: 'button', class: 'btn', 'aria-label': `Add to ${label}`, onclick: add }, 'Add')));
  const chipUl = chips(list, label, (i) => {
    list.splice(i, 1);
    wz.dropErrors(path);
    rerender(list.length ? `${inputID}-chip-${Math.min(i, list.length - 1)}` : inputID);
  }, (i) => `${path}[${i}]`);
  chipUl.querySelectorAll('button').forEach((b, i) => { b.id = `${inputID}-chip-${i}`; });
  f.append(chipUl);
  return f;
}

/**
 * combobox makes control a text input with a listbox of suggestions,
 * operated with the arrow keys, Enter and Escape (the WAI-ARIA combobox
 * pattern). fetch(term) finds the suggestions (an array, with .total when
 * there are more than it holds), renderOption(item, term) shows one, and
 * onChoose(item) takes the one chosen. It returns the listbox, the
 * status line and place(fieldEl), which puts both into the field that
 * wraps control: the listbox right under the input, never over it.
 */
export function combobox(wz, { control, fetch, onChoose, renderOption, debounceMs = 0 }) {
  const listId = control.id + '-list';
  const list = h('ul', { class: 'wizard-listbox', role: 'listbox', id: listId, hidden: true, 'aria-label': 'Suggestions' });
  const status = h('p', { class: 'hint wizard-search-status', 'aria-live': 'polite' });
  control.setAttribute('role', 'combobox');
  control.setAttribute('aria-autocomplete', 'list');
  control.setAttribute('aria-expanded', 'false');
  control.setAttribute('aria-controls', listId);
  control.setAttribute('autocomplete', 'off');
  control.dataset.enter = 'local';
  let items = [];
  let active = -1;
  let timer = null;
  let seq = 0;
  const close = () => {
    list.hidden = true;
    control.setAttribute('aria-expanded', 'false');
    control.removeAttribute('aria-activedescendant');
    active = -1;
  };
  const highlight = (i) => {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute('aria-selected', j === i ? 'true' : 'false'));
    if (i >= 0 && list.children[i]) {
      control.setAttribute('aria-activedescendant', list.children[i].id);
      list.children[i].scrollIntoView({ block: 'nearest' });
    } else control.removeAttribute('aria-activedescendant');
  };
  const choose = (i) => {
    const item = items[i];
    if (item === undefined) return;
    close();
    onChoose(item);
  };
  const show = (found, term) => {
    items = found;
    list.replaceChildren(...found.map((it, i) => {
      const li = h('li', { role: 'option', id: `${listId}-${i}`, 'aria-selected': 'false', class: 'wizard-option' }, renderOption(it, term));
      li.addEventListener('mousedown', (e) => { e.preventDefault(); choose(i); });
      return li;
    }));
    if (found.length) {
      list.hidden = false;
      control.setAttribute('aria-expanded', 'true');
      highlight(0);
    } else close();
  };
  const run = async () => {
    const term = control.value.trim();
    const mine = ++seq;
    if (!term) { show([], term); status.textContent = ''; return; }
    try {
      status.textContent = 'Searching…';
      const found = await fetch(term);
      if (mine !== seq || !wz.alive) return;
      show(found, term);
      const total = found.total ?? found.length;
      status.textContent = !found.length ? `Nothing matches "${term}".`
        : `${total > found.length ? `${found.length} of ${total} matches shown; type more of the name to narrow them.` : `${found.length} match${found.length === 1 ? '' : 'es'}.`} Use the arrow keys and Enter to choose.`;
    } catch (err) {
      if (mine !== seq) return;
      show([], term);
      status.textContent = 'Search failed: ' + apiErrors(err).map((e) => e.detail).join('; ');
    }
  };
  control.addEventListener('input', () => {
    clearTimeout(timer);
    timer = debounceMs ? wz.later(run, debounceMs) : (run(), null);
  });
  control.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      if (list.hidden && items.length) { list.hidden = false; control.setAttribute('aria-expanded', 'true'); }
      highlight(Math.min(active + 1, items.length - 1));
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      highlight(Math.max(active - 1, 0));
    } else if (e.key === 'Enter') {
      // Enter picks a suggestion; it never submits the step's form.
      e.preventDefault();
      if (!list.hidden && active >= 0) choose(active);
    } else if (e.key === 'Escape') {
      if (!list.hidden) { e.preventDefault(); close(); }
    }
  });
  control.addEventListener('blur', () => close());
  // The listbox floats over what follows the input, so it is positioned
  // against a box of the input's own size (.wizard-combo): placed against
  // the whole field, it would start at the field's top and cover the
  // label and the input being typed into.
  const place = (fieldEl) => {
    const anchor = h('div', { class: 'wizard-combo' });
    control.replaceWith(anchor);
    anchor.append(control, list);
    fieldEl.append(status);
  };
  return { list, status, close, place };
}

/**
 * choiceId is the id of the choice card of value among the choices
 * named name: the same each time the step is drawn, so that the focus
 * can return to it.
 */
export function choiceId(name, value) {
  return `wz-${name}-${String(value)}`.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/**
 * radioCards is a fieldset of choice cards, radio buttons (or checkboxes
 * for options with multi) named name: each option has a value, a title
 * that labels it, and optionally a badge, text and extra that describe
 * it. onPick(value, checked) is called on each change; path is the
 * request field the choice is about.
 */
export function radioCards(name, options, current, onPick, label, path = name) {
  const fs = h('fieldset', { class: 'wizard-choices', 'data-field': path });
  fs.append(h('legend', { class: 'visually-hidden' }, label));
  for (const o of options) {
    const id = choiceId(name, o.value);
    const descId = id + '-desc';
    const hasDesc = o.text || o.extra || o.badge;
    fs.append(h('div', { class: 'wizard-choice' },
      h('input', { type: o.multi ? 'checkbox' : 'radio', name, id, value: o.value, checked: o.checked ?? o.value === current,
        'aria-describedby': hasDesc ? descId : undefined, onchange: (e) => onPick(o.value, e.target.checked) }),
      h('label', { for: id }, o.title),
      hasDesc ? h('div', { class: 'wizard-choice-desc', id: descId },
        o.badge || null,
        o.text ? h('span', { class: 'wizard-choice-text' }, o.text) : null,
        o.extra ? h('span', { class: 'wizard-choice-text hint' }, o.extra) : null) : null));
  }
  return fs;
}
