// The wizard's model: the steps, the state object that holds everything
// the user enters (kept apart from the DOM, so nothing typed is lost when
// moving between steps or when the API rejects a request), reading a
// stored blueprint into it, and turning it into the API's blueprint and
// compose requests. Pure functions only: no DOM, no requests.

// STEPS are the wizard's steps in order: id names the step's renderer,
// title is what the stepper and the step's heading say. Four steps, as
// the field uses them: what is built and where it goes (asking for the
// name first), what goes into it, how the system is set up, and the
// review. Each step has one section per topic (see steps.js).
export const STEPS = [
  { id: 'output', title: 'Image output' },
  { id: 'content', title: 'Content' },
  { id: 'system', title: 'System' },
  { id: 'review', title: 'Review' },
];
// REVIEW is the index of the last step, where the request is sent.
export const REVIEW = STEPS.length - 1;

// missingChoices says what the step with id still needs before the
// wizard moves on from it: the choices no request can be made without,
// every one of them at once, in the order the step asks for them.
export function missingChoices(id, s) {
  const missing = [];
  if (id !== 'output') return missing;
  if (!s.name.trim()) missing.push('Enter a name.');
  if (!s.distribution) missing.push('Choose a distribution.');
  else if (!s.architecture) missing.push('Choose an architecture.');
  else if (!s.imageTypes.length) missing.push('Choose at least one image type.');
  return missing;
}

// SIZE_UNITS are the units a filesystem's minimum size is entered in.
export const SIZE_UNITS = ['MiB', 'GiB', 'TiB'];
const SIZE_FACTORS = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4, PiB: 1024 ** 5, EiB: 1024 ** 6,
  KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, PB: 1e15, EB: 1e18 };

// ---------------------------------------------------------------- the state

// newState is the state of a wizard started from nothing.
export function newState() {
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
    // repositories and firstboot: see newRepository and newScript.
    repositories: [], firstboot: [],
    // uploads: where each image type goes, by its name (see newUpload);
    // an image type without one goes to DEFAULT_TARGET.
    uploads: {},
    // Customizations the wizard has no controls for, kept from a loaded
    // blueprint so saving does not drop them.
    keep: {},
  };
}

// splitSize turns a blueprint's size (bytes, or a string such as "2 GiB")
// into the number and unit the wizard shows, in the largest unit that
// keeps the number whole.
export function splitSize(v) {
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

// stateFromBlueprint is the state of a wizard editing the stored blueprint
// bp (as GET /blueprints/{id} returns it).
export function stateFromBlueprint(bp) {
  const s = newState();
  const c = structuredClone(bp.customizations || {});
  s.name = bp.name || '';
  s.description = bp.description || '';
  s.distribution = bp.distribution || '';
  const reqs = bp.image_requests || [];
  s.architecture = reqs[0]?.architecture || '';
  s.imageTypes = [...new Set(reqs.map((r) => r.image_type))];
  for (const r of reqs) if (r.upload_request?.type && !s.uploads[r.image_type]) s.uploads[r.image_type] = uploadFromRequest(r.upload_request);
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
  s.repositories = (c.custom_repositories || []).map(repositoryFromRequest);
  s.firstboot = (c.firstboot?.scripts || []).map(scriptFromRequest);
  // What the wizard does not edit rides along unchanged.
  for (const k of ['groups']) if (c[k]) s.keep[k] = c[k];
  if (c.timezone?.ntpservers) s.keep.ntpservers = c.timezone.ntpservers;
  if (c.kernel?.name) s.keep.kernelName = c.kernel.name;
  return s;
}

// owner is a file's user or group as the API takes it: an id or a name.
const owner = (v) => (/^[0-9]+$/.test(v) ? Number(v) : v);

// customizations builds the request's customizations from the state. Every
// row the user added is sent, even when incomplete, so its index in the
// request is its index on screen and the API's field paths point at it.
export function customizations(s) {
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
  if (s.repositories.length) c.custom_repositories = s.repositories.map(repositoryRequest);
  if (s.firstboot.length) c.firstboot = { scripts: s.firstboot.map(scriptRequest) };
  return c;
}

// ------------------------------------- repositories and first-boot scripts

// words splits a list typed into one input (spaces or commas between).
export const words = (v) => String(v || '').split(/[\s,]+/).filter(Boolean);

// splitKeys reads GPG keys typed into one box: each ASCII-armored block
// (BEGIN … END) is one key, and each other non-blank line one URL.
export function splitKeys(text) {
  const keys = [];
  let block = null;
  for (const line of String(text || '').split('\n')) {
    if (block) {
      block.push(line);
      if (/^-----END /.test(line.trim())) { keys.push(block.join('\n').trim()); block = null; }
    } else if (/^-----BEGIN /.test(line.trim())) block = [line.trim()];
    else if (line.trim()) keys.push(line.trim());
  }
  if (block) keys.push(block.join('\n').trim());
  return keys;
}

// REPOSITORY_FIELDS are the fields of a custom repository the wizard
// edits; a loaded repository's others ride along in loaded.
const REPOSITORY_FIELDS = ['id', 'name', 'baseurl', 'suite', 'components', 'gpgkey', 'check_gpg', 'enabled', 'install_from', 'priority', 'filename'];

// newRepository is a custom repository as the wizard holds it: lists as
// the text typed, and loaded, the request's repository it was read from.
export function newRepository() {
  return { id: '', name: '', baseurls: '', suite: '', components: '', gpgkeys: '',
    check_gpg: true, enabled: true, install_from: false, priority: '', filename: '', loaded: {} };
}

// repositoryFromRequest reads one of a request's custom_repositories.
export function repositoryFromRequest(r) {
  const o = newRepository();
  Object.assign(o, { id: r.id || '', name: r.name || '', baseurls: (r.baseurl || []).join(' '), suite: r.suite || '',
    components: (r.components || []).join(' '), gpgkeys: (r.gpgkey || []).join('\n'),
    check_gpg: r.check_gpg !== false, enabled: r.enabled !== false, install_from: !!r.install_from,
    priority: r.priority === undefined || r.priority === null ? '' : String(r.priority), filename: r.filename || '', loaded: r });
  return o;
}

// repositoryRequest is a custom repository of the request: what is typed,
// trimmed; a flag only when it differs from the API's default or was
// given; the loaded repository's keys unchanged while their text is.
export function repositoryRequest(r) {
  const o = {};
  for (const [k, v] of Object.entries(r.loaded)) if (!REPOSITORY_FIELDS.includes(k)) o[k] = v;
  o.id = r.id.trim();
  if (r.name.trim()) o.name = r.name.trim();
  if (words(r.baseurls).length) o.baseurl = words(r.baseurls);
  if (r.suite.trim()) o.suite = r.suite.trim();
  if (words(r.components).length) o.components = words(r.components);
  const keys = Array.isArray(r.loaded.gpgkey) && r.gpgkeys === r.loaded.gpgkey.join('\n') ? r.loaded.gpgkey : splitKeys(r.gpgkeys);
  if (keys.length) o.gpgkey = [...keys];
  for (const [k, dflt] of [['check_gpg', true], ['enabled', true], ['install_from', false]]) {
    if (r[k] !== dflt || k in r.loaded) o[k] = r[k];
  }
  const p = String(r.priority).trim();
  if (p) o.priority = /^-?[0-9]+$/.test(p) ? Number(p) : p;
  if (r.filename.trim()) o.filename = r.filename.trim();
  return o;
}

// newScript is a first-boot script as the wizard holds it; loaded is the
// request's script it was read from (its after and before ride along).
export function newScript() {
  return { name: '', contents: '', ignore_failure: false, loaded: {} };
}

// scriptFromRequest reads one of a request's firstboot.scripts.
export function scriptFromRequest(x) {
  return { name: x.name || '', contents: x.contents || '', ignore_failure: !!x.ignore_failure, loaded: x };
}

// scriptRequest is a first-boot script of the request, of type "custom"
// (the only one the API takes) unless it was read with another.
export function scriptRequest(x) {
  const o = { ...x.loaded, type: x.loaded.type || 'custom' };
  delete o.name;
  delete o.contents;
  if (x.name.trim()) o.name = x.name.trim();
  if (x.contents !== '') o.contents = x.contents;
  if (x.ignore_failure || 'ignore_failure' in x.loaded) o.ignore_failure = x.ignore_failure;
  return o;
}

// ------------------------------------------------------------- the targets

// DEFAULT_TARGET is where an image goes unless the user says otherwise:
// aws.s3, a download link, which every server has (with no bucket of its
// own configured, the link is to the service's artifact store) and which
// image-builder's clients and frontend ask for.
export const DEFAULT_TARGET = 'aws.s3';

// TARGET_OPTIONS are the options the wizard edits for each upload type,
// by image-builder's names; types not listed take none.
export const TARGET_OPTIONS = {
  aws: ['share_with_accounts', 'region'],
  gcp: ['share_with_accounts'],
  azure: ['resource_group', 'image_name', 'tenant_id', 'subscription_id', 'hyper_v_generation'],
  container: ['name', 'tag'],
};

// newUpload is an image type's target as the wizard holds it: the chosen
// type, and what was typed for every type that takes options, so that
// moving between targets loses nothing; only the chosen type's options
// are sent. extra keeps options of a loaded blueprint the wizard has no
// controls for, sent back while the type stays the same.
export function newUpload(type = DEFAULT_TARGET) {
  const options = {};
  for (const [t, names] of Object.entries(TARGET_OPTIONS)) {
    options[t] = {};
    for (const n of names) options[t][n] = n === 'share_with_accounts' ? [] : '';
  }
  return { type, options, extra: {}, extraFor: '' };
}

// uploadFromRequest reads an image request's upload_request into the
// wizard's form of it.
export function uploadFromRequest(ur) {
  const u = newUpload(ur.type);
  const known = TARGET_OPTIONS[ur.type] || [];
  for (const [k, v] of Object.entries(ur.options || {})) {
    if (known.includes(k)) u.options[ur.type][k] = Array.isArray(v) ? [...v] : String(v ?? '');
    else u.extra[k] = v;
  }
  u.extraFor = ur.type;
  return u;
}

// uploadOf is the target of image type in s, made (and kept in s) when
// the user has not chosen one yet.
export function uploadOf(s, type) {
  if (!s.uploads[type]) s.uploads[type] = newUpload();
  return s.uploads[type];
}

// uploadRequest is the upload_request of image type in s: its type, and
// the options filled in for it (none when nothing is).
export function uploadRequest(s, type) {
  const u = s.uploads[type];
  if (!u) return { type: DEFAULT_TARGET };
  const opts = {};
  for (const n of TARGET_OPTIONS[u.type] || []) {
    const v = u.options[u.type][n];
    if (Array.isArray(v) ? v.length : String(v).trim()) opts[n] = Array.isArray(v) ? [...v] : String(v).trim();
  }
  if (u.extraFor === u.type) Object.assign(opts, u.extra);
  return Object.keys(opts).length ? { type: u.type, options: opts } : { type: u.type };
}

// imageRequestFor is the image request for one image type of s.
export function imageRequestFor(s, type) {
  return { architecture: s.architecture, image_type: type, upload_request: uploadRequest(s, type) };
}

// blueprintRequest is the body of POST /blueprints (and PUT to save a new
// version) for s: one image request per chosen image type.
export function blueprintRequest(s) {
  const body = { name: s.name.trim(), distribution: s.distribution, image_requests: s.imageTypes.map((t) => imageRequestFor(s, t)) };
  if (s.description.trim()) body.description = s.description.trim();
  const c = customizations(s);
  if (Object.keys(c).length) body.customizations = c;
  return body;
}

// composeRequest is the body of POST /compose that builds s as one image
// of type.
export function composeRequest(s, type) {
  const body = { distribution: s.distribution, client_id: 'ui', image_requests: [imageRequestFor(s, type)] };
  if (s.name.trim()) body.image_name = s.name.trim();
  if (s.description.trim()) body.image_description = s.description.trim();
  const c = customizations(s);
  if (Object.keys(c).length) body.customizations = c;
  return body;
}

// ------------------------------------------------------- request field paths

// The compose request names the blueprint's name and description
// differently, and each compose carries one image request.
export function normalizePath(p) {
  if (p === 'image_name') return 'name';
  if (p === 'image_description') return 'description';
  return p;
}

// stepOf tells which step shows the field at a request path: its index
// in STEPS.
export function stepOf(path) {
  const p = normalizePath(path);
  const is = (prefix) => p === prefix || p.startsWith(prefix + '.') || p.startsWith(prefix + '[');
  if (['name', 'description', 'distribution', 'image_requests'].some(is)) return 0;
  if (['packages', 'custom_repositories', 'payload_repositories'].some((k) => is('customizations.' + k))) return 1;
  if (['users', 'groups', 'hostname', 'timezone', 'locale', 'kernel', 'services', 'firewall', 'filesystem', 'files', 'directories', 'firstboot']
    .some((k) => is('customizations.' + k))) return 2;
  return REVIEW;
}
