/**
 * Where the server is. By default the origin that served this page (switchyard serves the app
 * at `/`); a deployment that hosts the files elsewhere names the server in
 * `<meta name="switchyard-server" content="https://…">` (the server must then allow that
 * origin in `server.cors_origins`).
 */

export function serverUrl(): string {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="switchyard-server"]');
  const configured = meta?.content.trim();
  return configured ? configured.replace(/\/+$/, '') : location.origin;
}

/** Whether the server is on another origin than the page (its socket then needs the allowlist). */
export function crossOrigin(url: string): boolean {
  try {
    return new URL(url).origin !== location.origin;
  } catch {
    return true;
  }
}
