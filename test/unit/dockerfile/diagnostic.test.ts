import { describe, expect, it } from 'vitest';
import { DockerfileError, formatDiagnostic, parseDockerfile } from '../../../src/dockerfile/index.js';

function failure(text: string, file = 'Dockerfile'): DockerfileError {
  try {
    parseDockerfile(text, { file });
  } catch (err) {
    if (err instanceof DockerfileError) return err;
    throw err;
  }
  throw new Error('expected a DockerfileError');
}

describe('formatDiagnostic', () => {
  it('renders FILE:LINE:COL, the line and a caret under the column', () => {
    const text = 'FROM a\nCOPY --bogus=1 a b\n';
    expect(formatDiagnostic(text, failure(text, 'app/Dockerfile'))).toBe('app/Dockerfile:2:6: unknown flag: bogus\n  COPY --bogus=1 a b\n       ^');
  });

  it('keeps tabs so the caret lines up, and drops CR', () => {
    const text = 'FROM a\r\n\tRUNX x\r\n';
    expect(formatDiagnostic(text, failure(text))).toBe('Dockerfile:2:2: unknown instruction: RUNX\n  \tRUNX x\n  \t^');
  });

  it('is a StrataError with a stable code, the location in fields and a hint', () => {
    const e = failure('FROM a\nCOPPY a b\n');
    expect(e).toMatchObject({ code: 'E_DOCKERFILE_INSTRUCTION', file: 'Dockerfile', line: 2, column: 1, endLine: 2 });
    expect(e.hint).toBe('did you mean COPY?');
  });
});
