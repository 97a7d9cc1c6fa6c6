/**
 * Checks a frame against the server's limits before it is sent, so an oversized or too deeply
 * nested request fails as one rejected promise instead of the server closing the whole
 * connection (1009) or refusing it.
 */

import { SwitchyardError } from './errors.js';

const encoder = new TextEncoder();

/** UTF-8 length of `text` without allocating for ASCII-only strings. */
export function utf8Length(text: string): number {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  return ascii ? text.length : encoder.encode(text).length;
}

/**
 * Nesting depth of a JSON value: a scalar is 0, `{}` or `[]` is 1, `{"a":[1]}` is 2. The frame
 * object itself counts, as it does for the server's parser.
 */
export function jsonDepth(value: unknown, limit = Infinity): number {
  // Iterative, so a hostile or accidental deep value cannot overflow the stack here.
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > max) {
      max = depth;
      if (max > limit) return max;
    }
    const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const c of children) if (c !== null && typeof c === 'object') stack.push([c, depth]);
  }
  return max;
}

export interface FrameLimits {
  maxFrameBytes: number;
  maxJsonDepth: number;
}

/** Serializes `frame`, or throws a typed error when the server would refuse it. */
export function encodeChecked(frame: object, limits: FrameLimits): string {
  const depth = jsonDepth(frame, limits.maxJsonDepth);
  if (depth > limits.maxJsonDepth) {
    throw new SwitchyardError('too_deep', `frame nests deeper than ${limits.maxJsonDepth} levels`);
  }
  const text = JSON.stringify(frame);
  const bytes = utf8Length(text);
  if (bytes > limits.maxFrameBytes) {
    throw new SwitchyardError(
      'frame_too_large',
      `frame is ${bytes} bytes; the server accepts at most ${limits.maxFrameBytes}`,
    );
  }
  return text;
}
