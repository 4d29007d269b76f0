// The wizard's sections for where software comes from beyond the
// distribution: custom apt repositories (customizations.custom_repositories)
// and first-boot scripts (customizations.firstboot, a kiln extension).
// Each is a list of rows built like the other list sections (users,
// files): one fieldset per row with its fields at their request paths,
// a Remove button per row and an Add button under the list.
//
// Of the wizard's context wz (see pages/wizard.js) a section uses: state
// (its repositories and firstboot lists, see state.js); dropErrors(path)
// and forgetErrorsUnder(prefix) for the server's verdicts on what was
// edited or removed; rerender(id) to rebuild the step with the focus on
// the element id; and what controls.js needs.
//
// The checks below explain a problem as it is typed; like checks.js's,
// they never stop a request: the API stays the judge.

import { h } from '../../ui.js';
import { field, input, showFieldError } from './controls.js';
import {
  newRepository, newScript, splitKeys, words,
} from './state.js';

// ------------------------------------------------------------ the checks

const REPO_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const SUITE = /^[A-Za-z0-9._/-]+$/;
const COMPONENT = /^[a-z0-9][a-z0-9-]*$/;
const SCRIPT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const URL_EXAMPLE = 'e.g. https://deb.example.org/debian';

/** checkRepoID explains what is wrong with a repository id, or ''. */
export function checkRepoID(v) {
  const id = v.trim();
  if (!id) return 'Required: a short id for the repository, such as vendor or backports.';
  if (id.length > 100 || !REPO_ID.test(id)) return `"${id}" is not a repository id: use letters, digits, _, . and -, starting with a letter, digit or _.`;
  return '';
}

/** checkRepoURL explains why u cannot be a repository's (or, with only https, a key's) URL, or ''. */
export function checkRepoURL(u, schemes = ['http', 'https', 'file']) {
  // Read as apt reads it: the browser's URL parser forgives what apt
  // does not (spaces, backslashes, "https:///x" taken as host x).
  if (/[\s"'<>\\`\u0000-\u001f\u007f]/.test(u)) return `"${u}" contains spaces, quotes or control characters; percent-encode them.`;
  let url;
  try {
    url = new URL(u);
  } catch {
    return `"${u}" is not a URL; give an absolute ${schemes.join(', ')} URL, ${URL_EXAMPLE}.`;
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (!schemes.includes(scheme)) return `"${u}" does not use one of the schemes ${schemes.join(', ')}; ${URL_EXAMPLE}.`;
  if (url.username || url.password) return `"${u}" holds credentials, which would be written into the image's apt sources; leave them out.`;
  if (scheme !== 'file' && (!url.hostname || !/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]/.test(u))) return `"${u}" has no host; ${URL_EXAMPLE}.`;
  if (scheme === 'file' && !/^file:(\/\/\/|\/(?!\/))/i.test(u)) return `"${u}" is not a local path; write file:///absolute/path.`;
  return '';
}

/** checkBaseURLs explains what is wrong with the base URLs typed, or ''. */
export function checkBaseURLs(v) {
  const urls = words(v);
  if (!urls.length) return `Required: the repository's URL, ${URL_EXAMPLE}.`;
  for (const u of urls) {
    const msg = checkRepoURL(u);
    if (msg) return msg;
  }
  return '';
}

/** checkGPGKeys explains what is wrong with the keys typed, or ''. */
export function checkGPGKeys(v) {
  for (const k of splitKeys(v)) {
    if (k.includes('PRIVATE KEY')) return 'This is a private key. Give the public key (gpg --export --armor KEYID), and treat the private key as leaked.';
    if (k.startsWith('-----BEGIN')) {
      if (!/^-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*-----END PGP PUBLIC KEY BLOCK-----$/.test(k)) return 'A key block must run from -----BEGIN PGP PUBLIC KEY BLOCK----- to -----END PGP PUBLIC KEY BLOCK-----.';
    } else if (/^http:\/\//i.test(k)) {
      return `"${k}" is a plain http URL: a key fetched without TLS can be replaced on the way. Give its https URL or paste the armored key.`;
    } else {
      const msg = checkRepoURL(k, ['https']);
      if (msg) return `${msg} Or paste the armored key.`;
    }
  }
  return '';
}

/** checkSuite explains what is wrong with a suite, or ''. */
export const checkSuite = (v) => (v.trim() && !SUITE.test(v.trim()) ? `"${v.trim()}" is not a suite: use letters, digits, ., _, - and /, such as bookworm-backports, or ./ for a flat repository.` : '');

/** checkComponents explains what is wrong with the components typed, or ''. */
export function checkComponents(v) {
  const bad = words(v).find((c) => !COMPONENT.test(c));
  return bad ? `"${bad}" is not a component: use lowercase letters, digits and -, such as main or contrib.` : '';
}

/** checkPriority explains what is wrong with an apt pin priority, or ''. */
export function checkPriority(v) {
  const p = v.trim();
  if (!p) return '';
  if (!/^-?[0-9]+$/.test(p) || Number(p) < -32768 || Number(p) > 32767) return 'A whole number from -32768 to 32767 (500 is apt’s default).';
  return '';
}

/** checkScriptName explains what is wrong with a first-boot script's name, or ''. */
export const checkScriptName = (v) => (v.trim() && (v.trim().length > 64 || !SCRIPT_NAME.test(v.trim()))
  ? `"${v.trim()}" is not a script name: use up to 64 letters, digits, - and _, starting with a letter or digit.` : '');

/** checkScript explains what is wrong with a first-boot script's contents, or ''. */
export const checkScript = (v) => (v.trim() ? '' : 'Required: the script, such as "#!/bin/sh" and the commands to run.');

// checkedField is controls.js's field() whose control shows check's
// verdict on each edit: its handler runs after field()'s own, which
// drops the server's verdict and clears the error line.
function checkedField(wz, label, control, check, opts) {
  const f = field(wz, label, control, opts);
  control.addEventListener('input', () => showFieldError(control, check(control.value)));
  return f;
}

// checkbox is a checkbox with its label and error line, at request path.
function checkbox(wz, id, label, value, onChange, path) {
  const box = h('input', { type: 'checkbox', id, checked: value, onchange: (e) => { onChange(e.target.checked); wz.dropErrors(path); } });
  box.dataset.field = path;
  return h('div', { class: 'field wizard-check' }, box, h('label', { for: id }, label),
    h('p', { class: 'field-error', role: 'alert', id: id + '-error', hidden: true }));
}

// removeButton removes row i of list (its request path prefix) and
// rebuilds the step with the focus on the Add button.
function removeButton(wz, list, i, prefix, addId, text) {
  return h('div', { class: 'wizard-row-actions' }, h('button', { type: 'button', class: 'btn btn-small', onclick: () => {
    list.splice(i, 1);
    wz.forgetErrorsUnder(prefix);
    wz.rerender(addId);
  } }, text));
}

// ------------------------------------------------------- the repositories

/**
 * repositoriesSection appends to body the custom repositories of
 * wz.state: each with its id, name, base URLs, suite, components, GPG
 * keys, whether signatures are checked, whether it is enabled and used
 * while building, its apt pin priority and its file name.
 */
export function repositoriesSection(wz, body) {
  const { state } = wz;
  const at = 'customizations.custom_repositories';
  body.append(h('h3', { class: 'wizard-section-title', id: 'wz-repos-title' }, 'Repositories'),
    h('p', { class: 'hint' }, 'Extra apt repositories, written into the image’s apt sources. To install packages from one into the image, tick “Install from it while building”; it must then be signed.'));
  const rows = h('div', { class: 'wizard-list', 'data-field': at });
  body.append(rows);
  state.repositories.forEach((r, i) => {
    const p = `${at}[${i}]`;
    const prefix = `wz-repo-${i}`;
    const n = i + 1;
    const text = (name, value, onInput, attrs) => input(value, onInput, { id: `${prefix}-${name}`, autocomplete: 'off', spellcheck: 'false', ...attrs });
    const keys = h('textarea', { id: `${prefix}-gpgkey`, rows: '3', spellcheck: 'false', placeholder: 'https://deb.example.org/key.asc', oninput: (e) => { r.gpgkeys = e.target.value; } });
    keys.value = r.gpgkeys;
    const priority = h('input', { type: 'number', id: `${prefix}-priority`, step: '1', min: '-32768', max: '32767', inputmode: 'numeric', value: r.priority, oninput: (e) => { r.priority = e.target.value; } });
    const idInput = text('id', r.id, (v) => { r.id = v; }, { placeholder: 'vendor', required: true });
    const urlInput = text('baseurl', r.baseurls, (v) => { r.baseurls = v; }, { inputmode: 'url', placeholder: 'https://deb.example.org/debian', required: true });
    const suite = text('suite', r.suite, (v) => { r.suite = v; }, { placeholder: 'bookworm-backports' });
    const components = text('components', r.components, (v) => { r.components = v; }, { placeholder: 'main contrib' });
    rows.append(h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', {}, `Repository ${n}${r.id.trim() ? ': ' + r.id.trim() : ''}`),
      h('div', { class: 'wizard-grid' },
        checkedField(wz, 'Repository ID', idInput, checkRepoID, { path: `${p}.id`, hint: 'Required: letters, digits, _, . and -, e.g. vendor.' }),
        field(wz, 'Repository name', text('name', r.name, (v) => { r.name = v; }, { placeholder: 'Vendor packages' }), { path: `${p}.name`, hint: 'Optional: what the repository is, in words.' })),
      checkedField(wz, 'Base URLs', urlInput, checkBaseURLs, { path: `${p}.baseurl`, wide: true, hint: 'Required: the archive root (the directory that holds dists/), e.g. https://deb.example.org/debian; several separated by spaces.' }),
      h('div', { class: 'wizard-grid' },
        checkedField(wz, 'Suite', suite, checkSuite, { path: `${p}.suite`, hint: 'Empty: the distribution’s own (its codename, e.g. bookworm). ./ for a flat repository.' }),
        checkedField(wz, 'Components', components, checkComponents, { path: `${p}.components`, hint: 'Separated by spaces; empty: main.' })),
      checkedField(wz, 'GPG keys', keys, checkGPGKeys, { path: `${p}.gpgkey`, wide: true, hint: 'The repository’s signing keys: ASCII-armored public keys (gpg --export --armor KEYID) or https URLs to them, one URL a line.' }),
      h('div', { class: 'wizard-grid' },
        checkbox(wz, `${prefix}-check_gpg`, 'Check package signatures', r.check_gpg, (v) => { r.check_gpg = v; }, `${p}.check_gpg`),
        checkbox(wz, `${prefix}-enabled`, 'Enabled in the image', r.enabled, (v) => { r.enabled = v; }, `${p}.enabled`),
        checkbox(wz, `${prefix}-install_from`, 'Install from it while building', r.install_from, (v) => { r.install_from = v; }, `${p}.install_from`)),
      h('div', { class: 'wizard-grid' },
        checkedField(wz, 'Pin priority', priority, checkPriority, { path: `${p}.priority`, hint: 'Optional: apt’s pin priority for its packages; empty: 500, apt’s default.' }),
        field(wz, 'File name', text('filename', r.filename, (v) => { r.filename = v; }, { placeholder: 'vendor.sources' }), { path: `${p}.filename`, hint: 'Optional: its file in /etc/apt/sources.list.d; empty: the id.' })),
      removeButton(wz, state.repositories, i, at, 'wz-add-repo', `Remove repository ${n}`)));
  });
  if (!state.repositories.length) body.append(h('p', { class: 'empty-state' }, 'No extra repositories: packages come from the distribution’s own.'));
  body.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-repo', onclick: () => {
    state.repositories.push(newRepository());
    wz.rerender(`wz-repo-${state.repositories.length - 1}-id`);
  } }, 'Add repository'));
}

// ---------------------------------------------------- the first-boot scripts

/**
 * firstbootSection appends to body the first-boot scripts of wz.state:
 * each with its name, its contents and whether a failure lets the later
 * scripts run.
 */
export function firstbootSection(wz, body) {
  const { state } = wz;
  const at = 'customizations.firstboot';
  body.append(h('h3', { class: 'wizard-section-title', id: 'wz-firstboot-title' }, 'First-boot scripts'),
    h('p', { class: 'hint' }, 'Scripts that run once, in this order, at the first boot of the installed system, as root, each from its own systemd unit. Only bootable image types have a first boot.'));
  const rows = h('div', { class: 'wizard-list', 'data-field': at });
  body.append(rows);
  state.firstboot.forEach((s, i) => {
    const p = `${at}.scripts[${i}]`;
    const prefix = `wz-script-${i}`;
    const n = i + 1;
    const name = input(s.name, (v) => { s.name = v; }, { id: `${prefix}-name`, autocomplete: 'off', spellcheck: 'false', placeholder: `script-${n}` });
    const contents = h('textarea', { id: `${prefix}-contents`, rows: '8', spellcheck: 'false', placeholder: '#!/bin/sh\necho "first boot of $(hostname)"', oninput: (e) => { s.contents = e.target.value; } });
    contents.value = s.contents;
    rows.append(h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', {}, `First-boot script ${n}${s.name.trim() ? ': ' + s.name.trim() : ''}`),
      checkedField(wz, 'Script name', name, checkScriptName, { path: `${p}.name`, hint: `Optional: letters, digits, - and _; it names the unit kiln-firstboot-NAME.service. Empty: script-${n}.` }),
      checkedField(wz, 'Script', contents, checkScript, { path: `${p}.contents`, wide: true, hint: 'Run by the interpreter its #! line names, else by /bin/sh.' }),
      checkbox(wz, `${prefix}-ignore_failure`, 'If it fails, run the later scripts anyway', s.ignore_failure, (v) => { s.ignore_failure = v; }, `${p}.ignore_failure`),
      removeButton(wz, state.firstboot, i, at, 'wz-add-script', `Remove first-boot script ${n}`)));
  });
  if (!state.firstboot.length) body.append(h('p', { class: 'empty-state' }, 'No first-boot scripts.'));
  body.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-script', onclick: () => {
    state.firstboot.push(newScript());
    wz.rerender(`wz-script-${state.firstboot.length - 1}-contents`);
  } }, 'Add first-boot script'));
}
