/**
 * Sign in or create an account (REST `/v1/auth/login`, `/register` through the SDK's
 * AuthSession). On success it hands the caller who signed in.
 */

import { AuthSession, RestClient, isSwitchyardError } from '../../typescript/src/index.js';
import { errorText, h, setText, uid } from './dom.js';
import type { Profile } from './session-store.js';

function friendly(e: unknown, mode: 'login' | 'register'): string {
  if (isSwitchyardError(e)) {
    if (e.code === 'network_error' || e.code === 'timeout') return "Can't reach the server. Check your connection and try again.";
    if (e.code === 'mfa_required') return 'Enter the 6-digit code from your authenticator app (or a recovery code).';
    if (e.code === 'invalid_mfa_code') return 'That code is wrong or was already used. Enter the current one.';
    if (mode === 'login' && (e.status === 401 || e.code === 'invalid_credentials')) return 'Wrong e-mail or password.';
    if (e.status === 429) return 'Too many attempts. Wait a moment and try again.';
  }
  return errorText(e);
}

export function signInView(auth: AuthSession, rest: RestClient, done: (p: Profile) => void, notice?: string): HTMLElement {
  const emailId = uid('email');
  const pwId = uid('password');
  const pwHint = uid('pw-hint');
  const email = h('input', { id: emailId, type: 'email', name: 'email', autocomplete: 'username', required: true, inputmode: 'email', autocapitalize: 'off', spellcheck: 'false' });
  const password = h('input', { id: pwId, type: 'password', name: 'password', autocomplete: 'current-password', required: true, minlength: 8, 'aria-describedby': pwHint });
  const codeId = uid('code');
  const code = h('input', { id: codeId, type: 'text', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', autocapitalize: 'off', spellcheck: 'false' });
  // Shown once the server says the account has a second factor.
  const codeField = h('div', { class: 'field', hidden: true }, h('label', { for: codeId }, 'Authentication code'), code);
  const error = h('p', { class: 'form-error', role: 'alert' });
  const status = h('p', { class: 'muted', role: 'status' }, notice ?? '');
  const signIn = h('button', { type: 'submit', class: 'primary', value: 'login' }, 'Sign in');
  const register = h('button', { type: 'submit', value: 'register' }, 'Create account');
  let busy = false;

  const form = h(
    'form',
    { class: 'card signin', 'aria-labelledby': 'signin-heading', novalidate: true },
    h('h1', { id: 'signin-heading' }, 'switchyard'),
    h('p', { class: 'muted' }, 'Sign in to work on sessions together, live.'),
    h('div', { class: 'field' }, h('label', { for: emailId }, 'E-mail'), email),
    h('div', { class: 'field' }, h('label', { for: pwId }, 'Password'), password, h('p', { id: pwHint, class: 'hint' }, 'At least 8 characters.')),
    codeField,
    error,
    h('div', { class: 'actions' }, signIn, register),
    status,
  );

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (busy) return;
    const mode = (ev as SubmitEvent).submitter === register ? 'register' : 'login';
    const addr = email.value.trim();
    if (!addr || !email.validity.valid) {
      setText(error, 'Enter your e-mail address.');
      email.focus();
      return;
    }
    if (password.value.length < 8) {
      setText(error, 'The password needs at least 8 characters.');
      password.focus();
      return;
    }
    busy = true;
    setText(error, '');
    setText(status, mode === 'register' ? 'Creating your account…' : 'Signing in…');
    form.setAttribute('aria-busy', 'true');
    signIn.disabled = register.disabled = true;
    void (async () => {
      try {
        let profile: Profile;
        if (mode === 'register') {
          const user = await auth.register(addr, password.value);
          profile = { userId: user.id, email: user.email };
        } else {
          const typed = code.value.replace(/\s+/g, '');
          const second = codeField.hidden || !typed ? {} : /^\d{6}$/.test(typed) ? { totpCode: typed } : { recoveryCode: typed };
          await auth.login(addr, password.value, second);
          const me = await rest.me();
          profile = { userId: me.id, email: me.email };
        }
        password.value = '';
        code.value = '';
        done(profile);
      } catch (e) {
        setText(status, '');
        setText(error, friendly(e, mode));
        if (isSwitchyardError(e) && (e.code === 'mfa_required' || e.code === 'invalid_mfa_code')) {
          codeField.hidden = false;
          code.value = '';
          code.focus();
        } else {
          password.focus();
        }
      } finally {
        busy = false;
        form.removeAttribute('aria-busy');
        signIn.disabled = register.disabled = false;
      }
    })();
  });

  queueMicrotask(() => email.focus());
  return h('main', { class: 'signin-page' }, form);
}
