// Upload targets as the pages show them: what each upload type is called
// and does, and where a delivered image went (an AMI and its region, a
// cloud image's name, a registry reference and digest, or a download
// link), read from a compose's upload status. The words and the facts
// are pure functions, tried on their own by the browser tests; the DOM
// helpers build the facts into elements.

import { formatDate, h } from './ui.js';

// TARGETS describe each upload type the API may offer: title names it in
// the wizard, short in lists, text says what happens to the image.
export const TARGETS = {
  'aws.s3': {
    title: 'Download link', short: 'Download link',
    text: 'kiln gives a link to download the image that works without signing in, for a limited time (image-builder’s aws.s3).',
  },
  local: {
    title: 'Download from kiln', short: 'Download from kiln',
    text: 'kiln keeps the image and you download it from the image’s page while kiln keeps it (kiln’s own upload type).',
  },
  aws: {
    title: 'Amazon Web Services (AMI)', short: 'AWS',
    text: 'The image is imported into EC2 as an AMI in the service’s account and shared with the AWS accounts you name.',
  },
  gcp: {
    title: 'Google Cloud', short: 'Google Cloud',
    text: 'The image is imported as a Compute Engine image in the service’s project and shared with the members you name.',
  },
  azure: {
    title: 'Microsoft Azure', short: 'Azure',
    text: 'The image is uploaded as a page blob and made a managed image in the resource group you name.',
  },
  'oci.objectstorage': {
    title: 'Oracle Cloud Object Storage', short: 'Oracle Cloud',
    text: 'The image is uploaded to the service’s bucket and its status gives a pre-authenticated link to it.',
  },
  container: {
    title: 'Container registry', short: 'Registry',
    text: 'The image is pushed to the service’s registry under the name and tag you give; its status gives the digest (a kiln extension).',
  },
};

/** targetTitle is the name of upload type type, or the type itself. */
export function targetTitle(type, short = false) {
  const t = TARGETS[type];
  return t ? (short ? t.short : t.title) : type || 'Download link';
}

// LINK_TYPES are the upload types whose image is downloaded by a link.
const LINK_TYPES = ['aws.s3', 'local', 'oci.objectstorage'];

/** isLinkTarget tells whether an image sent to type is downloaded by a link. */
export function isLinkTarget(type) {
  return !type || LINK_TYPES.includes(type);
}

/** uploadTypeOf is the upload type of compose c, from its status or request. */
export function uploadTypeOf(c) {
  const us = c.image_status && c.image_status.upload_status;
  if (us && us.type) return us.type;
  const ir = (c.request && c.request.image_requests && c.request.image_requests[0]) || {};
  return (ir.upload_request && ir.upload_request.type) || '';
}

/**
 * requestedFacts are what a compose's request asked of its target, as
 * {label, value} (the accounts shared with, the region, the resource
 * group, the registry name and tag), for the pages to show before the
 * image is delivered.
 */
export function requestedFacts(uploadRequest) {
  const o = (uploadRequest && uploadRequest.options) || {};
  const out = [];
  const add = (label, v) => { if (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && !v.length)) out.push({ label, value: Array.isArray(v) ? v.join(', ') : String(v) }); };
  switch (uploadRequest && uploadRequest.type) {
    case 'aws':
      add('Region', o.region);
      add('Shared with', o.share_with_accounts);
      break;
    case 'gcp':
      add('Shared with', o.share_with_accounts);
      break;
    case 'azure':
      add('Resource group', o.resource_group);
      add('Image name', o.image_name);
      add('Hyper-V generation', o.hyper_v_generation);
      add('Subscription', o.subscription_id);
      add('Tenant', o.tenant_id);
      break;
    case 'container':
      add('Name', o.name && `${o.name}:${o.tag || 'latest'}`);
      break;
    default:
  }
  return out;
}

/**
 * deliveredFacts say where a delivered image is, from its upload status
 * (image-builder's options for the type): a list of {label, value, copy}
 * (copy: the value is worth copying) and, for images downloaded by a
 * link, {label: 'Link', url, expires_at}. Nothing before the upload
 * succeeded.
 */
export function deliveredFacts(us) {
  if (!us || us.status !== 'success') return [];
  const o = us.options || {};
  const out = [];
  const add = (label, value, copy = true) => { if (value) out.push({ label, value: String(value), copy }); };
  switch (us.type) {
    case 'aws':
      add('AMI', o.ami);
      add('Region', o.region, false);
      break;
    case 'gcp':
      add('Image name', o.image_name);
      add('Project', o.project_id, false);
      break;
    case 'azure':
      add('Image name', o.image_name);
      break;
    case 'container':
      add('Reference', o.url);
      add('Digest', o.digest);
      break;
    default:
      if (o.url) out.push({ label: 'Link', url: o.url, expires_at: o.expires_at || '' });
  }
  return out;
}

/** shortDigest is a digest cut to its algorithm and first 12 hex digits. */
export function shortDigest(d) {
  const m = /^([a-z0-9]+):([0-9a-f]{12})[0-9a-f]+$/.exec(d || '');
  return m ? `${m[1]}:${m[2]}…` : d;
}

// ---- elements

/**
 * copyButton copies text to the clipboard (or, where the clipboard API is
 * not allowed, selects it and copies the selection) and says so on the
 * button for a moment. label names what it copies, for screen readers.
 */
export function copyButton(text, label) {
  const b = h('button', { type: 'button', class: 'btn btn-ghost btn-small copy', 'aria-label': label, title: label, dataset: { copy: text } }, 'Copy');
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = h('textarea', { class: 'visually-hidden', readonly: true, 'aria-hidden': 'true', tabindex: '-1' });
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    b.textContent = 'Copied';
    setTimeout(() => { b.textContent = 'Copy'; }, 2000);
  });
  return b;
}

/**
 * factValue shows one delivered fact: the value (a digest shortened, the
 * whole in its title) with a copy button, or a link with its expiry.
 * what names the image, for the buttons' labels.
 */
export function factValue(f, what) {
  if (f.url) {
    // A link that works without the API token: a signed one, or another
    // host's (a bucket's presigned URL). An unsigned API path needs the
    // token: the page's Download button fetches it.
    const abs = new URL(f.url, location.href);
    const plain = abs.origin !== location.origin || abs.searchParams.has('signature');
    return h('span', { class: 'delivery-link' },
      plain ? h('a', { href: abs.href, rel: 'noreferrer', class: 'delivery-url', 'aria-label': `Download URL of ${what}` }, 'URL') : h('span', {}, 'the image’s page'),
      f.expires_at ? h('span', { class: 'muted small' }, `until ${formatDate(f.expires_at)}`) : null,
      plain ? copyButton(abs.href, `Copy the download link of ${what}`) : null);
  }
  const shown = f.label === 'Digest' ? shortDigest(f.value) : f.value;
  return h('span', { class: 'delivery-value' },
    h('span', { class: 'mono', title: f.value, dataset: { fact: f.label } }, shown),
    f.copy ? copyButton(f.value, `Copy the ${f.label.toLowerCase()} of ${what}`) : null);
}
