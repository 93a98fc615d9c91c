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

describe('upload Range header', () => {
  it("reads the next offset, with distribution's 0-0 as empty", async () => {
    const { parseUploadRange } = await import('../../../src/registry/upload-session.js');
    expect(parseUploadRange('0-1048575')).toBe(1048576);
    expect(parseUploadRange('bytes=0-99')).toBe(100);
    expect(parseUploadRange('0-0')).toBe(0);
    expect(parseUploadRange('0--1')).toBe(0);
    expect(parseUploadRange(null)).toBeUndefined();
    expect(parseUploadRange('5-10')).toBeUndefined();
  });
});

describe('spec error bodies', () => {
  it('maps codes and keeps messages', async () => {
    const { registryResponseError, parseSpecErrors } = await import('../../../src/registry/errors.js');
    expect(parseSpecErrors('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}')).toEqual([
      { code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' },
    ]);
    expect(parseSpecErrors('<html>')).toEqual([]);
    const ctx = { registry: 'r.io', repository: 'a/b', what: 'blob sha256:x' };
    expect(registryResponseError(ctx, 404, '{"errors":[{"code":"BLOB_UNKNOWN","message":"m"}]}')).toMatchObject({
      code: 'E_REGISTRY_NOT_FOUND',
      message: 'registry r.io, repository a/b, blob sha256:x: BLOB_UNKNOWN: m (HTTP 404)',
    });
    expect(registryResponseError(ctx, 400, '{"errors":[{"code":"DIGEST_INVALID","message":"m"}]}').code).toBe('E_DIGEST_MISMATCH');
    expect(registryResponseError(ctx, 415, '').code).toBe('E_REGISTRY_UNSUPPORTED');
    expect(registryResponseError(ctx, 429, '')).toMatchObject({ code: 'E_REGISTRY', hint: expect.stringContaining('rate limiting') });
    expect(registryResponseError(ctx, 403, '')).toMatchObject({
      code: 'E_REGISTRY_DENIED',
      message: 'registry r.io, repository a/b, blob sha256:x: denied (HTTP 403)',
    });
  });
});
