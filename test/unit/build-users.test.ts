import { describe, expect, it } from 'vitest';
import { parseGroup, parsePasswd, resolveExecUser, resolveOwnership } from '../../src/build/users.js';
import { isStrataError } from '../../src/errors/index.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  '',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1001:App User:/home/app:/bin/sh',
  'broken:x:notanumber:1::/:/bin/sh',
  'app:x:2000:2000:a second app, ignored:/:/bin/sh',
  'nohome:x:3000:3000:::',
].join('\n');

const GROUP = ['root:x:0:', 'wheel:x:10:root,app', 'staff:x:50:app', 'appgroup:x:1001:', 'other:x:1234:'].join('\n');

function buildError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(isStrataError(error, 'E_BUILD'), String(error)).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected an E_BUILD error');
}

describe('parsePasswd / parseGroup', () => {
  it('reads entries, skipping comments, blanks and malformed lines', () => {
    const users = parsePasswd(PASSWD);
    expect(users.map((u) => u.name)).toEqual(['root', 'daemon', 'app', 'app', 'nohome']);
    expect(users[2]).toEqual({ name: 'app', password: 'x', uid: 1000, gid: 1001, gecos: 'App User', home: '/home/app', shell: '/bin/sh' });
    expect(parseGroup(GROUP)[1]).toEqual({ name: 'wheel', password: 'x', gid: 10, members: ['root', 'app'] });
    expect(parseGroup('\r\nwin:x:7:a\r\n')).toEqual([{ name: 'win', password: 'x', gid: 7, members: ['a'] }]);
  });
});

describe('resolveOwnership (COPY --chown)', () => {
  it('takes numeric ids without any lookup; a numeric user alone gets gid = uid', () => {
    expect(resolveOwnership('1234')).toEqual({ uid: 1234, gid: 1234 });
    expect(resolveOwnership('1234:5678')).toEqual({ uid: 1234, gid: 5678 });
    expect(resolveOwnership('0')).toEqual({ uid: 0, gid: 0 });
    expect(resolveOwnership('root')).toEqual({ uid: 0, gid: 0 });
    expect(resolveOwnership('root:root')).toEqual({ uid: 0, gid: 0 });
    expect(resolveOwnership('')).toEqual({ uid: 0, gid: 0 });
    // 1000 is app in passwd, but an id is never looked up.
    expect(resolveOwnership('1000', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1000 });
  });

  it('looks names up: a user alone gets its primary group; the first matching line wins', () => {
    expect(resolveOwnership('app', PASSWD)).toEqual({ uid: 1000, gid: 1001 });
    expect(resolveOwnership('app:staff', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 50 });
    expect(resolveOwnership('app:99', PASSWD)).toEqual({ uid: 1000, gid: 99 });
    expect(resolveOwnership('42:wheel', undefined, GROUP)).toEqual({ uid: 42, gid: 10 });
    expect(resolveOwnership('daemon:root', PASSWD)).toEqual({ uid: 1, gid: 0 });
  });

  it('fails with E_BUILD naming the missing file or entry', () => {
    expect(buildError(() => resolveOwnership('app'))).toMatch(/"app".*no \/etc\/passwd/);
    expect(buildError(() => resolveOwnership('ghost', PASSWD, GROUP))).toMatch(/"ghost".*not in the image's \/etc\/passwd/);
    expect(buildError(() => resolveOwnership('app:staff', PASSWD))).toMatch(/"staff".*no \/etc\/group/);
    expect(buildError(() => resolveOwnership('1000:ghosts', PASSWD, GROUP))).toMatch(/"ghosts".*not in the image's \/etc\/group/);
    expect(buildError(() => resolveOwnership(':1000'))).toMatch(/empty user/);
    expect(buildError(() => resolveOwnership('1000:'))).toMatch(/empty group/);
    expect(buildError(() => resolveOwnership('4294967296'))).toMatch(/out of range/);
  });
});

describe('resolveExecUser (USER for RUN)', () => {
  it('takes uid:gid without lookup', () => {
    expect(resolveExecUser('1000:1000')).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000], home: '/' });
    expect(resolveExecUser('root:0', PASSWD)).toEqual({ uid: 0, gid: 0, additionalGids: [0], home: '/root' });
    expect(resolveExecUser('')).toEqual({ uid: 0, gid: 0, additionalGids: [], home: '/' });
  });

  it('looks a numeric user up in passwd; one missing from it runs with gid 0', () => {
    expect(resolveExecUser('1000', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1001, additionalGids: [1001, 10, 50], home: '/home/app' });
    expect(resolveExecUser('4242', PASSWD, GROUP)).toEqual({ uid: 4242, gid: 0, additionalGids: [0], home: '/' });
    expect(resolveExecUser('4242')).toEqual({ uid: 4242, gid: 0, additionalGids: [0], home: '/' });
  });

  it('looks names up; the primary group comes first in the supplementary groups, then the groups listing the user', () => {
    expect(resolveExecUser('app', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1001, additionalGids: [1001, 10, 50], home: '/home/app' });
    expect(resolveExecUser('app:other', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1234, additionalGids: [1234], home: '/home/app' });
    expect(resolveExecUser('app:77', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 77, additionalGids: [77], home: '/home/app' });
    expect(resolveExecUser('nohome', PASSWD)).toEqual({ uid: 3000, gid: 3000, additionalGids: [3000], home: '/' });
  });

  it('fails with E_BUILD for names it cannot find', () => {
    expect(buildError(() => resolveExecUser('app'))).toMatch(/no \/etc\/passwd/);
    expect(buildError(() => resolveExecUser('ghost', PASSWD, GROUP))).toMatch(/not in the image's \/etc\/passwd/);
    expect(buildError(() => resolveExecUser('app:ghosts', PASSWD, GROUP))).toMatch(/"ghosts".*\/etc\/group/);
    expect(buildError(() => resolveExecUser('app:staff', PASSWD))).toMatch(/no \/etc\/group/);
  });
});
