import { describe, expect, it } from 'vitest';
import { mergeScopes, pullScopes, pushScopes, repositoryScope, scopesCover } from '../../../src/registry/index.js';

describe('scopes', () => {
  it('builds pull and push scopes, push first, with pull for mount sources', () => {
    expect(pullScopes('library/alpine')).toEqual(['repository:library/alpine:pull']);
    expect(pushScopes('me/app')).toEqual(['repository:me/app:push,pull']);
    expect(pushScopes('me/app', ['library/alpine', 'me/app', 'other/base'])).toEqual([
      'repository:me/app:push,pull',
      'repository:library/alpine:pull',
      'repository:other/base:pull',
    ]);
    expect(repositoryScope('x', ['pull', 'push'])).toBe('repository:x:push,pull');
  });

  it('merges scopes by resource, keeping first-seen order', () => {
    expect(mergeScopes(['repository:a:pull'], ['repository:b:pull', 'repository:a:push'])).toEqual(['repository:a:push,pull', 'repository:b:pull']);
    expect(mergeScopes(['repository:a:push,pull'], ['repository:a:pull'])).toEqual(['repository:a:push,pull']);
    expect(mergeScopes(['registry:catalog:*'], [])).toEqual(['registry:catalog:*']);
  });

  it('knows when a token covers a request', () => {
    expect(scopesCover(['repository:a:push,pull'], ['repository:a:pull'])).toBe(true);
    expect(scopesCover(['repository:a:pull'], ['repository:a:push,pull'])).toBe(false);
    expect(scopesCover(['repository:a:pull'], ['repository:b:pull'])).toBe(false);
    expect(scopesCover(['repository:a:*'], ['repository:a:push'])).toBe(true);
    expect(scopesCover(['repository:a:pull', 'repository:b:pull'], ['repository:b:pull', 'repository:a:pull'])).toBe(true);
    expect(scopesCover([], [])).toBe(true);
  });
});
