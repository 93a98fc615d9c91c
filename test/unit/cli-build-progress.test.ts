import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildEventRenderer, type ProgressMode } from '../../cli/build-progress.js';
import type { BuildEvent } from '../../src/internals.js';

const MiB = 1024 * 1024;
const download = (state: 'start' | 'progress' | 'done', bytes: number, total?: number): BuildEvent => ({
  type: 'download',
  where: 'Dockerfile:2',
  url: 'http://files.test/big.bin',
  state,
  bytes,
  ...(total === undefined ? {} : { total }),
});

/** Renders `events` at the given clock times (ms) and returns what was written. */
function render(mode: ProgressMode, timed: Array<[number, BuildEvent]>): string {
  const out = new PassThrough();
  let clock = 0;
  const emit = buildEventRenderer(mode, out, false, () => clock);
  for (const [t, event] of timed) {
    clock = t;
    emit(event);
  }
  return out.read()?.toString() ?? '';
}

/** A 4 MiB download in 64 KiB pieces, one every 10 ms of the fake clock. */
function fourMiB(total: number | undefined): Array<[number, BuildEvent]> {
  const timed: Array<[number, BuildEvent]> = [[0, download('start', 0, total)]];
  for (let i = 1; i <= 64; i++) timed.push([i * 10, download('progress', i * 64 * 1024, total)]);
  timed.push([650, download('done', 4 * MiB, total)]);
  return timed;
}

describe('build progress of ADD <url> downloads', () => {
  it('json: the start and the end always, bytes so far at most every 250 ms', () => {
    const lines = render('json', fourMiB(4 * MiB))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { state: string; bytes: number; total?: number; time: string });
    expect(lines.map((l) => l.state)).toEqual(['start', 'progress', 'progress', 'done']);
    expect(lines.map((l) => l.bytes)).toEqual([0, 25 * 64 * 1024, 50 * 64 * 1024, 4 * MiB]);
    expect(lines.every((l) => l.total === 4 * MiB)).toBe(true);
    expect(lines[0]!.time).toBe(new Date(0).toISOString());
  });

  it('plain: a line at the start, one a second at most with bytes and percent, and one at the end', () => {
    const timed = fourMiB(4 * MiB);
    // A slower one: the byte count shows once its second has passed.
    timed.splice(60, 0, [1500, download('progress', 3 * MiB, 4 * MiB)]);
    expect(render('plain', timed).split('\n')).toEqual([
      'Dockerfile:2: http://files.test/big.bin: downloading 4.0 MiB',
      'Dockerfile:2: http://files.test/big.bin: 3.0 MiB / 4.0 MiB (75%)',
      'Dockerfile:2: http://files.test/big.bin: downloaded 4.0 MiB',
      '',
    ]);
  });

  it('plain without a Content-Length: bytes so far only', () => {
    const text = render('plain', [
      [0, download('start', 0)],
      [2000, download('progress', MiB)],
      [2100, download('done', 2 * MiB)],
    ]);
    expect(text).toBe(
      [
        'Dockerfile:2: http://files.test/big.bin: downloading',
        'Dockerfile:2: http://files.test/big.bin: 1.0 MiB',
        'Dockerfile:2: http://files.test/big.bin: downloaded 2.0 MiB',
        '',
      ].join('\n'),
    );
  });

  it('quiet: nothing', () => {
    expect(render('quiet', fourMiB(4 * MiB))).toBe('');
  });
});
