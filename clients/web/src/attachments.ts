/**
 * Files for the next message: a picker that uploads each chosen file at once (so a refusal,
 * such as a type the server does not take, shows before anything is sent), chips naming what
 * will go with the message, and the ids `chat.send` attaches. The transcript shows a sent
 * message's attachments from its metadata.
 */

import type { Json, RestClient } from '../../typescript/src/index.js';
import { errorText, h, plural, setText, show, uid } from './dom.js';

export interface Ready {
  id: string;
  filename: string;
  size: number;
}

export function sizeText(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${Math.round(n / 102.4) / 10} KB`;
  return `${Math.round(n / 104857.6) / 10} MB`;
}

export class AttachTray {
  readonly button: HTMLButtonElement;
  readonly el: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly chips: HTMLUListElement;
  private readonly status: HTMLElement;
  private ready: Ready[] = [];
  private uploading = 0;

  constructor(
    private readonly rest: RestClient,
    private readonly sessionId: string,
    private readonly changed: () => void,
  ) {
    const inputId = uid('attach');
    this.input = h('input', { id: inputId, type: 'file', multiple: true, class: 'visually-hidden', 'aria-label': 'Choose files to attach' });
    this.input.addEventListener('change', () => {
      for (const f of Array.from(this.input.files ?? [])) void this.upload(f);
      this.input.value = '';
    });
    this.button = h('button', { type: 'button', class: 'attach', onclick: () => this.input.click() }, 'Attach');
    this.chips = h('ul', { class: 'attachments', 'aria-label': 'Files to send' });
    this.status = h('p', { class: 'hint', role: 'status' });
    this.el = h('div', { class: 'attach-tray' }, this.input, this.chips, this.status);
    show(this.chips, false);
  }

  /** Uploads are still running: the message waits for them. */
  get busy(): boolean {
    return this.uploading > 0;
  }

  /** The files to attach; the tray empties (the message owns them now). */
  take(): Ready[] {
    const taken = this.ready;
    this.ready = [];
    this.draw();
    return taken;
  }

  /** A send failed: its files come back to the tray. */
  restore(taken: Ready[]): void {
    this.ready = taken.concat(this.ready);
    this.draw();
  }

  private async upload(f: File): Promise<void> {
    this.uploading++;
    setText(this.status, `Uploading ${f.name}…`);
    this.changed();
    try {
      const info = await this.rest.uploadFile(this.sessionId, f, f.name);
      this.ready.push({ id: info.id, filename: info.filename, size: info.size });
      setText(this.status, '');
    } catch (e) {
      setText(this.status, `${f.name} was not attached: ${errorText(e)}`);
    } finally {
      this.uploading--;
      this.draw();
      this.changed();
    }
  }

  private draw(): void {
    this.chips.replaceChildren(
      ...this.ready.map((r) =>
        h(
          'li',
          { class: 'chip' },
          h('span', {}, `${r.filename} (${sizeText(r.size)})`),
          h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${r.filename}`, title: `Remove ${r.filename}`, onclick: () => this.remove(r.id) }, '×'),
        ),
      ),
    );
    show(this.chips, this.ready.length > 0);
    if (this.ready.length) this.button.setAttribute('aria-label', `Attach more files (${plural(this.ready.length, 'file')} attached)`);
    else this.button.removeAttribute('aria-label');
  }

  private remove(id: string): void {
    this.ready = this.ready.filter((r) => r.id !== id);
    this.draw();
    // The file stays in the session (others may have seen it); it is only not attached.
  }
}

/** A message's attachments as its metadata records them. */
export function attachmentsOf(md: Record<string, Json>): Array<{ filename: string; size: number }> {
  const list = md.attachments;
  if (!Array.isArray(list)) return [];
  return list.flatMap((a) => {
    if (!a || typeof a !== 'object' || Array.isArray(a)) return [];
    const name = (a as Record<string, Json>).filename;
    const size = (a as Record<string, Json>).size;
    return typeof name === 'string' ? [{ filename: name, size: typeof size === 'number' ? size : 0 }] : [];
  });
}
