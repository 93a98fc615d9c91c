import { expect } from 'vitest';
import { StrataError } from '../../src/errors/index.js';

/** The StrataError `fn` throws; fails the test when it throws anything else or nothing. */
export function thrown(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error('expected a StrataError');
}
