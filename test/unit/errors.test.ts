import { describe, expect, it } from 'vitest';
import { DockerfileError } from '../../src/dockerfile/index.js';
import { StrataError, wrapError } from '../../src/errors/index.js';

describe('wrapError adds context by wrapping', () => {
  it('keeps the code, the hint and the failure itself, with its type and location', () => {
    const inner = new DockerfileError('E_DOCKERFILE_INSTRUCTION', 'bad flag', { file: 'Dockerfile', line: 3, column: 1 }, { hint: 'drop it' });
    const outer = wrapError(inner, 'stage app');
    expect(outer).toBeInstanceOf(StrataError);
    const e = outer as StrataError;
    expect(e.code).toBe('E_DOCKERFILE_INSTRUCTION');
    expect(e.hint).toBe('drop it');
    expect(e.context).toBe('stage app');
    expect(e.message).toBe('stage app: Dockerfile:3:1: bad flag');
    expect(e.cause).toBe(inner);
    expect((e.cause as DockerfileError).line).toBe(3);
  });

  it('takes a hint of its own when given, and passes anything else through', () => {
    const e = wrapError(new StrataError('E_NOT_FOUND', 'no such image'), 'Dockerfile:2: --from=x', 'name a stage') as StrataError;
    expect([e.hint, e.message]).toEqual(['name a stage', 'Dockerfile:2: --from=x: no such image']);
    const plain = new Error('boom');
    expect(wrapError(plain, 'ctx')).toBe(plain);
    expect(new StrataError('E_IO', 'x').context).toBeUndefined();
  });
});
