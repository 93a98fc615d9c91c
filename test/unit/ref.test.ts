import { describe, expect, it } from 'vitest';
import {
  ReferenceParseError,
  familiarMatch,
  familiarReference,
  formatReference,
  isLoopbackRegistry,
  parseAnyReference,
  parseDockerRef,
  parseImageReference,
  parseNamed,
  parseReference,
  parseRegistryHost,
  referenceTarget,
  referenceWithTag,
  registryApiHost,
  splitRegistryHost,
  type ImageReference,
} from '../../src/ref/index.js';

const D = 'sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa';
const HEX = 'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';

// [input, domain, path, tag, digest, full string, familiar string]
const NORMALIZED: Array<[string, string, string, string, string, string, string]> = [
  ['ubuntu', 'docker.io', 'library/ubuntu', '', '', 'docker.io/library/ubuntu', 'ubuntu'],
  ['ubuntu:22.04', 'docker.io', 'library/ubuntu', '22.04', '', 'docker.io/library/ubuntu:22.04', 'ubuntu:22.04'],
  ['library/debian', 'docker.io', 'library/debian', '', '', 'docker.io/library/debian', 'debian'],
  ['docker.io/debian', 'docker.io', 'library/debian', '', '', 'docker.io/library/debian', 'debian'],
  ['index.docker.io/debian', 'docker.io', 'library/debian', '', '', 'docker.io/library/debian', 'debian'],
  ['docker/docker', 'docker.io', 'docker/docker', '', '', 'docker.io/docker/docker', 'docker/docker'],
  ['library/foo/bar', 'docker.io', 'library/foo/bar', '', '', 'docker.io/library/foo/bar', 'library/foo/bar'],
  ['localhost/debian', 'localhost', 'debian', '', '', 'localhost/debian', 'localhost/debian'],
  ['localhost:5000/a/b:t', 'localhost:5000', 'a/b', 't', '', 'localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
  ['127.0.0.1:5000/debian', '127.0.0.1:5000', 'debian', '', '', '127.0.0.1:5000/debian', '127.0.0.1:5000/debian'],
  ['192.168.0.1', 'docker.io', 'library/192.168.0.1', '', '', 'docker.io/library/192.168.0.1', '192.168.0.1'],
  ['192.168.0.1:80', 'docker.io', 'library/192.168.0.1', '80', '', 'docker.io/library/192.168.0.1:80', '192.168.0.1:80'],
  ['[fc00::1]:5000/docker', '[fc00::1]:5000', 'docker', '', '', '[fc00::1]:5000/docker', '[fc00::1]:5000/docker'],
  ['Foo/bar', 'Foo', 'bar', '', '', 'Foo/bar', 'Foo/bar'],
  ['test_com/foo', 'docker.io', 'test_com/foo', '', '', 'docker.io/test_com/foo', 'test_com/foo'],
  ['dock__er/docker', 'docker.io', 'dock__er/docker', '', '', 'docker.io/dock__er/docker', 'dock__er/docker'],
  ['docker---rules/docker', 'docker.io', 'docker---rules/docker', '', '', 'docker.io/docker---rules/docker', 'docker---rules/docker'],
  ['ghcr.io/org/app:v1', 'ghcr.io', 'org/app', 'v1', '', 'ghcr.io/org/app:v1', 'ghcr.io/org/app:v1'],
  [`busybox:latest@${D}`, 'docker.io', 'library/busybox', 'latest', D, `docker.io/library/busybox:latest@${D}`, `busybox:latest@${D}`],
  [`gcr.io/x/y@${D}`, 'gcr.io', 'x/y', '', D, `gcr.io/x/y@${D}`, `gcr.io/x/y@${D}`],
  ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo', '', '', 'xn--n3h.com:18080/foo', 'xn--n3h.com:18080/foo'],
];

// [input, reason]
const INVALID: Array<[string, string]> = [
  ['', 'name-empty'],
  ['https://github.com/docker/docker', 'invalid-format'],
  ['docker/Docker', 'name-uppercase'],
  ['-docker', 'invalid-format'],
  ['docker///docker', 'invalid-format'],
  ['[fc00::1]:5000', 'invalid-format'],
  ['fc00::1:5000/debian', 'invalid-format'],
  [HEX, 'name-is-identifier'],
  ['docker-/docker', 'invalid-format'],
  ['dock..er/docker', 'invalid-format'],
  ['docker/', 'invalid-format'],
  [`x/${'a'.repeat(256)}`, 'name-too-long'],
  ['repo@sha256:ffff', 'invalid-format'],
  [`repo@sha256:${'f'.repeat(34)}`, 'digest-invalid-length'],
  [`repo@md5:${'f'.repeat(64)}`, 'digest-unsupported'],
  [`repo@sha256:${'F'.repeat(64)}`, 'digest-invalid-format'],
  [`repo:${'t'.repeat(129)}`, 'invalid-format'],
  ['repo:-tag', 'invalid-format'],
  ['a:b:c', 'invalid-format'],
];

describe('parseImageReference (normalized)', () => {
  it.each(NORMALIZED)('%s', (input, domain, path, tag, digest, full, familiar) => {
    const ref = parseImageReference(input);
    expect(ref.domain).toBe(domain);
    expect(ref.path).toBe(path);
    expect(ref.tag ?? '').toBe(tag);
    expect(ref.digest ?? '').toBe(digest);
    expect(formatReference(ref)).toBe(full);
    expect(familiarReference(ref)).toBe(familiar);
  });

  it.each(INVALID)('rejects %j (%s)', (input, reason) => {
    let error: unknown;
    try {
      parseImageReference(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ReferenceParseError);
    expect((error as ReferenceParseError).code).toBe('E_REF_INVALID');
    expect((error as ReferenceParseError).reason).toBe(reason);
    expect((error as ReferenceParseError).message).toContain(JSON.stringify(input));
    expect((error as ReferenceParseError).hint).toBeTruthy();
  });

  it('names what the user typed, not the normalized form', () => {
    expect(() => parseImageReference('bad..name')).toThrow(/"bad\.\.name"/);
  });

  it('stays fast on long hostile input', () => {
    const start = Date.now();
    expect(() => parseImageReference(`${'a-'.repeat(500)}!`)).toThrow(ReferenceParseError);
    expect(() => parseImageReference(`${'a.'.repeat(120)}a/${'b_'.repeat(120)}!`)).toThrow(ReferenceParseError);
    expect(Date.now() - start).toBeLessThan(500);
  });
});

describe('the other distribution/reference entry points', () => {
  it('Parse does not normalize', () => {
    expect(parseReference('test.com:5000')).toEqual({ domain: '', path: 'test.com', tag: '5000' });
    expect(parseReference('test:5000/repo')).toEqual({ domain: 'test:5000', path: 'repo' });
    expect(parseReference('foo/foo_bar.com:8080')).toEqual({ domain: 'foo', path: 'foo_bar.com', tag: '8080' });
    expect(() => parseReference('Uppercase:tag')).toThrow(expect.objectContaining({ reason: 'name-uppercase' }));
  });

  it('ParseDockerRef adds latest and lets the digest win', () => {
    expect(formatReference(parseDockerRef('busybox'))).toBe('docker.io/library/busybox:latest');
    expect(formatReference(parseDockerRef(`gcr.io/a/b:latest@${D}`))).toBe(`gcr.io/a/b@${D}`);
  });

  it('ParseAnyReference takes IDs and digests', () => {
    expect(parseAnyReference(HEX)).toEqual({ digest: `sha256:${HEX}` });
    expect(parseAnyReference(`sha256:${HEX}`)).toEqual({ digest: `sha256:${HEX}` });
    expect(parseAnyReference('redis:latest')).toEqual({ domain: 'docker.io', path: 'library/redis', tag: 'latest' });
  });

  it('ParseNamed wants canonical input', () => {
    expect(parseNamed('docker.io/library/foo').path).toBe('library/foo');
    expect(() => parseNamed('foo')).toThrow(expect.objectContaining({ reason: 'name-not-canonical' }));
  });

  it('FamiliarMatch', () => {
    expect(familiarMatch('foo/**/ba[rz]', parseImageReference('foo/a/bar'))).toBe(true);
    expect(familiarMatch('*/foo/c/baz', parseImageReference('example.com/foo/c/baz:tag'))).toBe(true);
    expect(familiarMatch('foo/*/baz:tag', parseImageReference('foo/c/bat:tag'))).toBe(false);
  });
});

describe('helpers', () => {
  it('referenceTarget prefers the digest, then the tag, then latest', () => {
    expect(referenceTarget(parseImageReference(`a:1@${D}`))).toBe(D);
    expect(referenceTarget(parseImageReference('a:1'))).toBe('1');
    expect(referenceTarget(parseImageReference('a'))).toBe('latest');
  });

  it('referenceWithTag replaces tag and digest', () => {
    const ref: ImageReference = parseImageReference(`ghcr.io/o/a:1@${D}`);
    expect(formatReference(referenceWithTag(ref, '2'))).toBe('ghcr.io/o/a:2');
    expect(() => referenceWithTag(ref, '.bad')).toThrow(expect.objectContaining({ reason: 'tag-invalid' }));
  });

  it('registryApiHost maps Docker Hub', () => {
    expect(registryApiHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryApiHost('index.docker.io')).toBe('registry-1.docker.io');
    expect(registryApiHost('localhost:5000')).toBe('localhost:5000');
  });

  it('isLoopbackRegistry', () => {
    for (const host of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]:5000', '::1', 'LOCALHOST:1']) {
      expect(isLoopbackRegistry(host), host).toBe(true);
    }
    for (const host of ['docker.io', '10.0.0.1:5000', '128.0.0.1', '127.0.0.1.example.com', 'localhost.example.com', '[fc00::1]:5000', '127.0.0.256']) {
      expect(isLoopbackRegistry(host), host).toBe(false);
    }
  });

  it('splitRegistryHost', () => {
    expect(splitRegistryHost('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    expect(splitRegistryHost('example.com')).toEqual({ host: 'example.com', port: undefined });
    expect(splitRegistryHost('localhost:5000')).toEqual({ host: 'localhost', port: 5000 });
  });

  it('parseRegistryHost', () => {
    expect(parseRegistryHost('https://ghcr.io/')).toBe('ghcr.io');
    expect(parseRegistryHost('localhost:5000')).toBe('localhost:5000');
    expect(parseRegistryHost('index.docker.io')).toBe('docker.io');
    expect(() => parseRegistryHost('not a host')).toThrow(ReferenceParseError);
    expect(() => parseRegistryHost('foo')).toThrow(ReferenceParseError);
  });
});
