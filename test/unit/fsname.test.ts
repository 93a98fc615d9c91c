import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeName, displayName, fsPath, hasEscapedBytes, mountTable, nameBytes } from '../../src/fsname/index.js';
import { rawPaxHeaders } from '../../src/layer/tar-header.js';

describe('file names as bytes', () => {
  it('a UTF-8 name is the string it always was; any other byte string round-trips exactly', () => {
    expect(decodeName(Buffer.from('café/日本/😀'))).toBe('café/日本/😀');
    expect(fsPath('café')).toBe('café');
    const bad = Buffer.from('bad\xff\xfeutf8.txt', 'latin1');
    const name = decodeName(bad);
    expect(hasEscapedBytes(name)).toBe(true);
    expect(nameBytes(name)).toEqual(bad);
    expect(fsPath(name)).toEqual(bad);
    expect(displayName(name)).toBe('bad\\xff\\xfeutf8.txt');
    // Overlong forms, encoded surrogates, truncated sequences and a pair whose low half lies in the escape range.
    for (const hex of ['c0af', 'eda080', 'e282', 'f0908080', 'f4908080', 'f0908280ff', '41f09f9880ff42']) {
      const bytes = Buffer.from(hex, 'hex');
      expect(nameBytes(decodeName(bytes))).toEqual(bytes);
    }
    for (let i = 0; i < 500; i++) {
      const bytes = randomBytes(1 + (i % 40));
      expect(nameBytes(decodeName(bytes))).toEqual(bytes);
    }
  });

  it('an entry with such a name gets a PAX header holding the exact bytes, its length counting itself', () => {
    const name = decodeName(Buffer.from('d/r\xffun', 'latin1'));
    const raw = rawPaxHeaders({ name, type: 'file', mode: 0o644, size: 1, mtime: new Date(0) });
    expect(raw).toBeDefined();
    const records = raw!.bytes.subarray(512);
    const record = Buffer.concat([Buffer.from('15 path=d/r'), Buffer.of(0xff), Buffer.from('un\n')]);
    expect(records.subarray(0, record.length)).toEqual(record);
    expect(raw!.bytes[156]).toBe('x'.charCodeAt(0));
    expect(raw!.bytes.length % 512).toBe(0);
    expect(raw!.entry.name).toBe('PaxHeader');
    expect(rawPaxHeaders({ name: 'plain', type: 'file' })).toBeUndefined();
  });

  it('mount points are named as paths are: octal escapes undone, UTF-8 kept, other bytes kept exactly', () => {
    const info = Buffer.concat([
      Buffer.from('36 25 0:33 / /proc rw - proc proc rw\n'),
      Buffer.from('104 26 0:45 / /tmp/a\\040b/caf\xc3\xa9 rw - overlay strata-overlay rw\n', 'latin1'),
      Buffer.from('105 26 0:46 / /mnt/bad\xff rw - tmpfs tmp\\011fs rw\n', 'latin1'),
      Buffer.from('garbage\n'),
    ]);
    const table = mountTable(info);
    expect(table.map((m) => m.point)).toEqual(['/proc', '/tmp/a b/café', decodeName(Buffer.from('/mnt/bad\xff', 'latin1'))]);
    expect(table.map((m) => m.source)).toEqual(['proc', 'strata-overlay', 'tmp\tfs']);
    expect(nameBytes(table[2]!.point)).toEqual(Buffer.from('/mnt/bad\xff', 'latin1'));
  });
});
