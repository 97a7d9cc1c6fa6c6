// A separate process for the crash test: queues `count` mutations into a JSON-file store,
// prints "persisted" once all are on disk, then keeps pushing until killed.
import { JsonFileQueueStore } from '../../../src/node.js';
import { client } from '../../harness/client.js';

const [url, token, sid, file, countText, autoConnect] = process.argv.slice(2) as [string, string, string, string, string, string];
const store = new JsonFileQueueStore(file);
const c = client(url, { access: token }, { store, autoConnect: autoConnect === 'connect' });
const s = c.session(sid);
const count = Number(countText);
const all = [];
for (let i = 0; i < count; i++) all.push(s.appendMessage(`crash ${i}`, { id: `crash-${i}` }));
await Promise.all(all.map((m) => m.persisted));
process.stdout.write(`persisted ${c.clientId}\n`);
c.on('applied', (a) => process.stdout.write(`applied ${a.mutation.mutation_id}\n`));
