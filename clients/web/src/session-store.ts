/**
 * What a signed-in tab keeps: the token pair (through the SDK's token store, on
 * sessionStorage: it lives as long as the tab and is gone when the tab closes) and who signed
 * in (id and e-mail, so the app can start on the socket alone, without a REST round trip).
 */

import { LocalStorageTokenStore, type TokenStore } from '../../typescript/src/index.js';

export interface Profile {
  userId: string;
  email: string;
}

const PROFILE_KEY = 'switchyard.profile';

function storage(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // storage disabled: memory only
  }
}

class MemoryStorage {
  private m = new Map<string, string>();
  getItem(k: string): string | null {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.m.set(k, v);
  }
  removeItem(k: string): void {
    this.m.delete(k);
  }
}

const backing = storage() ?? new MemoryStorage();

export const tokenStore: TokenStore = new LocalStorageTokenStore('switchyard.tokens', backing);

export function loadProfile(): Profile | null {
  try {
    const p = JSON.parse(backing.getItem(PROFILE_KEY) ?? 'null') as Profile | null;
    return p && typeof p.userId === 'string' && typeof p.email === 'string' ? p : null;
  } catch {
    return null;
  }
}

export function saveProfile(p: Profile | null): void {
  if (p) backing.setItem(PROFILE_KEY, JSON.stringify(p));
  else backing.removeItem(PROFILE_KEY);
}
