// Sign in with an API token. The token is checked against the API before
// it is kept, and kept only in this tab's sessionStorage.

import { api, session } from '../api.js';
import { clearErrors, field, h, logo, setError } from '../ui.js';

export async function render(root, { query, navigate, toast }) {
  const next = query.get('next') || '#/';
  const safeNext = next.startsWith('#/') && !next.startsWith('#/signin') ? next : '#/';

  if (session.gateway && !session.token) {
    root.append(h('div', { class: 'page page-narrow' },
      h('div', { class: 'card signin-card' },
        h('div', { class: 'signin-logo' }, logo(44)),
        h('h1', {}, 'You are signed in'),
        h('p', {}, 'Your organization\'s gateway tells kiln who you are, so no API token is needed.'),
        h('a', { class: 'btn btn-primary', href: safeNext }, 'Continue'))));
    return undefined;
  }

  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true, class: 'input mono' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const form = h('form', { class: 'form', novalidate: true },
    field('API token', input, { hint: h('span', {}, 'Ask your administrator for a token, or create one with ', h('code', {}, 'kiln token create --org ORG --name NAME'), '.'), name: 'token' }),
    submit,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const token = input.value.trim();
    if (!token) {
      setError(input, 'Enter your API token.');
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      await api.get('/composes', { query: { limit: 1 }, token, noRedirect: true });
      session.token = token;
      window.dispatchEvent(new Event('kiln:signedin'));
      toast('Signed in.');
      navigate(safeNext);
    } catch (err) {
      const reason = err.status === 401
        ? `This token was not accepted: ${err.message}.`.replace(/\.\.$/, '.')
        : err.message;
      setError(input, reason);
      input.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });

  root.append(h('div', { class: 'page page-narrow' },
    h('div', { class: 'card signin-card' },
      h('div', { class: 'signin-logo' }, logo(44)),
      h('h1', {}, 'Sign in to kiln'),
      h('p', { class: 'muted' }, 'Build bootable Debian images from blueprints. Sign in with your organization\'s API token.'),
      form)));
  input.focus();
  return undefined;
}
