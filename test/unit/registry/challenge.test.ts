import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate, pickChallenge } from '../../../src/registry/index.js';

describe('parseWwwAuthenticate', () => {
  it('parses a Bearer challenge with a quoted scope holding commas', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:a/b:pull,push' } },
    ]);
  });

  it('parses several challenges in one header', () => {
    const parsed = parseWwwAuthenticate('Negotiate, Basic realm="corp", Bearer realm="https://t/token",service="s"');
    expect(parsed.map((c) => c.scheme)).toEqual(['negotiate', 'basic', 'bearer']);
    expect(parsed[1]?.params).toEqual({ realm: 'corp' });
    expect(parsed[2]?.params).toEqual({ realm: 'https://t/token', service: 's' });
  });

  it('handles token68, unquoted values, escapes, odd spacing and case', () => {
    expect(parseWwwAuthenticate('Negotiate abc123==')).toEqual([{ scheme: 'negotiate', params: {}, token68: 'abc123==' }]);
    expect(parseWwwAuthenticate('BASIC Realm=corp ,  charset="UTF-8"')).toEqual([{ scheme: 'basic', params: { realm: 'corp', charset: 'UTF-8' } }]);
    expect(parseWwwAuthenticate('Bearer realm="a\\"b",error="insufficient_scope"')[0]?.params).toEqual({ realm: 'a"b', error: 'insufficient_scope' });
    expect(parseWwwAuthenticate('Bearer realm="x", Basic realm="y"').map((c) => c.params.realm)).toEqual(['x', 'y']);
    expect(parseWwwAuthenticate('')).toEqual([]);
  });

  it('survives garbage', () => {
    expect(() => parseWwwAuthenticate('"""===,,,  ;;; Bearer realm="unterminated')).not.toThrow();
  });

  it('picks Bearer over Basic and ignores schemes it cannot answer', () => {
    expect(pickChallenge(parseWwwAuthenticate('Basic realm="x", Bearer realm="https://t"'))?.scheme).toBe('bearer');
    expect(pickChallenge(parseWwwAuthenticate('Negotiate, Basic realm="x"'))?.scheme).toBe('basic');
    expect(pickChallenge(parseWwwAuthenticate('Negotiate abc'))).toBeUndefined();
    // A Bearer challenge without a realm cannot be answered.
    expect(pickChallenge(parseWwwAuthenticate('Bearer service="x"'))).toBeUndefined();
  });
});
