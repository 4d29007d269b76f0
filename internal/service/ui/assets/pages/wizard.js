// The Create image wizard (#/create, and #/create?blueprint=<id>&version=<n>
// to edit a stored blueprint). Everything the user enters lives in one
// state object, separate from the DOM: steps are rebuilt from it whenever
// they are shown, so nothing typed is lost when moving between steps or when
// the API rejects a request. The API is the judge of what is valid: checks
// made here only explain problems early and never stop a request.

const STEPS = [
  { id: 'distribution', title: 'Distribution' },
  { id: 'architecture', title: 'Architecture' },
  { id: 'types', title: 'Image types' },
  { id: 'target', title: 'Target' },
  { id: 'packages', title: 'Packages' },
  { id: 'users', title: 'Users' },
  { id: 'system', title: 'System' },
  { id: 'services', title: 'Services & firewall' },
  { id: 'filesystems', title: 'Filesystems' },
  { id: 'files', title: 'Files & directories' },
  { id: 'review', title: 'Review' },
];
const REVIEW = STEPS.length - 1;

const SIZE_UNITS = ['MiB', 'GiB', 'TiB'];
const SIZE_FACTORS = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4, PiB: 1024 ** 5, EiB: 1024 ** 6,
  KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, PB: 1e15, EB: 1e18 };

// ---------------------------------------------------------------- DOM helper

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let uid = 0;
const nextId = (p) => `wz-${p}-${++uid}`;

// ------------------------------------------------------- client-side checks

// Key types OpenSSH and the API accept in authorized_keys, with the shape
// of the key data that follows the type name inside the base64 blob.
const KEY_SHAPES = {
  'ssh-ed25519': ['ed25519'],
  'ssh-rsa': ['mpint', 'mpint'],
  'ssh-dss': ['mpint', 'mpint', 'mpint', 'mpint'],
  'ecdsa-sha2-nistp256': ['curve:nistp256', 'string'],
  'ecdsa-sha2-nistp384': ['curve:nistp384', 'string'],
  'ecdsa-sha2-nistp521': ['curve:nistp521', 'string'],
  'sk-ssh-ed25519@openssh.com': ['ed25519', 'string'],
  'sk-ecdsa-sha2-nistp256@openssh.com': ['curve:nistp256', 'string', 'string'],
};
const KEY_EXAMPLE = 'e.g. "ssh-ed25519 AAAAC3Nza… user@host"';
const looksLikeKeyType = (t) => /^(ssh-|ecdsa-sha2-|sk-)/.test(t);

function decodeBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// readKeyBlob walks the SSH wire format of a public key: a string naming the
// type, then the type's fields. It returns the embedded type name and
// whether the fields have the expected shape with nothing left over.
function readKeyBlob(bytes) {
  let off = 0;
  const str = () => {
    if (off + 4 > bytes.length) return null;
    const n = ((bytes[off] << 24) | (bytes[off + 1] << 16) | (bytes[off + 2] << 8) | bytes[off + 3]) >>> 0;
    off += 4;
    if (off + n > bytes.length) return null;
    const s = bytes.subarray(off, off + n);
    off += n;
    return s;
  };
  const t = str();
  if (!t) return { type: null };
  const type = new TextDecoder().decode(t);
  const shape = KEY_SHAPES[type];
  if (!shape) return { type, ok: false };
  for (const f of shape) {
    const v = str();
    if (!v) return { type, ok: false };
    if (f === 'ed25519' && v.length !== 32) return { type, ok: false };
    if (f.startsWith('curve:') && new TextDecoder().decode(v) !== f.slice(6)) return { type, ok: false };
  }
  return { type, ok: off === bytes.length };
}

// checkSSHKeys explains what is wrong with an authorized_keys value (one
// key a line; blank lines and # comments allowed), or returns ''.
export function checkSSHKeys(text) {
  const msg = keyProblem(text);
  return msg && msg[0].toUpperCase() + msg.slice(1);
}

function keyProblem(text) {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = lines.filter((l) => l.trim() !== '').length > 1 ? `Line ${i + 1}: ` : '';
    if (line.includes('PRIVATE KEY')) {
      return `${where}this is a private key. Paste the public key (the .pub file) instead, and treat this private key as leaked.`;
    }
    const tokens = line.split(/\s+/);
    // Options such as from="…" may come before the key type.
    let k = tokens.findIndex((t) => t in KEY_SHAPES);
    if (k < 0) k = tokens.findIndex(looksLikeKeyType);
    if (k < 0) {
      return `${where}does not start with a key type. A public key starts with ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256 (or -nistp384, -nistp521) or sk-ssh-ed25519@openssh.com, then the key data, ${KEY_EXAMPLE}.`;
    }
    const type = tokens[k];
    if (!(type in KEY_SHAPES)) {
      return `${where}"${type}" is not a key type; use ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com.`;
    }
    const data = tokens[k + 1];
    if (!data) return `${where}the key data is missing after "${type}"; paste the whole line of the .pub file, ${KEY_EXAMPLE}.`;
    const bad = data.search(/[^A-Za-z0-9+/=]/);
    if (bad >= 0) {
      return `${where}the key data after "${type}" contains "${data[bad]}" at character ${bad + 1}, which is not base64; the key may have been mangled when copied.`;
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data) || data.length % 4 !== 0) {
      return `${where}the key data after "${type}" is not complete base64 (its length or padding is wrong); the key may be cut off.`;
    }
    let blob;
    try { blob = readKeyBlob(decodeBase64(data)); } catch { blob = { type: null }; }
    if (blob.type === null) return `${where}the key data after "${type}" is too short to be a key; the key may be cut off.`;
    if (blob.type !== type) {
      const shown = /^[\x20-\x7e]{1,64}$/.test(blob.type) ? `an "${blob.type}" key` : 'not a key';
      return `${where}the line says "${type}" but its key data is ${shown}; the type and the key data must come from the same .pub file.`;
    }
    if (!blob.ok) return `${where}the ${type} key data is damaged or cut off; paste the whole line of the .pub file again.`;
  }
  return '';
}

// checkMountpoint: a mount point is an absolute path without "..".
export function checkMountpoint(mp) {
  if (mp === '') return '';
  if (!mp.startsWith('/')) return `"${mp}" is not an absolute path; start it with /, e.g. /var.`;
  if (mp.split('/').includes('..')) return `"${mp}" contains ".."; write the path without it.`;
  return '';
}

// checkFirewallPort accepts what both the request schema and the blueprint
// validator accept: PORT, START-END or SERVICE, then :tcp or :udp.
export function checkFirewallPort(s) {
  const fix = 'write PORT:PROTOCOL, START-END:PROTOCOL or SERVICE:PROTOCOL with protocol tcp or udp, e.g. "8080:tcp", "60000-61000:udp" or "https:tcp"';
  const m = /^(?:([0-9]{1,5})(?:-([0-9]{1,5}))?|[a-z][a-z0-9-]*):(tcp|udp)$/.exec(s);
  if (!m) return `"${s}" is not a port; ${fix}.`;
  if (m[1] !== undefined) {
    const lo = Number(m[1]);
    const hi = m[2] !== undefined ? Number(m[2]) : lo;
    if (lo < 1 || hi < 1 || lo > 65535 || hi > 65535) return `"${s}" has a port outside 1-65535.`;
    if (lo > hi) return `"${s}" has a range that ends before it starts.`;
  }
  return '';
}

// ---------------------------------------------------------------- the state

function emptyState() {
  return {
    name: '', description: '',
    distribution: '', architecture: '', imageTypes: [],
    packages: [],
    users: [],
    hostname: '', timezone: '', languages: [], keyboard: '', kernelAppend: '',
    services: { enabled: [], disabled: [], masked: [] },
    firewall: { ports: [], enabled: [], disabled: [] },
    filesystems: [],
    files: [], directories: [],
    // Customizations the wizard has no controls for, kept from a loaded
    // blueprint so saving does not drop them.
    keep: {},
  };
}

function splitSize(v) {
  if (typeof v === 'number') {
    for (const u of ['TiB', 'GiB', 'MiB']) if (v % SIZE_FACTORS[u] === 0) return { size: String(v / SIZE_FACTORS[u]), unit: u };
    return { size: String(v / SIZE_FACTORS.MiB), unit: 'MiB' };
  }
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$/.exec(String(v || '').trim());
  if (!m) return { size: String(v || ''), unit: 'GiB' };
  const unit = m[2] || 'B';
  if (SIZE_UNITS.includes(unit)) return { size: m[1], unit };
  const bytes = Number(m[1]) * (SIZE_FACTORS[unit] || 1);
  return splitSize(bytes);
}

function stateFromBlueprint(bp) {
  const s = emptyState();
  const c = structuredClone(bp.customizations || {});
  s.name = bp.name || '';
  s.description = bp.description || '';
  s.distribution = bp.distribution || '';
  const reqs = bp.image_requests || [];
  s.architecture = reqs[0]?.architecture || '';
  s.imageTypes = [...new Set(reqs.map((r) => r.image_type))];
  s.packages = c.packages || [];
  s.users = (c.users || []).map((u) => ({
    name: u.name || '', ssh_key: u.ssh_key || '', groups: (u.groups || []).join(', '), password: '', hadPassword: !!u.hasPassword,
  }));
  s.hostname = c.hostname || '';
  s.timezone = c.timezone?.timezone || '';
  s.languages = c.locale?.languages || [];
  s.keyboard = c.locale?.keyboard || '';
  s.kernelAppend = c.kernel?.append || '';
  s.services = { enabled: c.services?.enabled || [], disabled: c.services?.disabled || [], masked: c.services?.masked || [] };
  s.firewall = { ports: c.firewall?.ports || [], enabled: c.firewall?.services?.enabled || [], disabled: c.firewall?.services?.disabled || [] };
  s.filesystems = (c.filesystem || []).map((f) => ({ mountpoint: f.mountpoint || '', ...splitSize(f.min_size) }));
  const owner = (o) => (o === undefined || o === null ? '' : String(o));
  s.files = (c.files || []).map((f) => ({ path: f.path || '', mode: f.mode || '', user: owner(f.user), group: owner(f.group), data: f.data || '' }));
  s.directories = (c.directories || []).map((d) => ({
    path: d.path || '', mode: d.mode || '', user: owner(d.user), group: owner(d.group), ensure_parents: !!d.ensure_parents,
  }));
  // What the wizard does not edit rides along unchanged.
  for (const k of ['groups', 'custom_repositories']) if (c[k]) s.keep[k] = c[k];
  if (c.timezone?.ntpservers) s.keep.ntpservers = c.timezone.ntpservers;
  if (c.kernel?.name) s.keep.kernelName = c.kernel.name;
  return s;
}

const owner = (v) => (/^[0-9]+$/.test(v) ? Number(v) : v);

// customizations builds the request's customizations from the state. Every
// row the user added is sent, even when incomplete, so its index in the
// request is its index on screen and the API's field paths point at it.
function customizations(s) {
  const c = {};
  if (s.packages.length) c.packages = [...s.packages];
  if (s.users.length) {
    c.users = s.users.map((u) => {
      const o = { name: u.name.trim() };
      if (u.ssh_key.trim()) o.ssh_key = u.ssh_key.trim();
      const groups = u.groups.split(/[\s,]+/).filter(Boolean);
      if (groups.length) o.groups = groups;
      if (u.password) o.password = u.password;
      return o;
    });
  }
  if (s.keep.groups) c.groups = s.keep.groups;
  if (s.hostname.trim()) c.hostname = s.hostname.trim();
  if (s.timezone.trim() || s.keep.ntpservers) {
    c.timezone = {};
    if (s.timezone.trim()) c.timezone.timezone = s.timezone.trim();
    if (s.keep.ntpservers) c.timezone.ntpservers = s.keep.ntpservers;
  }
  if (s.languages.length || s.keyboard.trim()) {
    c.locale = {};
    if (s.languages.length) c.locale.languages = [...s.languages];
    if (s.keyboard.trim()) c.locale.keyboard = s.keyboard.trim();
  }
  if (s.kernelAppend.trim() || s.keep.kernelName) {
    c.kernel = {};
    if (s.keep.kernelName) c.kernel.name = s.keep.kernelName;
    if (s.kernelAppend.trim()) c.kernel.append = s.kernelAppend.trim();
  }
  const sv = {};
  for (const k of ['enabled', 'disabled', 'masked']) if (s.services[k].length) sv[k] = [...s.services[k]];
  if (Object.keys(sv).length) c.services = sv;
  const fw = {};
  if (s.firewall.ports.length) fw.ports = [...s.firewall.ports];
  const fws = {};
  for (const k of ['enabled', 'disabled']) if (s.firewall[k].length) fws[k] = [...s.firewall[k]];
  if (Object.keys(fws).length) fw.services = fws;
  if (Object.keys(fw).length) c.firewall = fw;
  if (s.filesystems.length) {
    c.filesystem = s.filesystems.map((f) => {
      const o = { mountpoint: f.mountpoint.trim() };
      if (String(f.size).trim() !== '') o.min_size = `${String(f.size).trim()} ${f.unit}`;
      return o;
    });
  }
  const ownership = (o, x) => {
    if (x.mode.trim()) o.mode = x.mode.trim();
    if (x.user.trim()) o.user = owner(x.user.trim());
    if (x.group.trim()) o.group = owner(x.group.trim());
    return o;
  };
  if (s.files.length) c.files = s.files.map((f) => ({ ...ownership({ path: f.path.trim() }, f), data: f.data }));
  if (s.directories.length) {
    c.directories = s.directories.map((d) => {
      const o = ownership({ path: d.path.trim() }, d);
      if (d.ensure_parents) o.ensure_parents = true;
      return o;
    });
  }
  if (s.keep.custom_repositories) c.custom_repositories = s.keep.custom_repositories;
  return c;
}

function imageRequest(s, type) {
  return { architecture: s.architecture, image_type: type, upload_request: { type: 'local' } };
}

function blueprintRequest(s) {
  const body = { name: s.name.trim(), distribution: s.distribution, image_requests: s.imageTypes.map((t) => imageRequest(s, t)) };
  if (s.description.trim()) body.description = s.description.trim();
  const c = customizations(s);
  if (Object.keys(c).length) body.customizations = c;
  return body;
}

function composeRequest(s, type) {
  const body = { distribution: s.distribution, client_id: 'ui', image_requests: [imageRequest(s, type)] };
  if (s.name.trim()) body.image_name = s.name.trim();
  if (s.description.trim()) body.image_description = s.description.trim();
  const c = customizations(s);
  if (Object.keys(c).length) body.customizations = c;
  return body;
}

// ------------------------------------------------------------ field errors

// The compose request names the blueprint's name and description
// differently, and each compose carries one image request.
function normalizePath(p) {
  if (p === 'image_name') return 'name';
  if (p === 'image_description') return 'description';
  return p;
}

// stepOf tells which step shows the field at a request path.
function stepOf(path) {
  const p = normalizePath(path);
  const is = (prefix) => p === prefix || p.startsWith(prefix + '.') || p.startsWith(prefix + '[');
  if (is('distribution')) return 0;
  if (/^image_requests(\[\d+\])?\.architecture/.test(p)) return 1;
  if (/^image_requests(\[\d+\])?\.upload_request/.test(p)) return 3;
  if (is('image_requests')) return 2;
  if (is('customizations.packages')) return 4;
  if (is('customizations.users') || is('customizations.groups')) return 5;
  if (['hostname', 'timezone', 'locale', 'kernel'].some((k) => is('customizations.' + k))) return 6;
  if (is('customizations.services') || is('customizations.firewall')) return 7;
  if (is('customizations.filesystem')) return 8;
  if (is('customizations.files') || is('customizations.directories')) return 9;
  return REVIEW;
}

// Request-schema errors quote the schema's regular expression; for the
// fields a user types, say in words what the schema accepts instead.
const PATTERN_RULES = [
  [/^customizations\.hostname$/, 'is not a valid host name: use dot-separated labels of letters, digits and hyphens (up to 63 each), not starting or ending with a hyphen, e.g. web01.example.com.'],
  [/^customizations\.(users|groups)\[\d+\]\.name$|\.groups\[\d+\]$/, 'is not a valid name: use lowercase letters, digits, _ and -, starting with a letter or _.'],
  [/\.(user|group)$/, 'is not a user or group: give a name (lowercase letters, digits, _ and -) or a numeric id.'],
  [/\.mode$/, 'is not a mode: give octal permissions such as 0644 or 0755.'],
  [/^customizations\.timezone\.timezone$/, 'is not a time zone name; choose one from the list, e.g. Europe/Berlin.'],
  [/^customizations\.services\./, 'is not a systemd unit name: use letters, digits and : _ . @ -.'],
  [/^customizations\.firewall\.ports/, 'is not a port: write PORT:PROTOCOL, START-END:PROTOCOL or SERVICE:PROTOCOL, e.g. 8080:tcp.'],
  [/^customizations\.firewall\.services/, 'is not a firewall service name: use lowercase letters, digits and -, e.g. ssh.'],
  [/^customizations\.packages/, 'is not a package name.'],
  [/\.path$|\.mountpoint$/, 'is not an absolute path; start it with /.'],
  [/\.min_size$/, 'is not a size: give a number and a unit, e.g. 2 GiB.'],
];

function plainWords(field, detail) {
  if (!/^string doesn't match the regular expression/.test(detail)) return detail;
  const rule = PATTERN_RULES.find(([re]) => re.test(field));
  return rule ? 'Not' + rule[1].slice('is not'.length) : detail;
}

// apiErrors turns an ApiError into [{field, detail}]. Errors from servers
// that put the path only into the detail ("path: message") get it back.
function apiErrors(err) {
  const list = Array.isArray(err?.errors) && err.errors.length ? err.errors : [{ detail: err?.message || String(err) }];
  return list.map((e) => {
    let field = e.field || '';
    let detail = e.detail || e.title || 'Request failed';
    if (field && detail.startsWith(field + ': ')) detail = detail.slice(field.length + 2);
    if (!field) {
      const m = /^((?:customizations|image_requests|image_name|image_description|name|description|distribution)[\w.[\]]*): (.*)$/s.exec(detail);
      if (m) { field = m[1]; detail = m[2]; }
    }
    detail = plainWords(field, detail);
    return { field: normalizePath(field), detail: detail[0].toUpperCase() + detail.slice(1) };
  });
}

// ------------------------------------------------------------- the wizard

export async function render(root, ctx) {
  const { api, query, navigate, toast } = ctx;
  let state = emptyState();
  let step = 0;
  let visited = 0; // highest step reached
  let editing = null; // {id, version} when editing a stored blueprint
  let serverErrors = []; // [{field, detail}] from the last request
  let busy = false;
  let alive = true;
  const timers = new Set();
  const cache = { distributions: null, detail: {} };
  let toml = { text: '', error: null, loading: false, key: '' };

  const page = h('div', { class: 'page wizard' });
  root.replaceChildren(page);

  const header = h('div', { class: 'page-header' }, h('h1', { id: 'wz-title', text: 'Create image' }));
  const stepper = h('ol', { class: 'stepper', 'aria-label': 'Steps' });
  const main = h('div', { class: 'wizard-main' });
  page.append(header, h('div', { class: 'wizard-layout' }, h('nav', { class: 'wizard-nav', 'aria-label': 'Wizard steps' }, stepper), main));

  const later = (fn, ms) => {
    const t = setTimeout(() => { timers.delete(t); if (alive) fn(); }, ms);
    timers.add(t);
    return t;
  };

  // ---- loading

  try {
    if (query?.get('blueprint')) {
      const id = query.get('blueprint');
      const version = query.get('version');
      const bp = await api.get('/blueprints/' + encodeURIComponent(id), version ? { query: { version } } : {});
      state = stateFromBlueprint(bp);
      editing = { id, version: bp.version, name: bp.name };
      header.querySelector('h1').textContent = `Edit blueprint ${bp.name}`;
      header.append(h('p', { class: 'hint', text: `Starting from version ${bp.version}. Saving records a new version.` }));
      visited = REVIEW;
    }
    cache.distributions = await api.get('/distributions');
    if (state.distribution) await distributionDetail(state.distribution);
  } catch (err) {
    main.replaceChildren(h('div', { class: 'alert alert-error', role: 'alert' },
      h('p', {}, `Could not load ${editing || query?.get('blueprint') ? 'the blueprint' : 'the distributions'}: `, apiErrors(err).map((e) => e.detail).join('; '))));
    return () => { alive = false; };
  }

  async function distributionDetail(name) {
    if (!cache.detail[name]) cache.detail[name] = await api.get('/distributions/' + encodeURIComponent(name));
    return cache.detail[name];
  }

  // ---- errors

  function errorsOf(stepIndex) {
    return serverErrors.filter((e) => stepOf(e.field) === stepIndex);
  }

  // dropErrors forgets the server's errors about a field once it is edited.
  function dropErrors(path) {
    const before = serverErrors.length;
    serverErrors = serverErrors.filter((e) => !(e.field === path || e.field.startsWith(path + '.') || e.field.startsWith(path + '[')));
    if (serverErrors.length !== before) renderStepper();
  }

  // setError shows a message at a control wrapped by field(); '' clears it.
  function setError(control, msg) {
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
        if (server.length) c.append(h('p', { class: 'field-error wizard-container-error', role: 'alert', text: server.join(' ') }));
        continue;
      }
      const client = c.dataset.check ? checks[c.dataset.check](c.value) : '';
      const msg = [client, ...server.filter((m) => m !== client)].filter(Boolean).join(' ');
      if (msg || c.getAttribute('aria-invalid')) setError(c, msg);
    }
    const box = form.querySelector('.wizard-step-errors');
    if (box) {
      box.replaceChildren();
      box.hidden = !loose.length;
      if (loose.length) {
        box.append(h('p', { text: 'The server rejected the request:' }),
          h('ul', {}, loose.map((e) => h('li', {}, e.field ? h('code', { text: e.field }) : null, e.field ? ': ' : null, e.detail))));
      }
    }
    return controls.find((c) => c.getAttribute('aria-invalid') === 'true' || c.classList.contains('wizard-invalid'));
  }

  const checks = {
    ssh: (v) => (v.trim() ? checkSSHKeys(v) : ''),
    mountpoint: (v) => checkMountpoint(v.trim()),
  };

  // ---- building blocks

  // field wraps a control with its label, hint and error line (the
  // style.css .field block). path is the request field it edits.
  function field(label, control, { hint, path, check, wide } = {}) {
    const id = control.id || (control.id = nextId('f'));
    const hintEl = hint ? h('p', { class: 'hint', id: id + '-hint', text: hint }) : null;
    const err = h('p', { class: 'field-error', role: 'alert', id: id + '-error', hidden: true });
    if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
    if (path) control.dataset.field = path;
    if (check) control.dataset.check = check;
    // Once edited, the server's verdict on the old value is gone; the
    // client-side check (if any) speaks for the new one.
    control.addEventListener('input', () => {
      if (path) dropErrors(path);
      if (control.dataset.enter !== 'local') setError(control, check ? checks[check](control.value) : '');
    });
    return h('div', { class: 'field' + (wide ? ' field-wide' : '') }, h('label', { for: id, text: label }), control, hintEl, err);
  }

  function input(value, onInput, attrs = {}) {
    return h('input', { type: 'text', value, ...attrs, oninput: (e) => onInput(e.target.value) });
  }

  // chips shows a list of values as removable chips. Removing moves focus
  // to the next chip's button, or to `after` when none is left.
  function chips(list, label, onRemove, pathOf) {
    const ul = h('ul', { class: 'chips', 'aria-label': label });
    list.forEach((v, i) => {
      const btn = h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${v}`, text: '×' });
      btn.addEventListener('click', () => onRemove(i));
      const li = h('li', { class: 'chip' }, h('span', { text: v }), btn);
      if (pathOf) li.dataset.field = pathOf(i);
      ul.append(li);
    });
    return ul;
  }

  // chipList is a text input that adds what is typed to `list` on Enter or
  // with its Add button, and the chips of what is in the list.
  function chipList({ label, list, path, hint, placeholder, validate, rerender, inputId }) {
    const id = inputId || nextId('chip');
    const control = h('input', { type: 'text', id, placeholder, autocomplete: 'off', 'data-enter': 'local' });
    const add = () => {
      const values = control.value.split(/[\s,]+/).map((v) => v.trim()).filter(Boolean);
      if (!values.length) return;
      for (const v of values) {
        const msg = validate ? validate(v) : '';
        if (msg) { setError(control, msg); return; }
      }
      for (const v of values) if (!list.includes(v)) list.push(v);
      dropErrors(path);
      rerender(id);
    };
    control.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); add(); } });
    control.addEventListener('input', () => setError(control, ''));
    const f = field(label, control, { hint, path });
    f.querySelector('label').after(h('div', { class: 'wizard-inline' }, control,
      h('button', { type: 'button', class: 'btn', text: 'Add', 'aria-label': `Add to ${label}`, onclick: add })));
    const chipUl = chips(list, label, (i) => {
      list.splice(i, 1);
      dropErrors(path);
      rerender(list.length ? `${id}-chip-${Math.min(i, list.length - 1)}` : id);
    }, (i) => `${path}[${i}]`);
    chipUl.querySelectorAll('button').forEach((b, i) => { b.id = `${id}-chip-${i}`; });
    f.append(chipUl);
    return f;
  }

  // combobox: a text input with a listbox of suggestions, operated with the
  // arrow keys, Enter and Escape (WAI-ARIA combobox pattern).
  function combobox({ control, fetch, onChoose, renderOption, debounceMs = 0 }) {
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
        if (mine !== seq || !alive) return;
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
      timer = debounceMs ? later(run, debounceMs) : (run(), null);
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
    return { list, status, close };
  }

  // ---- navigation

  function renderStepper() {
    stepper.replaceChildren(...STEPS.map((s, i) => {
      const errs = errorsOf(i).length > 0;
      const label = [h('span', { class: 'stepper-title', text: s.title })];
      if (errs) label.push(h('span', { class: 'visually-hidden', text: ' (has errors)' }));
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
    const heading = h('h2', { tabindex: '-1', id: 'wz-step-heading', text: `${step + 1}. ${s.title}` });
    const body = h('div', { class: 'wizard-step-body' });
    const stepErrors = h('div', { class: 'alert alert-error wizard-step-errors', role: 'alert', hidden: true });
    const problem = h('p', { class: 'field-error wizard-step-problem', role: 'alert', hidden: true });
    const back = h('button', { type: 'button', class: 'btn', text: 'Back', onclick: () => go(step - 1) });
    const actions = h('div', { class: 'wizard-actions' });
    if (step > 0) actions.append(back);
    if (step < REVIEW) actions.append(h('button', { type: 'submit', class: 'btn btn-primary', text: 'Next' }));
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
    await steps[s.id](body, actions);
    if (!alive) return;
    const firstInvalid = applyErrors(form, step);
    if (focus === 'error' && firstInvalid) {
      (firstInvalid.matches('input, textarea, select') ? firstInvalid : firstInvalid.querySelector('input, textarea, select, button') || heading).focus();
    } else if (focus === 'error') heading.focus();
    else if (typeof focus === 'string' && focus.startsWith('#')) (form.querySelector(focus) || heading).focus();
    else if (focus === 'heading') heading.focus();
  }

  // rerender rebuilds the current step keeping the focus on element `id`.
  const rerender = (id) => renderStep(id ? '#' + CSS.escape(id) : null);

  // canLeave returns why the current step cannot be left forward, or ''.
  // Only choices the request cannot be made without are required here.
  function canLeave() {
    const s = STEPS[step].id;
    if (s === 'distribution' && !state.distribution) return 'Choose a distribution.';
    if (s === 'architecture' && !state.architecture) return 'Choose an architecture.';
    if (s === 'types' && !state.imageTypes.length) return 'Choose at least one image type.';
    return '';
  }

  function radioCards(name, options, current, onPick, label, path = name) {
    const fs = h('fieldset', { class: 'wizard-choices', 'data-field': path });
    fs.append(h('legend', { class: 'visually-hidden', text: label }));
    for (const o of options) {
      const id = nextId(name);
      const descId = id + '-desc';
      const hasDesc = o.text || o.extra || o.badge;
      fs.append(h('div', { class: 'wizard-choice' },
        h('input', { type: o.multi ? 'checkbox' : 'radio', name, id, value: o.value, checked: o.checked ?? o.value === current,
          'aria-describedby': hasDesc ? descId : undefined, onchange: (e) => onPick(o.value, e.target.checked) }),
        h('label', { for: id, text: o.title }),
        hasDesc ? h('div', { class: 'wizard-choice-desc', id: descId },
          o.badge || null,
          o.text ? h('span', { class: 'wizard-choice-text', text: o.text }) : null,
          o.extra ? h('span', { class: 'wizard-choice-text hint', text: o.extra }) : null) : null));
    }
    return fs;
  }

  const steps = {
    async distribution(body) {
      body.append(h('p', { class: 'hint', text: 'The operating system the image is built from.' }));
      body.append(radioCards('distribution', cache.distributions.map((d) => ({ value: d.name, title: d.name, text: d.description })), state.distribution, async (v) => {
        if (v !== state.distribution) {
          state.distribution = v;
          dropErrors('distribution');
          await distributionDetail(v).catch(() => {});
          const d = cache.detail[v];
          if (d && !d.architectures.includes(state.architecture)) state.architecture = '';
          if (d) state.imageTypes = state.imageTypes.filter((t) => d.image_types.some((it) => it.name === t));
          toml.key = '';
        }
      }, 'Distribution'));
    },

    async architecture(body) {
      const d = await distributionDetail(state.distribution);
      if (!state.architecture && d.architectures.length === 1) state.architecture = d.architectures[0];
      const labels = { x86_64: '64-bit x86 (Intel, AMD)', aarch64: '64-bit ARM' };
      body.append(h('p', { class: 'hint', text: `The processor architecture ${d.name} images are built for.` }));
      body.append(radioCards('architecture', d.architectures.map((a) => ({ value: a, title: a, text: labels[a] || '' })), state.architecture, (v) => {
        state.architecture = v;
        state.imageTypes = state.imageTypes.filter((t) => d.image_types.some((it) => it.name === t && it.architectures.includes(v)));
        dropErrors('image_requests');
      }, 'Architecture', 'image_requests'));
    },

    async types(body) {
      const d = await distributionDetail(state.distribution);
      const types = d.image_types.filter((t) => t.architectures.includes(state.architecture));
      body.append(h('p', { class: 'hint', text: 'Choose one or more image types; each is built as its own image from the same content.' }));
      const fname = (t) => t.filename.replace('<name>', state.name.trim() || 'image').replace(/x86_64|aarch64/, state.architecture);
      body.append(radioCards('image_requests', types.map((t) => ({
        multi: true, value: t.name, checked: state.imageTypes.includes(t.name),
        title: t.name + (t.aliases?.length ? ` (${t.aliases.join(', ')})` : ''),
        badge: h('span', { class: 'badge', text: t.bootable ? 'Bootable' : 'Not bootable' }),
        text: t.description, extra: `File: ${fname(t)}`,
      })), null, (v, on) => {
        state.imageTypes = on ? [...new Set([...state.imageTypes, v])] : state.imageTypes.filter((t) => t !== v);
        state.imageTypes.sort((a, b) => types.findIndex((t) => t.name === a) - types.findIndex((t) => t.name === b));
        dropErrors('image_requests');
      }, 'Image types'));
    },

    async target(body) {
      body.append(radioCards('upload_request', [{
        value: 'local', title: 'Download from kiln',
        text: 'kiln keeps the built image and you download it from the image’s page. This is the only target for now; uploads to cloud providers and registries are not available yet.',
      }], 'local', () => {}, 'Target', 'image_requests'));
    },

    async packages(body) {
      body.append(h('p', { class: 'hint', text: `Packages to install on top of the image type’s own, from the ${state.distribution} repositories for ${state.architecture}.` }));
      const control = h('input', { type: 'search', id: 'wz-package-search', placeholder: 'Type part of a package name' });
      const f = field('Search packages', control, { path: 'customizations.packages', hint: 'Results appear as you type; choose one with the arrow keys and Enter, or click it.' });
      const cb = combobox({
        control, debounceMs: 250,
        fetch: async (term) => {
          // The API lists matches by name; the closest ones come first here:
          // the exact name, then names starting with the term, then the rest.
          const res = await api.get('/packages', { query: { distribution: state.distribution, architecture: state.architecture, search: term, limit: '100' } });
          const t = term.toLowerCase();
          const rank = (p) => (p.name === t ? 0 : p.name.startsWith(t) ? 1 : 2);
          const found = (res.data || []).map((p, i) => [rank(p), i, p]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]).slice(0, 50);
          found.total = res.meta?.count ?? found.length;
          return found;
        },
        renderOption: (p) => [h('span', { class: 'wizard-option-name', text: p.name }), state.packages.includes(p.name) ? h('span', { class: 'badge', text: 'Added' }) : null,
          h('span', { class: 'wizard-option-text', text: [p.version, p.summary].filter(Boolean).join(' — ') })],
        onChoose: (p) => {
          if (!state.packages.includes(p.name)) state.packages.push(p.name);
          dropErrors('customizations.packages');
          rerender(control.id).then(() => { main.querySelector('.wizard-search-status').textContent = `Added ${p.name}.`; });
        },
      });
      f.insertBefore(cb.list, control.nextSibling);
      f.append(cb.status);
      body.append(f);
      const list = chips(state.packages, 'Chosen packages', (i) => {
        state.packages.splice(i, 1);
        dropErrors('customizations.packages');
        rerender(state.packages.length ? `wz-pkg-chip-${Math.min(i, state.packages.length - 1)}` : control.id);
      }, (i) => `customizations.packages[${i}]`);
      list.querySelectorAll('button').forEach((b, i) => { b.id = `wz-pkg-chip-${i}`; });
      body.append(h('h3', { class: 'wizard-subhead', text: `Chosen packages (${state.packages.length})` }),
        state.packages.length ? list : h('p', { class: 'empty-state', text: 'No extra packages chosen.' }));
    },

    async users(body) {
      body.append(h('p', { class: 'hint', text: 'Accounts to create in the image. Give each user an SSH public key, a password, or both.' }));
      const rows = h('div', { class: 'wizard-list', 'data-field': 'customizations.users' });
      body.append(rows);
      state.users.forEach((u, i) => {
        const p = `customizations.users[${i}]`;
        const n = i + 1;
        const card = h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', { text: `User ${n}${u.name ? ': ' + u.name : ''}` }));
        const name = input(u.name, (v) => { u.name = v; }, { id: `wz-user-${i}-name`, autocomplete: 'off', spellcheck: 'false' });
        const key = h('textarea', { id: `wz-user-${i}-key`, rows: '3', spellcheck: 'false', placeholder: 'ssh-ed25519 AAAA… user@host', oninput: (e) => { u.ssh_key = e.target.value; } });
        key.value = u.ssh_key;
        const groups = input(u.groups, (v) => { u.groups = v; }, { id: `wz-user-${i}-groups`, autocomplete: 'off', placeholder: 'sudo, adm' });
        const pw = input(u.password, (v) => { u.password = v; }, { id: `wz-user-${i}-password`, type: 'password', autocomplete: 'new-password' });
        card.append(
          h('div', { class: 'wizard-grid' },
            field('User name', name, { path: `${p}.name`, hint: 'Lowercase letters, digits, _ and -, e.g. ops.' }),
            field('Groups', groups, { path: `${p}.groups`, hint: 'Separated by commas, e.g. sudo.' })),
          field('SSH public key', key, { path: `${p}.ssh_key`, check: 'ssh', wide: true, hint: 'The contents of a .pub file; one key per line.' }),
          field('Password', pw, { path: `${p}.password`, hint: u.hadPassword ? 'This user had a password; the server does not return it. Enter it again to keep one.' : 'Optional. Stored hashed; never shown again.' }),
          h('div', { class: 'wizard-row-actions' }, h('button', { type: 'button', class: 'btn btn-small', text: `Remove user ${n}`, onclick: () => {
            state.users.splice(i, 1);
            serverErrors = serverErrors.filter((e) => !e.field.startsWith('customizations.users'));
            rerender('wz-add-user');
          } })));
        rows.append(card);
      });
      if (!state.users.length) body.append(h('p', { class: 'empty-state', text: 'No users yet. Images without users can only be reached through their console (if at all).' }));
      body.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-user', text: 'Add user', onclick: () => {
        state.users.push({ name: '', ssh_key: '', groups: '', password: '', hadPassword: false });
        rerender(`wz-user-${state.users.length - 1}-name`);
      } }));
    },

    async system(body) {
      const host = input(state.hostname, (v) => { state.hostname = v; }, { id: 'wz-hostname', autocomplete: 'off', spellcheck: 'false', placeholder: 'web01.example.com' });
      const tz = h('input', { type: 'text', id: 'wz-timezone', value: state.timezone, placeholder: 'Search, e.g. Berlin', spellcheck: 'false', oninput: (e) => { state.timezone = e.target.value; } });
      const zones = (typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : []);
      if (!zones.includes('UTC')) zones.unshift('UTC');
      const cb = combobox({
        control: tz,
        fetch: async (term) => {
          const t = term.toLowerCase().replace(/\s+/g, '_');
          return zones.filter((z) => z.toLowerCase().includes(t)).slice(0, 50);
        },
        renderOption: (z) => [h('span', { class: 'wizard-option-name', text: z })],
        onChoose: (z) => { state.timezone = z; tz.value = z; dropErrors('customizations.timezone'); },
      });
      const tzField = field('Time zone', tz, { path: 'customizations.timezone.timezone', hint: 'Type part of a city or region and pick from the list; empty keeps the image’s default (UTC).' });
      tzField.insertBefore(cb.list, tz.nextSibling);
      tzField.append(cb.status);
      const kb = input(state.keyboard, (v) => { state.keyboard = v; }, { id: 'wz-keyboard', autocomplete: 'off', placeholder: 'us' });
      const kargs = input(state.kernelAppend, (v) => { state.kernelAppend = v; }, { id: 'wz-kernel-append', autocomplete: 'off', spellcheck: 'false', placeholder: 'console=ttyS0,115200' });
      body.append(h('div', { class: 'wizard-grid' },
        field('Hostname', host, { path: 'customizations.hostname', hint: 'Letters, digits and hyphens, in dot-separated labels.' }),
        tzField,
        chipList({ label: 'Languages', list: state.languages, path: 'customizations.locale.languages', inputId: 'wz-languages', placeholder: 'en_US.UTF-8', hint: 'Locales to generate; the first is the default. Press Enter to add.', rerender }),
        field('Keyboard layout', kb, { path: 'customizations.locale.keyboard', hint: 'Console keymap, e.g. us or de-latin1.' })),
      field('Kernel arguments', kargs, { path: 'customizations.kernel.append', hint: 'Appended to the kernel command line, separated by spaces.', wide: true }));
    },

    async services(body) {
      const svc = (k, label, hint) => chipList({ label, list: state.services[k], path: `customizations.services.${k}`, inputId: `wz-services-${k}`, placeholder: 'nginx.service', hint, rerender });
      body.append(h('h3', { class: 'wizard-subhead', text: 'Services' }),
        h('div', { class: 'wizard-grid' },
          svc('enabled', 'Enabled services', 'Started at boot. Press Enter to add.'),
          svc('disabled', 'Disabled services', 'Not started at boot.'),
          svc('masked', 'Masked services', 'Cannot be started at all.')),
        h('h3', { class: 'wizard-subhead', text: 'Firewall' }),
        h('div', { class: 'wizard-grid' },
          chipList({ label: 'Open ports', list: state.firewall.ports, path: 'customizations.firewall.ports', inputId: 'wz-firewall-ports', placeholder: '8080:tcp', validate: checkFirewallPort, hint: 'PORT:PROTOCOL, START-END:PROTOCOL or SERVICE:PROTOCOL, e.g. 8080:tcp.', rerender }),
          chipList({ label: 'Allowed firewall services', list: state.firewall.enabled, path: 'customizations.firewall.services.enabled', inputId: 'wz-firewall-enabled', placeholder: 'ssh', hint: 'Firewall service names, e.g. ssh or https.', rerender }),
          chipList({ label: 'Blocked firewall services', list: state.firewall.disabled, path: 'customizations.firewall.services.disabled', inputId: 'wz-firewall-disabled', placeholder: 'dhcpv6-client', rerender })));
    },

    async filesystems(body) {
      body.append(h('p', { class: 'hint', text: 'Extra mount points on the image’s disk and their minimum sizes. The root filesystem grows to fill the rest.' }));
      const rows = h('div', { class: 'wizard-list', 'data-field': 'customizations.filesystem' });
      body.append(rows);
      state.filesystems.forEach((f, i) => {
        const p = `customizations.filesystem[${i}]`;
        const mp = input(f.mountpoint, (v) => { f.mountpoint = v; }, { id: `wz-fs-${i}-mountpoint`, autocomplete: 'off', spellcheck: 'false', placeholder: '/var' });
        const size = h('input', { type: 'number', id: `wz-fs-${i}-size`, min: '0', step: 'any', inputmode: 'decimal', value: f.size, oninput: (e) => { f.size = e.target.value; } });
        const unit = h('select', { id: `wz-fs-${i}-unit`, onchange: (e) => { f.unit = e.target.value; } },
          SIZE_UNITS.map((u) => h('option', { value: u, text: u })));
        unit.value = f.unit;
        const sizeField = field('Minimum size', size, { path: `${p}.min_size` });
        sizeField.querySelector('label').after(h('div', { class: 'wizard-inline' }, size, h('label', { for: unit.id, class: 'visually-hidden', text: `Unit of the minimum size of filesystem ${i + 1}` }), unit));
        rows.append(h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', { text: `Filesystem ${i + 1}` }),
          h('div', { class: 'wizard-grid' },
            field('Mount point', mp, { path: `${p}.mountpoint`, check: 'mountpoint', hint: 'An absolute path such as /var, /home or /data.' }),
            sizeField),
          h('div', { class: 'wizard-row-actions' }, h('button', { type: 'button', class: 'btn btn-small', text: `Remove filesystem ${i + 1}`, onclick: () => {
            state.filesystems.splice(i, 1);
            serverErrors = serverErrors.filter((e) => !e.field.startsWith('customizations.filesystem'));
            rerender('wz-add-fs');
          } }))));
      });
      if (!state.filesystems.length) body.append(h('p', { class: 'empty-state', text: 'Everything is on the root filesystem.' }));
      body.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-fs', text: 'Add filesystem', onclick: () => {
        state.filesystems.push({ mountpoint: '', size: '', unit: 'GiB' });
        rerender(`wz-fs-${state.filesystems.length - 1}-mountpoint`);
      } }));
    },

    async files(body) {
      const ownership = (x, p, prefix, n) => [
        field('Mode', input(x.mode, (v) => { x.mode = v; }, { id: `${prefix}-mode`, placeholder: '0644', inputmode: 'numeric', autocomplete: 'off' }), { path: `${p}.mode`, hint: 'Octal, e.g. 0644.' }),
        field('Owner', input(x.user, (v) => { x.user = v; }, { id: `${prefix}-user`, placeholder: 'root', autocomplete: 'off' }), { path: `${p}.user`, hint: 'User name or id.' }),
        field('Group', input(x.group, (v) => { x.group = v; }, { id: `${prefix}-group`, placeholder: 'root', autocomplete: 'off' }), { path: `${p}.group`, hint: 'Group name or id.' }),
      ];
      body.append(h('h3', { class: 'wizard-subhead', text: 'Files' }));
      const fileRows = h('div', { class: 'wizard-list', 'data-field': 'customizations.files' });
      body.append(fileRows);
      state.files.forEach((f, i) => {
        const p = `customizations.files[${i}]`;
        const prefix = `wz-file-${i}`;
        const content = h('textarea', { id: `${prefix}-data`, rows: '5', spellcheck: 'false', oninput: (e) => { f.data = e.target.value; } });
        content.value = f.data;
        fileRows.append(h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', { text: `File ${i + 1}` }),
          field('File path', input(f.path, (v) => { f.path = v; }, { id: `${prefix}-path`, placeholder: '/etc/motd', autocomplete: 'off', spellcheck: 'false' }), { path: `${p}.path`, hint: 'Absolute; missing parent directories are created.', wide: true }),
          h('div', { class: 'wizard-grid wizard-grid-3' }, ownership(f, p, prefix, i + 1)),
          field('Content', content, { path: `${p}.data`, wide: true }),
          h('div', { class: 'wizard-row-actions' }, h('button', { type: 'button', class: 'btn btn-small', text: `Remove file ${i + 1}`, onclick: () => {
            state.files.splice(i, 1);
            serverErrors = serverErrors.filter((e) => !e.field.startsWith('customizations.files'));
            rerender('wz-add-file');
          } }))));
      });
      body.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-file', text: 'Add file', onclick: () => {
        state.files.push({ path: '', mode: '', user: '', group: '', data: '' });
        rerender(`wz-file-${state.files.length - 1}-path`);
      } }));
      body.append(h('h3', { class: 'wizard-subhead', text: 'Directories' }));
      const dirRows = h('div', { class: 'wizard-list', 'data-field': 'customizations.directories' });
      body.append(dirRows);
      state.directories.forEach((d, i) => {
        const p = `customizations.directories[${i}]`;
        const prefix = `wz-dir-${i}`;
        const parents = h('input', { type: 'checkbox', id: `${prefix}-parents`, checked: d.ensure_parents, onchange: (e) => { d.ensure_parents = e.target.checked; dropErrors(`${p}.ensure_parents`); } });
        parents.dataset.field = `${p}.ensure_parents`;
        dirRows.append(h('fieldset', { class: 'wizard-row', 'data-field': p }, h('legend', { text: `Directory ${i + 1}` }),
          field('Directory path', input(d.path, (v) => { d.path = v; }, { id: `${prefix}-path`, placeholder: '/srv/app', autocomplete: 'off', spellcheck: 'false' }), { path: `${p}.path`, wide: true }),
          h('div', { class: 'wizard-grid wizard-grid-3' }, ownership(d, p, prefix, i + 1)),
          h('div', { class: 'field wizard-check' }, parents, h('label', { for: parents.id, text: 'Create missing parent directories' }),
            h('p', { class: 'field-error', role: 'alert', id: parents.id + '-error', hidden: true })),
          h('div', { class: 'wizard-row-actions' }, h('button', { type: 'button', class: 'btn btn-small', text: `Remove directory ${i + 1}`, onclick: () => {
            state.directories.splice(i, 1);
            serverErrors = serverErrors.filter((e) => !e.field.startsWith('customizations.directories'));
            rerender('wz-add-dir');
          } }))));
      });
      body.append(h('button', { type: 'button', class: 'btn', id: 'wz-add-dir', text: 'Add directory', onclick: () => {
        state.directories.push({ path: '', mode: '', user: '', group: '', ensure_parents: false });
        rerender(`wz-dir-${state.directories.length - 1}-path`);
      } }));
    },

    async review(body, actions) {
      const name = input(state.name, (v) => { state.name = v; scheduleToml(); }, { id: 'wz-name', autocomplete: 'off', spellcheck: 'false', placeholder: 'web-server', required: true });
      const desc = h('textarea', { id: 'wz-description', rows: '2', oninput: (e) => { state.description = e.target.value; scheduleToml(); } });
      desc.value = state.description;
      body.append(h('div', { class: 'wizard-grid' },
        field('Name', name, { path: 'name', hint: 'Names the blueprint and the image: letters, digits, -, _ and ., e.g. web-server.' }),
        field('Description', desc, { path: 'description', hint: 'Optional.' })));
      body.append(h('h3', { class: 'wizard-subhead', text: 'Summary' }), summary());
      const pre = h('pre', { class: 'code wizard-toml', id: 'wz-toml', tabindex: '0', 'aria-label': 'Blueprint as TOML', 'aria-busy': 'true' });
      const copy = h('button', { type: 'button', class: 'btn btn-small', text: 'Copy TOML', onclick: () => copyToml(pre) });
      body.append(h('div', { class: 'wizard-toml-head' }, h('h3', { class: 'wizard-subhead', id: 'wz-toml-title', text: 'Blueprint (TOML)' }), copy),
        h('p', { class: 'hint', text: 'The blueprint in the osbuild format, as kiln’s export gives it; it works with kiln blueprint and other osbuild tools.' }), pre);
      const save = h('button', { type: 'button', class: 'btn', text: 'Save blueprint', onclick: () => submit('save') });
      const build = h('button', { type: 'button', class: 'btn btn-primary', text: 'Build image', onclick: () => submit('build') });
      actions.append(h('span', { class: 'wizard-spacer' }), save, build);
      if (editing) actions.append(h('p', { class: 'hint wizard-actions-note', text: `Saving records a new version of ${editing.name}.` }));
      showToml(pre);
      scheduleToml(0);
    },
  };

  // ---- review helpers

  function summary() {
    const c = customizations(state);
    const row = (label, value, stepIndex) => [h('dt', { text: label }),
      h('dd', {}, value || h('span', { class: 'hint', text: 'None' }), ' ',
        h('button', { type: 'button', class: 'btn btn-ghost btn-small wizard-edit', text: 'Edit', 'aria-label': `Edit ${label}`, onclick: () => go(stepIndex, { focus: 'heading' }) }))];
    const list = (xs) => (xs && xs.length ? xs.join(', ') : '');
    const fw = [...(c.firewall?.ports || []), ...(c.firewall?.services?.enabled || []).map((x) => `${x} (service)`)];
    const svc = ['enabled', 'disabled', 'masked'].map((k) => (c.services?.[k]?.length ? `${k}: ${c.services[k].join(', ')}` : '')).filter(Boolean).join('; ');
    return h('dl', { class: 'wizard-summary' },
      row('Distribution', state.distribution, 0),
      row('Architecture', state.architecture, 1),
      row('Image types', list(state.imageTypes), 2),
      row('Target', 'Download from kiln', 3),
      row('Packages', list(state.packages), 4),
      row('Users', list(state.users.map((u) => u.name + (u.ssh_key.trim() ? ' (SSH key)' : '') + (u.password ? ' (password)' : ''))), 5),
      row('System', [c.hostname && `hostname ${c.hostname}`, c.timezone?.timezone && `time zone ${c.timezone.timezone}`,
        c.locale?.languages && `languages ${c.locale.languages.join(', ')}`, c.locale?.keyboard && `keyboard ${c.locale.keyboard}`,
        c.kernel?.append && `kernel arguments ${c.kernel.append}`].filter(Boolean).join('; '), 6),
      row('Services & firewall', [svc, fw.length ? `firewall: ${fw.join(', ')}` : ''].filter(Boolean).join('; '), 7),
      row('Filesystems', list((c.filesystem || []).map((f) => `${f.mountpoint} ≥ ${f.min_size ?? '?'}`)), 8),
      row('Files & directories', list([...(c.files || []).map((f) => f.path), ...(c.directories || []).map((d) => d.path + '/')]), 9));
  }

  function showToml(pre) {
    pre = pre || main.querySelector('#wz-toml');
    if (!pre) return;
    pre.setAttribute('aria-busy', toml.loading ? 'true' : 'false');
    pre.classList.toggle('wizard-toml-error', !!toml.error);
    if (toml.error) pre.textContent = toml.error;
    else pre.textContent = toml.text || (toml.loading ? 'Rendering…' : '');
  }

  let tomlTimer = null;
  function scheduleToml(ms = 400) {
    clearTimeout(tomlTimer);
    tomlTimer = later(renderToml, ms);
  }

  async function renderToml() {
    const body = blueprintRequest(state);
    if (!body.name) body.name = 'unnamed';
    const key = JSON.stringify(body);
    if (key === toml.key && (toml.text || toml.error)) { showToml(); return; }
    toml = { ...toml, key, loading: true };
    showToml();
    try {
      const res = await api.post('/blueprints/render', body);
      if (toml.key !== key) return;
      toml = { key, text: res.toml, error: null, loading: false };
    } catch (err) {
      if (toml.key !== key) return;
      const errs = apiErrors(err).filter((e) => !(e.field === 'name' && !state.name.trim()));
      toml = { key, text: '', loading: false, error: err?.status === 404 && !err.errors?.some((e) => e.field)
        ? 'The server cannot render blueprints yet.'
        : 'The blueprint has problems the server reported:\n' + errs.map((e) => (e.field ? `• ${e.field}: ` : '• ') + e.detail).join('\n') };
    }
    if (alive) showToml();
  }

  async function copyToml(pre) {
    const text = toml.text;
    if (!text) { toast('There is no TOML to copy yet.', 'error'); return; }
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
    toast('Blueprint TOML copied.', 'ok');
  }

  // ---- submitting

  async function submit(kind) {
    if (busy) return;
    busy = true;
    main.querySelectorAll('.wizard-actions button').forEach((b) => { b.disabled = true; });
    main.querySelector('.wizard-actions')?.setAttribute('aria-busy', 'true');
    serverErrors = [];
    try {
      if (kind === 'save') {
        const body = blueprintRequest(state);
        const res = editing
          ? await api.put('/blueprints/' + encodeURIComponent(editing.id), body)
          : await api.post('/blueprints', body);
        toast(editing ? `Saved a new version of ${body.name}.` : `Saved blueprint ${body.name}.`, 'ok');
        navigate('#/blueprints/' + (res?.id || editing?.id));
        return;
      }
      const ids = [];
      for (const type of state.imageTypes) {
        try {
          const res = await api.post('/compose', composeRequest(state, type));
          ids.push(res.id);
        } catch (err) {
          if (ids.length) toast(`${ids.length} of ${state.imageTypes.length} builds started; ${type} was refused.`, 'error');
          throw err;
        }
      }
      toast(ids.length === 1 ? 'Build started.' : `${ids.length} builds started.`, 'ok');
      navigate(ids.length === 1 ? '#/composes/' + ids[0] : '#/');
    } catch (err) {
      if (!alive) return;
      if (err?.status === 401) return; // api.js sends the user to sign in
      serverErrors = apiErrors(err);
      busy = false;
      const first = Math.min(...serverErrors.map((e) => stepOf(e.field)));
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
  if (!editing) main.querySelector('input')?.focus();

  return () => {
    alive = false;
    for (const t of timers) clearTimeout(t);
  };
}
