import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobLocations } from '../../../src/registry/index.js';

describe('BlobLocations: where blobs were seen, across runs', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-blob-locations-'));
    file = join(dir, 'cache', 'blob-locations.json');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the repositories of the asked registry only, most recent first, and keeps them for the next run', async () => {
    const first = new BlobLocations(file);
    first.note('r1.example', 'team/a', ['sha256:aa', 'sha256:bb']);
    first.note('r2.example', 'other/x', ['sha256:aa']);
    first.note('r1.example', 'team/b', ['sha256:aa']);
    await first.save();
    const next = new BlobLocations(file);
    expect(next.sources('r1.example', 'sha256:aa')).toEqual(['team/b', 'team/a']);
    expect(next.sources('r2.example', 'sha256:aa')).toEqual(['other/x']);
    expect(next.sources('r3.example', 'sha256:aa')).toEqual([]);
    expect(next.sources('r1.example', 'sha256:bb')).toEqual(['team/a']);
  });

  it('keeps at most three repositories per registry and digest', async () => {
    const record = new BlobLocations(file);
    for (const repo of ['a', 'b', 'c', 'd', 'e']) record.note('r.example', repo, ['sha256:cc']);
    expect(record.sources('r.example', 'sha256:cc')).toEqual(['e', 'd', 'c']);
  });

  it('merges with what another process saved meanwhile', async () => {
    const one = new BlobLocations(file);
    const two = new BlobLocations(file);
    one.note('r.example', 'one', ['sha256:11']);
    two.note('r.example', 'two', ['sha256:22']);
    await one.save();
    await two.save();
    const after = new BlobLocations(file);
    expect(after.sources('r.example', 'sha256:11')).toEqual(['one']);
    expect(after.sources('r.example', 'sha256:22')).toEqual(['two']);
  });

  it('writes nothing when nothing new was learned, and ignores a damaged file', async () => {
    const record = new BlobLocations(file);
    record.note('r.example', 'a', ['sha256:dd']);
    await record.save();
    const written = await readFile(file, 'utf8');
    const again = new BlobLocations(file);
    again.note('r.example', 'a', ['sha256:dd']);
    await again.save();
    expect(await readFile(file, 'utf8')).toBe(written);
    await writeFile(file, '{not json');
    const damaged = new BlobLocations(file);
    expect(damaged.sources('r.example', 'sha256:dd')).toEqual([]);
    damaged.note('r.example', 'b', ['sha256:dd']);
    await damaged.save();
    expect(new BlobLocations(file).sources('r.example', 'sha256:dd')).toEqual(['b']);
  });
});
