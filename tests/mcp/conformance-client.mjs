// The client command `@modelcontextprotocol/conformance client` runs for each scenario
// (`node conformance-client.mjs <server url>`, MCP_CONFORMANCE_SCENARIO set): it drives
// switchyard the way a user would. A fresh account (scenarios run in parallel and each must see
// only its own server's tools) opens a socket, configures the suite's URL as a Streamable HTTP
// MCP server, waits for it to be `ready`, then runs a chat turn whose model calls the tool the
// server offers (SWITCHYARD_MODEL, routed by the test to an upstream that calls the first tool
// it is given). Exit 0 when the turn completes; otherwise the status or error, and exit 1.
//
// Needs Node >= 22 (global WebSocket) and SWITCHYARD_URL (http://host:port).

const serverUrl = process.argv.at(-1);
const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? '?';
const base = process.env.SWITCHYARD_URL;
const model = process.env.SWITCHYARD_MODEL ?? 'conformance';
const READY_MS = Number(process.env.SWITCHYARD_READY_MS ?? 20000);
const TURN_MS = Number(process.env.SWITCHYARD_TURN_MS ?? 25000);

const log = (...a) => console.log(`[${scenario}]`, ...a);

async function rest(method, path, token, body) {
  const r = await fetch(base + path, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

/** One socket: requests by id, events to whoever waits for them. */
class Socket {
  constructor(ws) {
    this.ws = ws;
    this.next = 1;
    this.pending = new Map();
    this.events = [];
    this.waiters = [];
    ws.addEventListener('message', (m) => this.onFrame(JSON.parse(m.data)));
    ws.addEventListener('close', (e) => {
      for (const w of this.waiters) w.reject(new Error(`socket closed ${e.code} ${e.reason}`));
      for (const p of this.pending.values()) p.reject(new Error(`socket closed ${e.code}`));
    });
  }

  static open(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.addEventListener('open', () => resolve(new Socket(ws)), { once: true });
      ws.addEventListener('error', () => reject(new Error(`cannot open ${url}`)), { once: true });
    });
  }

  onFrame(f) {
    if ((f.type === 'ok' || f.type === 'error') && this.pending.has(f.id)) {
      const p = this.pending.get(f.id);
      this.pending.delete(f.id);
      return f.type === 'ok' ? p.resolve(f.result ?? {}) : p.reject(new Error(`${f.code}: ${f.message}`));
    }
    if (f.type === 'event') {
      this.onEvent?.(f);
      this.events.push(f);
      this.waiters = this.waiters.filter((w) => !w.check(f));
    }
  }

  request(type, fields = {}) {
    const id = String(this.next++);
    this.ws.send(JSON.stringify({ type, id, ...fields }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** The first event (already seen or to come) for which `pick` returns a value. */
  until(pick, ms, what) {
    for (const f of this.events) {
      const v = pick(f);
      if (v !== undefined) return Promise.resolve(v);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      this.waiters.push({
        reject,
        check: (f) => {
          const v = pick(f);
          if (v === undefined) return false;
          clearTimeout(timer);
          resolve(v);
          return true;
        },
      });
    });
  }
}

async function main() {
  if (!base) throw new Error('SWITCHYARD_URL is not set');
  const email = `conformance-${crypto.randomUUID()}@example.com`;
  const reg = await rest('POST', '/v1/auth/register', null, { email, password: 'conformance-pass-1234' });
  const token = reg.tokens.access_token;
  const session = await rest('POST', '/v1/sessions', token, {});
  const sock = await Socket.open(`${base.replace(/^http/, 'ws')}/v1/ws`);
  await sock.request('auth', { token });
  const me = await rest('GET', '/v1/auth/me', token);
  const userChannel = `user:${me.id ?? me.user_id}`;
  const sessionChannel = `session:${session.id}`;
  await sock.request('subscribe', { channel: sessionChannel });

  // The user answers every question the server asks: accept, filling in only the required
  // fields that have no default (the rest are left out, for switchyard to fill from the
  // schema's defaults, SEP-1034).
  sock.onEvent = (f) => {
    if (f.channel !== userChannel || f.event !== 'mcp.elicitation') return;
    const schema = f.data.requested_schema ?? {};
    const content = {};
    for (const k of schema.required ?? []) {
      const p = schema.properties?.[k] ?? {};
      if (p.default !== undefined) continue;
      content[k] = p.enum?.[0] ?? { number: 1, integer: 1, boolean: true }[p.type] ?? 'x';
    }
    log('elicitation:', f.data.message, '-> accept', JSON.stringify(content));
    sock
      .request('mcp.elicitation.result', { elicitation_id: f.data.elicitation_id, action: 'accept', content })
      .catch((e) => log('answer refused:', e.message));
  };

  const server = await sock.request('mcp.create', {
    server: { name: 'conformance', transport: 'http', url: serverUrl },
  });
  log('configured', server.id, serverUrl);
  const status = await sock.until(
    (f) => {
      if (f.channel !== userChannel || f.event !== 'mcp.status') return undefined;
      const s = f.data.servers.find((s) => s.server_id === server.id);
      return s && (s.state === 'ready' || s.state === 'error' || s.state === 'auth_required') ? s : undefined;
    },
    READY_MS,
    'the server to be ready',
  );
  if (status.state !== 'ready') {
    throw new Error(`server ${status.state}: ${status.error ?? status.authorization_url ?? ''}`);
  }
  log('ready:', status.tools.map((t) => t.name).join(', '));

  const turn = await sock.request('chat.send', {
    session_id: session.id,
    message: 'Use the tool.',
    model,
  });
  const end = await sock.until(
    (f) =>
      f.channel === sessionChannel &&
      (f.event === 'chat.done' || f.event === 'chat.error') &&
      f.data.turn_id === turn.turn_id
        ? f
        : undefined,
    TURN_MS,
    'the turn to end',
  );
  for (const f of sock.events) {
    if (f.event === 'tool.call') log('tool.call', f.data.tool, JSON.stringify(f.data.arguments));
    if (f.event === 'tool.result' || f.event === 'tool.error') log(f.event, JSON.stringify(f.data).slice(0, 300));
  }
  await sock.request('mcp.delete', { server_id: server.id }).catch(() => {});
  sock.ws.close();
  if (end.event !== 'chat.done' || end.data.status !== 'complete') {
    throw new Error(`turn ended ${end.event} ${JSON.stringify(end.data)}`);
  }
  log('turn complete');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`[${scenario}] ${e.message}`);
    process.exit(1);
  },
);
