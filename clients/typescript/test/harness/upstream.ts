// A fake OpenAI-compatible upstream for tool tests (like tests/api/upstream.rs): it streams
// chat-completions SSE; while the current turn holds no tool result it says "Checking. " and
// calls `pick_file` ({"prompt":"which"}), then answers "The tool said: <results>".
import { createServer, type Server } from 'node:http';

interface Msg {
  role: string;
  content?: unknown;
}

export class FakeUpstream {
  private server: Server;
  port = 0;
  requests: Array<{ model: string; messages: Msg[]; tools?: unknown }> = [];

  constructor() {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (b: Buffer) => (body += b.toString()));
      req.on('end', () => {
        let parsed: { model: string; messages: Msg[]; tools?: unknown };
        try {
          parsed = JSON.parse(body) as typeof parsed;
        } catch {
          res.writeHead(400).end();
          return;
        }
        this.requests.push(parsed);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const lastUser = parsed.messages.map((m) => m.role).lastIndexOf('user');
        const results = parsed.messages.slice(lastUser + 1).filter((m) => m.role === 'tool').map((m) => String(m.content));
        const chunk = (delta: object, finish: string | null = null): string =>
          `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: parsed.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
        let out = chunk({ role: 'assistant', content: results.length === 0 ? 'Checking. ' : '' });
        if (results.length === 0) {
          // Model `call:<function>` calls that function with {"question":"which"} instead.
          const [name, key] = parsed.model.startsWith('call:') ? [parsed.model.slice(5), 'question'] : ['pick_file', 'prompt'];
          out += chunk({ tool_calls: [{ index: 0, id: `call_0_${name}`, type: 'function', function: { name, arguments: `{"${key}":` } }] });
          out += chunk({ tool_calls: [{ index: 0, function: { arguments: '"which"}' } }] });
          out += chunk({}, 'tool_calls');
        } else {
          for (const w of `The tool said: ${results.join(' | ')}`.split(/(?<= )/)) out += chunk({ content: w });
          out += chunk({}, 'stop');
        }
        out += `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: parsed.model, choices: [], usage: { prompt_tokens: 10, completion_tokens: 4 } })}\n\ndata: [DONE]\n\n`;
        res.end(out);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
    return this;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}
