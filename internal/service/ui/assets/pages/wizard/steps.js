// The wizard's steps, but for the review (pages/wizard/review.js): one
// renderer per step, by the step's id in STEPS. A renderer fills the
// step's body from the wizard's state and writes what the user changes
// back into it; it never keeps anything of its own, since the step is
// rebuilt from the state whenever it is shown.
//
// A step is a column of sections, one per topic, each a <section> with an
// h3 (see section()): Image output asks for the name, then the
// distribution, architecture, image types and target; Content for the
// packages; System for users, hostname, time and locale, kernel,
// services, firewall, filesystems, files and directories. A choice that
// other sections depend on (the distribution, the architecture, the
// image types) rebuilds the step, so what follows it always fits it. A
// question with a single answer is shown as a fact (fact()), not asked.
//
// Each renderer takes the wizard's context wz (see pages/wizard.js) and
// the step's body element. Of wz it uses: state; api; cache (the
// distributions, and each one's details once fetched) and
// distributionDetail(name); dropErrors(path) and forgetErrorsUnder(prefix)
// for the server's verdicts on what was edited or removed; rerender(id)
// to rebuild the step with the focus on the element id; toml (the review's
// rendering, made stale by a change of distribution); main (the wizard's
// step area); and what controls.js needs.

import { TARGETS, targetTitle } from '../../targets.js';
import { h } from '../../ui.js';
import {
  apiErrors, checkAWSAccount, checkFirewallPort, checkGCPMember,
} from './checks.js';
import {
  chipList, chips, choiceId, combobox, field, input, radioCards,
} from './controls.js';
import { firstbootSection, repositoriesSection } from './sources.js';
import { DEFAULT_TARGET, SIZE_UNITS, uploadOf } from './state.js';

// ARCH_LABELS say what each architecture is, for people who know the
// processor rather than its name.
const ARCH_LABELS = { x86_64: '64-bit x86 (Intel, AMD)', aarch64: '64-bit ARM' };

/** steps renders each step but the review, by the step's id. */
export const steps = {
  async output(wz, body) {
    body.append(nameSection(wz));
    body.append(await distributionSection(wz));
    body.append(await architectureSection(wz));
    if (!wz.alive) return;
    body.append(await typesSection(wz));
    if (!wz.alive) return;
    body.append(await targetSection(wz));
  },

  async content(wz, body) {
    body.append(packagesSection(wz), sourceSection(wz, 'repositories', 'wz-repos-title', repositoriesSection));
  },

  async system(wz, body) {
    body.append(usersSection(wz), hostnameSection(wz), timeLocaleSection(wz), kernelSection(wz),
      servicesSection(wz), firewallSection(wz), filesystemsSection(wz), filesSection(wz),
      sourceSection(wz, 'firstboot', 'wz-firstboot-title', firstbootSection));
  },
};

// sourceSection is a section that sources.js fills, heading included.
function sourceSection(wz, id, headingId, fill) {
  const s = h('section', { class: 'wizard-section', id: `wz-section-${id}`, 'aria-labelledby': headingId });
  fill(wz, s);
  return s;
}

/**
 * section is one topic of a step: a <section> named by its h3 (title),
 * with an optional hint under the heading; id names it, so a summary or
 * an error can lead to it.
 */
export function section(id, title, hint) {
  const headingId = `wz-section-${id}-title`;
  const s = h('section', { class: 'wizard-section', id: `wz-section-${id}`, 'aria-labelledby': headingId },
    h('h3', { class: 'wizard-section-title', id: headingId }, title));
  if (hint) s.append(h('p', { class: 'hint' }, hint));
  return s;
}

/**
 * fact shows the only answer a question has, instead of asking it: the
 * value, what it means, and why there is no choice. path is the request
 * field it is about, for the API's errors.
 */
export function fact(value, text, why, path) {
  return h('div', { class: 'wizard-fact', 'data-field': path },
    h('p', { class: 'wizard-fact-value' }, h('strong', {}, value), text ? ` — ${text}` : ''),
    why ? h('p', { class: 'hint' }, why) : null);
}

// ---------------------------------------------------------- Image output

function nameSection(wz) {
  const { state } = wz;
  const s = section('name', 'Name');
  const name = input(state.name, (v) => { state.name = v; }, { id: 'wz-name', autocomplete: 'off', spellcheck: 'false', placeholder: 'web-server', required: true });
  const desc = h('textarea', { id: 'wz-description', rows: '2', oninput: (e) => { state.description = e.target.value; } });
  desc.value = state.description;
  s.append(h('div', { class: 'wizard-grid' },
    field(wz, 'Name', name, { path: 'name', hint: 'Names the blueprint and the image: letters, digits, -, _ and ., e.g. web-server.' }),
    field(wz, 'Description', desc, { path: 'description', hint: 'Optional.' })));
  return s;
}

async function distributionSection(wz) {
  const { state } = wz;
  const s = section('distribution', 'Distribution', 'The operating system the image is built from.');
  const choices = wz.cache.distributions.map((d) => ({ value: d.name, title: d.name, text: d.description }));
  if (choices.length === 1 && !state.distribution) await chooseDistribution(wz, choices[0].value);
  if (choices.length === 1) {
    s.append(fact(choices[0].title, choices[0].text, 'The only distribution this server builds.', 'distribution'));
    return s;
  }
  s.append(radioCards('distribution', choices, state.distribution, async (v) => {
    if (v === state.distribution) return;
    await chooseDistribution(wz, v);
    wz.rerender(choiceId('distribution', v));
  }, 'Distribution'));
  return s;
}

// chooseDistribution makes v the distribution, and forgets the
// architecture and image types it does not have.
async function chooseDistribution(wz, v) {
  const { state } = wz;
  state.distribution = v;
  wz.dropErrors('distribution');
  await wz.distributionDetail(v).catch(() => {});
  const d = wz.cache.detail[v];
  if (d && !d.architectures.includes(state.architecture)) state.architecture = '';
  if (d) state.imageTypes = state.imageTypes.filter((t) => d.image_types.some((it) => it.name === t));
  wz.toml.key = '';
}

async function architectureSection(wz) {
  const { state } = wz;
  const s = section('architecture', 'Architecture');
  if (!state.distribution) {
    s.append(h('p', { class: 'hint' }, 'Choose a distribution first; its architectures are offered here.'));
    return s;
  }
  const d = await wz.distributionDetail(state.distribution);
  if (!state.architecture && d.architectures.length === 1) state.architecture = d.architectures[0];
  const path = 'image_requests[0].architecture';
  if (d.architectures.length === 1) {
    const a = d.architectures[0];
    s.append(fact(a, ARCH_LABELS[a] || '', `${d.name} images are built for ${a} only.`, path));
    return s;
  }
  s.append(h('p', { class: 'hint' }, `The processor architecture ${d.name} images are built for.`));
  s.append(radioCards('architecture', d.architectures.map((a) => ({ value: a, title: a, text: ARCH_LABELS[a] || '' })), state.architecture, (v) => {
    state.architecture = v;
    state.imageTypes = state.imageTypes.filter((t) => d.image_types.some((it) => it.name === t && it.architectures.includes(v)));
    wz.dropErrors('image_requests');
    wz.rerender(choiceId('architecture', v));
  }, 'Architecture', path));
  return s;
}

async function typesSection(wz) {
  const { state } = wz;
  const s = section('types', 'Image types');
  if (!state.distribution || !state.architecture) {
    s.append(h('p', { class: 'hint' }, 'Choose a distribution and an architecture first; their image types are offered here.'));
    return s;
  }
  const d = await wz.distributionDetail(state.distribution);
  const types = d.image_types.filter((t) => t.architectures.includes(state.architecture));
  s.append(h('p', { class: 'hint' }, 'Choose one or more image types; each is built as its own image from the same content.'));
  const fname = (t) => t.filename.replace('<name>', state.name.trim() || 'image').replace(/x86_64|aarch64/, state.architecture);
  // Which of the server's targets take each type (the Target section
  // offers those); without the list, nothing is said.
  const targets = await uploadTypes(wz, state.distribution, state.architecture).catch(() => null);
  const goesTo = (t) => (targets ? ` · Targets: ${targets.filter((x) => takes(x, t.name)).map((x) => targetTitle(x.type)).join(', ')}` : '');
  s.append(radioCards('image_requests', types.map((t) => ({
    multi: true, value: t.name, checked: state.imageTypes.includes(t.name),
    title: t.name + (t.aliases?.length ? ` (${t.aliases.join(', ')})` : ''),
    badge: h('span', { class: 'badge' }, t.bootable ? 'Bootable' : 'Not bootable'),
    text: t.description, extra: `File: ${fname(t)}${goesTo(t)}`,
  })), null, (v, on) => {
    state.imageTypes = on ? [...new Set([...state.imageTypes, v])] : state.imageTypes.filter((t) => t !== v);
    state.imageTypes.sort((a, b) => types.findIndex((t) => t.name === a) - types.findIndex((t) => t.name === b));
    wz.dropErrors('image_requests');
    wz.rerender(choiceId('image_requests', v));
  }, 'Image types'));
  return s;
}

async function targetSection(wz) {
  const { state } = wz;
  const s = section('target', 'Target');
  if (!state.imageTypes.length) {
    s.append(h('p', { class: 'hint' }, 'Choose an image type first; where each image goes is chosen here.'));
    return s;
  }
  let offered;
  let problem = '';
  try {
    offered = await uploadTypes(wz, state.distribution, state.architecture);
  } catch (err) {
    // The request says what the server refuses; the download link is
    // always there.
    offered = [{ type: DEFAULT_TARGET }];
    problem = apiErrors(err).map((e) => e.detail).join('; ');
  }
  s.append(h('p', { class: 'hint' }, 'Where each image goes once it is built. This server delivers to: ',
    offered.map((t) => targetTitle(t.type)).join(', '), '. Credentials for the clouds are the service’s own: the image is made in its account and shared with the accounts you name.'));
  if (problem) s.append(h('p', { class: 'alert alert-error', role: 'alert' }, `Could not load the targets this server delivers to (${problem}); only the download link is offered.`));
  state.imageTypes.forEach((type, i) => s.append(imageTarget(wz, offered, type, i)));
  return s;
}

// --------------------------------------------------------------- Content

function packagesSection(wz) {
  const { state } = wz;
  const s = section('packages', 'Packages', `Packages to install on top of the image type’s own, from the ${state.distribution} repositories for ${state.architecture}.`);
  const control = h('input', { type: 'search', id: 'wz-package-search', placeholder: 'Type part of a package name' });
  const f = field(wz, 'Search packages', control, { path: 'customizations.packages', hint: 'Results appear as you type; choose one with the arrow keys and Enter, or click it.' });
  const cb = combobox(wz, {
    control, debounceMs: 250,
    fetch: async (term) => {
      // The API lists matches by name; the closest ones come first here:
      // the exact name, then names starting with the term, then the rest.
      const res = await wz.api.get('/packages', { query: { distribution: state.distribution, architecture: state.architecture, search: term, limit: '100' } });
      const t = term.toLowerCase();
      const rank = (p) => (p.name === t ? 0 : p.name.startsWith(t) ? 1 : 2);
      const found = (res.data || []).map((p, i) => [rank(p), i, p]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]).slice(0, 50);
      found.total = res.meta?.count ?? found.length;
      return found;
    },
    renderOption: (p) => [h('span', { class: 'wizard-option-name' }, p.name), state.packages.includes(p.name) ? h('span', { class: 'badge' }, 'Added') : null,
      h('span', { class: 'wizard-option-text' }, [p.version, p.summary].filter(Boolean).join(' — '))],
    onChoose: (p) => {
      if (!state.packages.includes(p.name)) state.packages.push(p.name);
      wz.dropErrors('customizations.packages');
      wz.rerender(control.id).then(() => { wz.main.querySelector('.wizard-search-status').textContent = `Added ${p.name}.`; });
    },
  });
  cb.place(f);
  s.append(f);
  const list = chips(state.packages, 'Chosen packages', (i) => {
    state.packages.splice(i, 1);
    wz.dropErrors('customizations.packages');
    wz.rerender(state.packages.length ? `wz-pkg-chip-${Math.min(i, state.packages.length - 1)}` : control.id);
  }, (i) => `customizations.packages[${i}]`);
  list.querySelectorAll('button').forEach((b, i) => { b.id = `wz-pkg-chip-${i}`; });
  s.append(h('h4', { class: 'wizard-subhead' }, `Chosen packages (${state.packages.length})`),
    state.packages.length ? list : h('p', { class: 'empty-state' }, 'No extra packages chosen.'));
  return s;
}

// ---------------------------------------------------------------- System

function usersSection(wz) {
  const { state } = wz;
  const s = section('users', 'Users & groups', 'Accounts to create in the image, and the groups each joins. Give each user an SSH public key, a password, or both.');
  const rows = h('div', { class: 'wizard-list', 'data-field': 'customizations.users' });
  s.append(rows);
  state.users.forEach((u, i) => {
    const p = `customizations.users[${i}]`;
    const n = i + 1;
    const card = h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', {}, `User ${n}${u.name ? ': ' + u.name : ''}`));
    const name = input(u.name, (v) => { u.name = v; }, { id: `wz-user-${i}-name`, autocomplete: 'off', spellcheck: 'false' });
    const key = h('textarea', { id: `wz-user-${i}-key`, rows: '3', spellcheck: 'false', placeholder: 'ssh-ed25519 AAAA… user@host', oninput: (e) => { u.ssh_key = e.target.value; } });
    key.value = u.ssh_key;
    const groups = input(u.groups, (v) => { u.groups = v; }, { id: `wz-user-${i}-groups`, autocomplete: 'off', placeholder: 'sudo, adm' });
    const pw = input(u.password, (v) => { u.password = v; }, { id: `wz-user-${i}-password`, type: 'password', autocomplete: 'new-password' });
    card.append(
      h('div', { class: 'wizard-grid' },
        field(wz, 'User name', name, { path: `${p}.name`, hint: 'Lowercase letters, digits, _ and -, e.g. ops.' }),
        field(wz, 'Groups', groups, { path: `${p}.groups`, hint: 'Separated by commas, e.g. sudo.' })),
      field(wz, 'SSH public key', key, { path: `${p}.ssh_key`, check: 'ssh', wide: true, hint: 'The contents of a .pub file; one key per line.' }),
      field(wz, 'Password', pw, { path: `${p}.password`, hint: u.hadPassword ? 'This user had a password; the server does not return it. Enter it again to keep one.' : 'Optional. Stored hashed; never shown again.' }),
      h('div', { class: 'wizard-row-actions' }, h('button', { type: 'button', class: 'btn btn-small', onclick: () => {
        state.users.splice(i, 1);
        wz.forgetErrorsUnder('customizations.users');
        wz.rerender('wz-add-user');
      } }, `Remove user ${n}`)));
    rows.append(card);
  });
  if (!state.users.length) s.append(h('p', { class: 'empty-state' }, 'No users yet. Images without users can only be reached through their console (if at all).'));
  s.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-user', onclick: () => {
    state.users.push({ name: '', ssh_key: '', groups: '', password: '', hadPassword: false });
    wz.rerender(`wz-user-${state.users.length - 1}-name`);
  } }, 'Add user'));
  return s;
}

function hostnameSection(wz) {
  const { state } = wz;
  const s = section('hostname', 'Hostname');
  const host = input(state.hostname, (v) => { state.hostname = v; }, { id: 'wz-hostname', autocomplete: 'off', spellcheck: 'false', placeholder: 'web01.example.com' });
  s.append(h('div', { class: 'wizard-grid' },
    field(wz, 'Hostname', host, { path: 'customizations.hostname', hint: 'Letters, digits and hyphens, in dot-separated labels.' })));
  return s;
}

function timeLocaleSection(wz) {
  const { state } = wz;
  const s = section('time', 'Time & locale');
  const tz = h('input', { type: 'text', id: 'wz-timezone', value: state.timezone, placeholder: 'Search, e.g. Berlin', spellcheck: 'false', oninput: (e) => { state.timezone = e.target.value; } });
  const zones = (typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : []);
  if (!zones.includes('UTC')) zones.unshift('UTC');
  const cb = combobox(wz, {
    control: tz,
    fetch: async (term) => {
      const t = term.toLowerCase().replace(/\s+/g, '_');
      return zones.filter((z) => z.toLowerCase().includes(t)).slice(0, 50);
    },
    renderOption: (z) => [h('span', { class: 'wizard-option-name' }, z)],
    onChoose: (z) => { state.timezone = z; tz.value = z; wz.dropErrors('customizations.timezone'); },
  });
  const tzField = field(wz, 'Time zone', tz, { path: 'customizations.timezone.timezone', hint: 'Type part of a city or region and pick from the list; empty keeps the image’s default (UTC).' });
  cb.place(tzField);
  const kb = input(state.keyboard, (v) => { state.keyboard = v; }, { id: 'wz-keyboard', autocomplete: 'off', placeholder: 'us' });
  s.append(h('div', { class: 'wizard-grid' },
    tzField,
    field(wz, 'Keyboard layout', kb, { path: 'customizations.locale.keyboard', hint: 'Console keymap, e.g. us or de-latin1.' }),
    chipList(wz, { label: 'Languages', list: state.languages, path: 'customizations.locale.languages', inputId: 'wz-languages', placeholder: 'en_US.UTF-8', hint: 'Locales to generate; the first is the default. Press Enter to add.', rerender: wz.rerender })));
  return s;
}

function kernelSection(wz) {
  const { state } = wz;
  const s = section('kernel', 'Kernel');
  const kargs = input(state.kernelAppend, (v) => { state.kernelAppend = v; }, { id: 'wz-kernel-append', autocomplete: 'off', spellcheck: 'false', placeholder: 'console=ttyS0,115200' });
  s.append(field(wz, 'Kernel arguments', kargs, { path: 'customizations.kernel.append', hint: 'Appended to the kernel command line, separated by spaces.', wide: true }));
  return s;
}

function servicesSection(wz) {
  const { state } = wz;
  const s = section('services', 'Services');
  const svc = (k, label, hint) => chipList(wz, { label, list: state.services[k], path: `customizations.services.${k}`, inputId: `wz-services-${k}`, placeholder: 'nginx.service', hint, rerender: wz.rerender });
  s.append(h('div', { class: 'wizard-grid' },
    svc('enabled', 'Enabled services', 'Started at boot. Press Enter to add.'),
    svc('disabled', 'Disabled services', 'Not started at boot.'),
    svc('masked', 'Masked services', 'Cannot be started at all.')));
  return s;
}

function firewallSection(wz) {
  const { state } = wz;
  const s = section('firewall', 'Firewall');
  s.append(h('div', { class: 'wizard-grid' },
    chipList(wz, { label: 'Open ports', list: state.firewall.ports, path: 'customizations.firewall.ports', inputId: 'wz-firewall-ports', placeholder: '8080:tcp', validate: checkFirewallPort, hint: 'PORT:PROTOCOL, START-END:PROTOCOL or SERVICE:PROTOCOL, e.g. 8080:tcp.', rerender: wz.rerender }),
    chipList(wz, { label: 'Allowed firewall services', list: state.firewall.enabled, path: 'customizations.firewall.services.enabled', inputId: 'wz-firewall-enabled', placeholder: 'ssh', hint: 'Firewall service names, e.g. ssh or https.', rerender: wz.rerender }),
    chipList(wz, { label: 'Blocked firewall services', list: state.firewall.disabled, path: 'customizations.firewall.services.disabled', inputId: 'wz-firewall-disabled', placeholder: 'dhcpv6-client', rerender: wz.rerender })));
  return s;
}

function filesystemsSection(wz) {
  const { state } = wz;
  const s = section('filesystems', 'Filesystems', 'Extra mount points on the image’s disk and their minimum sizes. The root filesystem grows to fill the rest.');
  const rows = h('div', { class: 'wizard-list', 'data-field': 'customizations.filesystem' });
  s.append(rows);
  state.filesystems.forEach((f, i) => {
    const p = `customizations.filesystem[${i}]`;
    const mp = input(f.mountpoint, (v) => { f.mountpoint = v; }, { id: `wz-fs-${i}-mountpoint`, autocomplete: 'off', spellcheck: 'false', placeholder: '/var' });
    const size = h('input', { type: 'number', id: `wz-fs-${i}-size`, min: '0', step: 'any', inputmode: 'decimal', value: f.size, oninput: (e) => { f.size = e.target.value; } });
    const unit = h('select', { id: `wz-fs-${i}-unit`, onchange: (e) => { f.unit = e.target.value; } },
      SIZE_UNITS.map((u) => h('option', { value: u }, u)));
    unit.value = f.unit;
    const sizeField = field(wz, 'Minimum size', size, { path: `${p}.min_size` });
    sizeField.querySelector('label').after(h('div', { class: 'wizard-inline' }, size, h('label', { for: unit.id, class: 'visually-hidden' }, `Unit of the minimum size of filesystem ${i + 1}`), unit));
    rows.append(h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', {}, `Filesystem ${i + 1}`),
      h('div', { class: 'wizard-grid' },
        field(wz, 'Mount point', mp, { path: `${p}.mountpoint`, check: 'mountpoint', hint: 'An absolute path such as /var, /home or /data.' }),
        sizeField),
      h('div', { class: 'wizard-row-actions' }, h('button', { type: 'button', class: 'btn btn-small', onclick: () => {
        state.filesystems.splice(i, 1);
        wz.forgetErrorsUnder('customizations.filesystem');
        wz.rerender('wz-add-fs');
      } }, `Remove filesystem ${i + 1}`))));
  });
  if (!state.filesystems.length) s.append(h('p', { class: 'empty-state' }, 'Everything is on the root filesystem.'));
  s.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-fs', onclick: () => {
    state.filesystems.push({ mountpoint: '', size: '', unit: 'GiB' });
    wz.rerender(`wz-fs-${state.filesystems.length - 1}-mountpoint`);
  } }, 'Add filesystem'));
  return s;
}

function filesSection(wz) {
  const { state } = wz;
  const s = section('files', 'Files & directories');
  const ownership = (x, p, prefix) => [
    field(wz, 'Mode', input(x.mode, (v) => { x.mode = v; }, { id: `${prefix}-mode`, placeholder: '0644', inputmode: 'numeric', autocomplete: 'off' }), { path: `${p}.mode`, hint: 'Octal, e.g. 0644.' }),
    field(wz, 'Owner', input(x.user, (v) => { x.user = v; }, { id: `${prefix}-user`, placeholder: 'root', autocomplete: 'off' }), { path: `${p}.user`, hint: 'User name or id.' }),
    field(wz, 'Group', input(x.group, (v) => { x.group = v; }, { id: `${prefix}-group`, placeholder: 'root', autocomplete: 'off' }), { path: `${p}.group`, hint: 'Group name or id.' }),
  ];
  s.append(h('h4', { class: 'wizard-subhead' }, 'Files'));
  const fileRows = h('div', { class: 'wizard-list', 'data-field': 'customizations.files' });
  s.append(fileRows);
  state.files.forEach((f, i) => {
    const p = `customizations.files[${i}]`;
    const prefix = `wz-file-${i}`;
    const content = h('textarea', { id: `${prefix}-data`, rows: '5', spellcheck: 'false', oninput: (e) => { f.data = e.target.value; } });
    content.value = f.data;
    fileRows.append(h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', {}, `File ${i + 1}`),
      field(wz, 'File path', input(f.path, (v) => { f.path = v; }, { id: `${prefix}-path`, placeholder: '/etc/motd', autocomplete: 'off', spellcheck: 'false' }), { path: `${p}.path`, hint: 'Absolute; missing parent directories are created.', wide: true }),
      h('div', { class: 'wizard-grid wizard-grid-3' }, ownership(f, p, prefix)),
      field(wz, 'Content', content, { path: `${p}.data`, wide: true }),
      h('div', { class: 'wizard-row-actions' }, h('button', { type: 'button', class: 'btn btn-small', onclick: () => {
        state.files.splice(i, 1);
        wz.forgetErrorsUnder('customizations.files');
        wz.rerender('wz-add-file');
      } }, `Remove file ${i + 1}`))));
  });
  s.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-file', onclick: () => {
    state.files.push({ path: '', mode: '', user: '', group: '', data: '' });
    wz.rerender(`wz-file-${state.files.length - 1}-path`);
  } }, 'Add file'));
  s.append(h('h4', { class: 'wizard-subhead' }, 'Directories'));
  const dirRows = h('div', { class: 'wizard-list', 'data-field': 'customizations.directories' });
  s.append(dirRows);
  state.directories.forEach((d, i) => {
    const p = `customizations.directories[${i}]`;
    const prefix = `wz-dir-${i}`;
    const parents = h('input', { type: 'checkbox', id: `${prefix}-parents`, checked: d.ensure_parents, onchange: (e) => { d.ensure_parents = e.target.checked; wz.dropErrors(`${p}.ensure_parents`); } });
    parents.dataset.field = `${p}.ensure_parents`;
    dirRows.append(h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', {}, `Directory ${i + 1}`),
      field(wz, 'Directory path', input(d.path, (v) => { d.path = v; }, { id: `${prefix}-path`, placeholder: '/srv/app', autocomplete: 'off', spellcheck: 'false' }), { path: `${p}.path`, wide: true }),
      h('div', { class: 'wizard-grid wizard-grid-3' }, ownership(d, p, prefix)),
      h('div', { class: 'field wizard-check' }, parents, h('label', { for: parents.id }, 'Create missing parent directories'),
        h('p', { class: 'field-error', role: 'alert', id: parents.id + '-error', hidden: true })),
      h('div', { class: 'wizard-row-actions' }, h('button', { type: 'button', class: 'btn btn-small', onclick: () => {
        state.directories.splice(i, 1);
        wz.forgetErrorsUnder('customizations.directories');
        wz.rerender('wz-add-dir');
      } }, `Remove directory ${i + 1}`))));
  });
  s.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-dir', onclick: () => {
    state.directories.push({ path: '', mode: '', user: '', group: '', ensure_parents: false });
    wz.rerender(`wz-dir-${state.directories.length - 1}-path`);
  } }, 'Add directory'));
  return s;
}

// ------------------------------------------------------------- the targets

// uploadTypes are the upload types the server delivers to, each with the
// image types it takes for the distribution and architecture, asked once
// per pair (GET /upload_types).
async function uploadTypes(wz, distribution, architecture) {
  const cache = wz.cache.uploadTypes || (wz.cache.uploadTypes = {});
  const key = `${distribution}/${architecture}`;
  if (!cache[key]) {
    cache[key] = wz.api.get('/upload_types', { query: { distribution, architecture } }).then((res) => (res && res.data) || []);
    cache[key].catch(() => { delete cache[key]; });
  }
  return cache[key];
}

// takes tells whether the upload type t (an item of /upload_types) takes
// images of type.
const takes = (t, type) => !Array.isArray(t.image_types) || t.image_types.includes(type);

// imageTarget is the choice of target for the image type at index i of
// the chosen ones, with the chosen target's options, and which of the
// server's other targets take which image types.
function imageTarget(wz, offered, type, i) {
  const { state } = wz;
  const u = uploadOf(state, type);
  const path = `image_requests[${i}].upload_request`;
  const mine = offered.filter((t) => takes(t, type));
  const section = h('fieldset', { class: 'wizard-row wizard-target', 'data-field': path, dataset: { imageType: type } },
    h('legend', {}, `Image type ${type}`));
  let note = null;
  if (!mine.some((t) => t.type === u.type)) {
    if (u.type !== DEFAULT_TARGET) note = h('p', { class: 'hint wizard-target-note' }, `${targetTitle(u.type)} was chosen for ${type}, but this server does not deliver ${type} images there; choose another target.`);
    u.type = mine.some((t) => t.type === DEFAULT_TARGET) ? DEFAULT_TARGET : (mine[0] || { type: DEFAULT_TARGET }).type;
  }
  const options = h('div', { class: 'wizard-target-options' });
  const drawOptions = () => {
    options.replaceChildren(...targetOptions(wz, u, path, i));
  };
  if (mine.length === 1) {
    section.append(fact(targetTitle(u.type), TARGETS[u.type]?.text || '', `The only target this server delivers ${type} images to.`, `${path}.type`));
  } else {
    section.append(radioCards(`upload_request-${i}`, mine.map((t) => ({
      value: t.type, title: targetTitle(t.type), text: TARGETS[t.type]?.text || '',
    })), u.type, (v) => {
      u.type = v;
      wz.dropErrors(path);
      drawOptions();
    }, `Target of the ${type} image`, `${path}.type`));
  }
  if (note) section.append(note);
  drawOptions();
  section.append(options);
  const others = offered.filter((t) => !takes(t, type));
  if (others.length) {
    section.append(h('p', { class: 'hint wizard-target-others' }, `Not for ${type} images: `,
      others.map((t) => `${targetTitle(t.type)} (takes ${t.image_types.length ? t.image_types.join(', ') : 'none of this architecture’s image types'})`).join('; '), '.'));
  }
  return section;
}

// targetOptions are the form controls of the options of u's chosen
// target, each at its request field, with ids that stay the same when
// the step is drawn again (so the focus returns to them).
function targetOptions(wz, u, path, i) {
  const o = u.options[u.type];
  const p = `${path}.options`;
  const id = (name) => `wz-target-${i}-${u.type.replace(/\W/g, '-')}-${name}`;
  const text = (label, name, attrs, hint) => field(wz, label, input(o[name], (v) => { o[name] = v; }, { id: id(name), autocomplete: 'off', spellcheck: 'false', ...attrs }), { path: `${p}.${name}`, hint });
  switch (u.type) {
    case 'aws':
      return [h('div', { class: 'wizard-grid' },
        chipList(wz, { label: 'Share with AWS accounts', list: o.share_with_accounts, path: `${p}.share_with_accounts`, inputId: id('share'), placeholder: '123456789012',
          validate: checkAWSAccount, hint: 'The 12-digit IDs of the AWS accounts that may launch the AMI. Press Enter to add.', rerender: wz.rerender }),
        text('Region', 'region', { placeholder: 'eu-west-1' }, 'The AWS region the AMI is registered in; empty: the service’s region.'))];
    case 'gcp':
      return [chipList(wz, { label: 'Share with Google Cloud members', list: o.share_with_accounts, path: `${p}.share_with_accounts`, inputId: id('share'), placeholder: 'user:alice@example.com',
        validate: checkGCPMember, hint: 'Who may use the image: user:, serviceAccount: or group: and an e-mail address, or domain: and a domain. Press Enter to add.', rerender: wz.rerender })];
    case 'azure': {
      const gen = h('select', { id: id('hyper_v_generation'), onchange: (e) => { o.hyper_v_generation = e.target.value; wz.dropErrors(`${p}.hyper_v_generation`); } },
        h('option', { value: '' }, 'Default (V1)'), h('option', { value: 'V1' }, 'V1 (BIOS)'), h('option', { value: 'V2' }, 'V2 (UEFI)'));
      gen.value = o.hyper_v_generation;
      return [h('div', { class: 'wizard-grid' },
        text('Resource group', 'resource_group', { placeholder: 'images', required: true }, 'Required: the resource group of the service’s subscription the image is made in.'),
        text('Image name', 'image_name', { placeholder: 'web-server' }, 'Optional: letters, digits, _, . and -, at most 60; empty: the image’s name.'),
        field(wz, 'Hyper-V generation', gen, { path: `${p}.hyper_v_generation`, hint: 'V2 needs an image that boots with UEFI.' }),
        text('Subscription ID', 'subscription_id', { placeholder: '00000000-0000-0000-0000-000000000000' }, 'Optional: as image-builder takes it; the service’s own subscription is used.'),
        text('Tenant ID', 'tenant_id', { placeholder: '00000000-0000-0000-0000-000000000000' }, 'Optional: as image-builder takes it.'))];
    }
    case 'container':
      return [h('div', { class: 'wizard-grid' },
        text('Repository name', 'name', { placeholder: 'team/app' }, 'The repository in the service’s registry, e.g. team/app.'),
        text('Tag', 'tag', { placeholder: 'latest' }, 'Empty: latest.'))];
    default:
      return [h('p', { class: 'hint' }, `${targetTitle(u.type)} takes no options.`)];
  }
}
