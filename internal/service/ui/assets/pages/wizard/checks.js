// The wizard's checks: the rules it applies to what a user types before
// the API sees it, and the wording of the API's own verdicts. Everything
// here is a pure function of its arguments (no DOM, no requests), so it
// can be tried on its own. The API stays the judge of what is valid:
// these only explain problems early.

import { normalizePath } from './state.js';

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
// validator accept: PORT, START-END or SERVICE, then :tcp, :udp, :sctp or
// :dccp (firewalld's four, which the image's nftables ruleset opens).
export function checkFirewallPort(s) {
  const fix = 'write PORT:PROTOCOL, START-END:PROTOCOL or SERVICE:PROTOCOL with protocol tcp, udp, sctp or dccp, e.g. "8080:tcp", "60000-61000:udp", "5000:sctp" or "https:tcp"';
  const m = /^(?:([0-9]{1,5})(?:-([0-9]{1,5}))?|[a-z][a-z0-9-]*):(tcp|udp|sctp|dccp)$/.exec(s);
  if (!m) return `"${s}" is not a port; ${fix}.`;
  if (m[1] !== undefined) {
    const lo = Number(m[1]);
    const hi = m[2] !== undefined ? Number(m[2]) : lo;
    if (lo < 1 || hi < 1 || lo > 65535 || hi > 65535) return `"${s}" has a port outside 1-65535.`;
    if (lo > hi) return `"${s}" has a range that ends before it starts.`;
  }
  return '';
}

// checkAWSAccount: an AWS account is shared with by its 12-digit ID.
export function checkAWSAccount(s) {
  if (/^[0-9]{12}$/.test(s)) return '';
  const digits = s.replace(/-/g, '');
  if (/^[0-9]{12}$/.test(digits)) return `"${s}" has dashes; write the account ID as its 12 digits only, e.g. ${digits}.`;
  return `"${s}" is not an AWS account ID: give the account's 12 digits, e.g. 123456789012.`;
}

// checkGCPMember: Google Cloud shares an image with IAM members, written
// with their kind: user:, serviceAccount:, group: (an e-mail address) or
// domain: (a domain name).
export function checkGCPMember(s) {
  const fix = 'write user:EMAIL, serviceAccount:EMAIL, group:EMAIL or domain:DOMAIN, e.g. user:alice@example.com';
  const m = /^([A-Za-z]+):(.*)$/.exec(s);
  if (!m) return `"${s}" does not say what kind of member it is; ${fix}.`;
  const [, kind, rest] = m;
  if (!['user', 'serviceAccount', 'group', 'domain'].includes(kind)) return `"${kind}:" is not a kind of member Google Cloud shares images with; ${fix}.`;
  if (kind === 'domain') return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(rest) ? '' : `"${rest}" is not a domain name; write e.g. domain:example.com.`;
  return /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(rest) ? '' : `"${rest}" is not an e-mail address; write e.g. ${kind}:alice@example.com.`;
}

// The request schema's rules for the names a user types, and how they are
// told: the same words the wizard gives the API's verdicts on them (see
// plainWords), so that a problem found here and found again by the API
// reads the same and is shown once.
const HOSTNAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const HOSTNAME_MAX = 253;
const ACCOUNT_RE = /^[a-z_][a-z0-9_-]*\$?$/;
const ACCOUNT_MAX = 32;
const HOSTNAME_RULE = 'is not a valid host name: use dot-separated labels of letters, digits and hyphens (up to 63 each), not starting or ending with a hyphen, e.g. web01.example.com.';
const ACCOUNT_RULE = 'is not a valid name: use lowercase letters, digits, _ and -, starting with a letter or _.';

// asSentence turns a rule ("is not …") into the message shown ("Not …").
const asSentence = (rule) => 'Not' + rule.slice('is not'.length);

// tooLong is the message for a value longer than max characters; the
// API's "maximum string length is N" is put in the same words.
const tooLong = (max) => `Too long: at most ${max} characters.`;

// checkHostname: the static host name, as the request schema takes it.
export function checkHostname(v) {
  if (v === '') return '';
  if (v.length > HOSTNAME_MAX) return tooLong(HOSTNAME_MAX);
  return HOSTNAME_RE.test(v) ? '' : asSentence(HOSTNAME_RULE);
}

// checkAccountName: a user's or a group's name, as the request schema
// takes it.
export function checkAccountName(v) {
  if (v === '') return '';
  if (v.length > ACCOUNT_MAX) return tooLong(ACCOUNT_MAX);
  return ACCOUNT_RE.test(v) ? '' : asSentence(ACCOUNT_RULE);
}

// splitGroups is a user's groups as typed (separated by commas or
// spaces) as the request lists them.
export const splitGroups = (text) => text.split(/[\s,]+/).filter(Boolean);

// checkGroups: each of the groups typed (comma-separated) is a name;
// the message of each bad one, once.
export function checkGroups(text) {
  return [...new Set(splitGroups(text).map(checkAccountName).filter(Boolean))].join(' ');
}

// fieldChecks are the checks a control runs as it is typed into, by the
// name in its data-check attribute; each returns a message or ''.
export const fieldChecks = {
  ssh: (v) => (v.trim() ? checkSSHKeys(v) : ''),
  mountpoint: (v) => checkMountpoint(v.trim()),
  hostname: (v) => checkHostname(v.trim()),
  account: (v) => checkAccountName(v.trim()),
  groups: (v) => checkGroups(v),
};

// checkOfField names the fieldChecks rule of the control at a request
// path that runs a check only when it is left (the steps mark the others
// with data-check themselves), or ''.
export function checkOfField(path) {
  if (path === 'customizations.hostname') return 'hostname';
  if (/^customizations\.users\[\d+\]\.name$/.test(path)) return 'account';
  if (/^customizations\.users\[\d+\]\.groups$/.test(path)) return 'groups';
  return '';
}

// clientProblems are the problems the wizard finds in state s by the
// request schema's own rules, as [{field, detail}] under the request's
// paths: the host name, each user's name and each of its groups. They are
// the API's verdicts, known before asking it.
export function clientProblems(s) {
  const out = [];
  const add = (field, detail) => { if (detail) out.push({ field, detail }); };
  add('customizations.hostname', checkHostname(s.hostname.trim()));
  s.users.forEach((u, i) => {
    add(`customizations.users[${i}].name`, checkAccountName(u.name.trim()));
    splitGroups(u.groups).forEach((g, j) => add(`customizations.users[${i}].groups[${j}]`, checkAccountName(g)));
  });
  return out;
}

// ------------------------------------------------------ the API's verdicts

// Request-schema errors quote the schema's regular expression; for the
// fields a user types, say in words what the schema accepts instead.
const PATTERN_RULES = [
  [/^customizations\.hostname$/, HOSTNAME_RULE],
  [/^customizations\.(users|groups)\[\d+\]\.name$|\.groups\[\d+\]$/, ACCOUNT_RULE],
  [/\.(user|group)$/, 'is not a user or group: give a name (lowercase letters, digits, _ and -) or a numeric id.'],
  [/\.mode$/, 'is not a mode: give octal permissions such as 0644 or 0755.'],
  [/^customizations\.timezone\.timezone$/, 'is not a time zone name; choose one from the list, e.g. Europe/Berlin.'],
  [/^customizations\.services\./, 'is not a systemd unit name: use letters, digits and : _ . @ -.'],
  [/^customizations\.firewall\.ports/, 'is not a port: write PORT:PROTOCOL, START-END:PROTOCOL or SERVICE:PROTOCOL, e.g. 8080:tcp.'],
  [/^customizations\.firewall\.services/, 'is not a firewall service name: use letters, digits, _ and -, as /etc/services writes them, e.g. ssh.'],
  [/^customizations\.packages/, 'is not a package name.'],
  [/\.path$|\.mountpoint$/, 'is not an absolute path; start it with /.'],
  [/\.options\.image_name$/, 'is not an Azure image name: use letters, digits, _, . and -, starting with a letter or digit and ending with a letter, digit or _, at most 60.'],
  [/\.options\.(name|tag)$/, 'is not a registry reference part: use lowercase letters, digits and . _ - in the name (with / between parts), letters, digits and . _ - in the tag.'],
  [/\.min_size$/, 'is not a size: give a number and a unit, e.g. 2 GiB.'],
];

// plainWords is the API's detail about field, in words when it only
// quotes a pattern or a length.
export function plainWords(field, detail) {
  const long = /^maximum string length is ([0-9]+)$/.exec(detail);
  if (long) return tooLong(long[1]);
  if (!/^string doesn't match the regular expression/.test(detail)) return detail;
  const rule = PATTERN_RULES.find(([re]) => re.test(field));
  return rule ? asSentence(rule[1]) : detail;
}

// apiErrors turns an ApiError into [{field, detail}], with the field as
// the wizard's controls name it and the detail in plain words. Errors from servers
// that put the path only into the detail ("path: message") get it back.
export function apiErrors(err) {
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
