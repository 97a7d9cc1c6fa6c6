/**
 * The entry: find the server, restore a signed-in tab or show the sign-in form, start the app.
 */

import { AuthSession, RestClient } from '../../typescript/src/index.js';
import { serverUrl } from './config.js';
import { h, replace } from './dom.js';
import { loadProfile, saveProfile, tokenStore, type Profile } from './session-store.js';
import { Shell } from './shell.js';
import { signInView } from './signin.js';

const url = serverUrl();
const root = document.getElementById('app') ?? document.body.appendChild(h('div', { id: 'app' }));
const rest: RestClient = new RestClient({ baseUrl: url, getToken: () => auth.getToken({ reason: 'connect' }) });
const auth = new AuthSession({ rest, store: tokenStore });
let shell: Shell | null = null;

function showSignIn(notice?: string): void {
  document.title = 'Sign in · switchyard';
  replace(
    root,
    signInView(
      auth,
      rest,
      (p) => {
        saveProfile(p);
        void signedIn(p);
      },
      notice,
    ),
  );
}

async function signOut(notice?: string): Promise<void> {
  const s = shell;
  shell = null;
  saveProfile(null);
  if (s) await s.close();
  // Revoke the refresh token on the server; when offline, forgetting it here must do.
  await auth.logout().catch(() => tokenStore.save(null));
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  showSignIn(notice);
}

async function signedIn(profile: Profile): Promise<void> {
  replace(root, h('p', { class: 'muted boot' }, 'Starting…'));
  shell = await Shell.start({ url, profile, getToken: auth.getToken, signOut: (n) => void signOut(n) });
  replace(root, shell.el);
}

async function boot(): Promise<void> {
  const profile = loadProfile();
  const tokens = await tokenStore.load();
  if (profile && tokens && tokens.refreshExpiresAt > Date.now()) await signedIn(profile);
  else showSignIn();
}

void boot();
