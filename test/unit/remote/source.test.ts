import { describe, expect, it } from 'vitest';
import { fetchedSource, isGitSource, isHttpSource, parseGitSource, redactUrl, redactUrlsIn } from '../../../src/remote/index.js';
import { isRemoteContext } from '../../../src/internals.js';

describe('remote source classification (BuildKit gitutil.ParseGitRef)', () => {
  it.each([
    ['https://github.com/moby/buildkit.git', true],
    ['https://github.com/moby/buildkit.git#v0.12.0:docs', true],
    ['git@github.com:moby/buildkit.git', true],
    ['git@github.com:moby/buildkit#main', true],
    ['ssh://git@host/repo', true],
    ['git://host/repo', true],
    ['https://example.com/file.tar.gz', false],
    ['https://example.com/repo.git.tar', false],
    ['./local/dir', false],
    ['user@host.txt', false],
  ])('%s is a git source: %s', (text, git) => {
    expect(isGitSource(text)).toBe(git);
  });

  it('an http(s) URL that is not a repository is a download', () => {
    expect(isHttpSource('https://example.com/a.txt')).toBe(true);
    expect(isHttpSource('HTTP://example.com/a')).toBe(true);
    expect(isHttpSource('https://example.com/r.git')).toBe(false);
    expect(isHttpSource('ftp://example.com/a')).toBe(false);
  });

  it('remote contexts: -, http(s) URLs, git URLs; not directories', () => {
    expect(['-', 'https://h/ctx.tar.gz', 'git@h:o/r.git', 'git://h/r'].map(isRemoteContext)).toEqual([true, true, true, true]);
    expect(['.', 'dir', '/abs/dir'].map(isRemoteContext)).toEqual([false, false, false]);
  });
});

describe('parseGitSource', () => {
  it('reads #ref:subdir', () => {
    expect(parseGitSource('https://h/o/r.git#v1.2:sub/dir/')).toEqual({ remote: 'https://h/o/r.git', ref: 'v1.2', subdir: 'sub/dir', host: 'h', ssh: false });
    expect(parseGitSource('https://h/o/r.git#:docs')).toMatchObject({ ref: undefined, subdir: 'docs' });
    expect(parseGitSource('https://h/o/r.git')).toMatchObject({ ref: undefined, subdir: '' });
  });

  it('scp-like and ssh:// remotes are ssh, with their host', () => {
    expect(parseGitSource('git@github.com:o/r.git#main')).toMatchObject({ remote: 'git@github.com:o/r.git', ref: 'main', host: 'github.com', ssh: true });
    expect(parseGitSource('ssh://git@h:2222/o/r')).toMatchObject({ host: 'h', ssh: true });
  });

  it('refuses a subdirectory that climbs out and a ref git would read as an option', () => {
    expect(() => parseGitSource('https://h/r.git#main:../x')).toThrow(/climbs out/);
    expect(() => parseGitSource('https://h/r.git#--upload-pack=evil')).toThrow(/not a valid git ref/);
    expect(() => parseGitSource('https://h/r.git#a..b')).toThrow(/not a valid git ref/);
  });
});

describe('redaction', () => {
  it('removes user names and passwords from URLs, alone or inside a line', () => {
    expect(redactUrl('https://u:p4ss@h/x')).toBe('https://***@h/x');
    expect(redactUrl('https://h/x')).toBe('https://h/x');
    expect(redactUrlsIn('ADD https://u:p4ss@h/a git://tok@g/r.git /d')).toBe('ADD https://***@h/a git://***@g/r.git /d');
  });
});

describe('sources as provenance names them', () => {
  it('keeps the URL, its fragment and query, without user name or password; a commit is sha1 (sha256 in a SHA-256 repository)', () => {
    const c1 = 'a'.repeat(40);
    const c2 = 'b'.repeat(64);
    expect(fetchedSource('https://x-access-token:tok@h/r.git#v1:sub', { commit: c1 })).toEqual({ uri: 'https://h/r.git#v1:sub', digest: `sha1:${c1}` });
    expect(fetchedSource('ssh://git@h/r.git', { commit: c2 })).toEqual({ uri: 'ssh://h/r.git', digest: `sha256:${c2}` });
    expect(fetchedSource('git@github.com:o/r.git#main', { commit: c1 }).uri).toBe('git@github.com:o/r.git#main');
    expect(fetchedSource('https://u:p@h/f.tgz?sig=1', { digest: `sha256:${c2}` })).toEqual({ uri: 'https://h/f.tgz?sig=1', digest: `sha256:${c2}` });
  });
});
