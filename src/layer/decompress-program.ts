import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { StrataError } from '../errors/index.js';

/**
 * Decompresses a bzip2 or xz file with Debian's program of that name (Node has neither), into `output`:
 * for ADD of a local archive and for a tar build context. `what` names the file in errors.
 */
export async function decompressFileWith(program: 'bzip2' | 'xz', input: string, output: string, what: string): Promise<void> {
  const child = spawn(program, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (cause) =>
      reject(
        new StrataError('E_BUILD', `${what}: the ${program} program is needed to unpack it`, {
          hint: `install it (apt-get install ${program === 'xz' ? 'xz-utils' : 'bzip2'})`,
          cause,
        }),
      ),
    );
    child.on('close', (code) => resolve(code ?? 1));
  });
  await Promise.all([
    pipeline(createReadStream(input), child.stdin),
    pipeline(child.stdout, createWriteStream(output)),
    exited.then((code) => {
      if (code !== 0) throw new StrataError('E_LAYER_INVALID', `${what}: ${program} could not decompress it (exit ${code})`);
    }),
  ]);
}
