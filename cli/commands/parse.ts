import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { DockerfileError, StrataError, dockerfileAstToJson, formatDiagnostic, parseDockerfile, parseDockerfileAst } from '../../src/internals.js';
import type { CliContext } from '../context.js';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

function readDockerfile(path: string, cwd: string): Buffer {
  try {
    return readFileSync(resolve(cwd, path));
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
    const why = code === 'ENOENT' ? 'no such file or directory' : code === 'EISDIR' ? 'is a directory' : err instanceof Error ? err.message : String(err);
    throw new StrataError(code === 'ENOENT' ? 'E_NOT_FOUND' : 'E_IO', `cannot read ${path}: ${why}`, {
      hint: 'pass the Dockerfile with -f PATH, or -f - to read it from standard input',
      cause: err,
    });
  }
}

/** `strata parse`: the Dockerfile as JSON, typed and grouped in stages, or BuildKit's raw tree with --ast. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('parse')
    .description('parse a Dockerfile and print it as JSON: typed instructions in stages, or the raw tree with --ast')
    .argument('[file]', 'the Dockerfile (same as -f); - reads standard input')
    .option('-f, --file <path>', 'the Dockerfile; - reads standard input', 'Dockerfile')
    .option('--ast', "print BuildKit's raw parse tree instead of typed instructions")
    .action(async (positional: string | undefined, flags: { file: string; ast?: boolean }) => {
      const path = positional ?? flags.file;
      const bytes = path === '-' ? await readAll(ctx.stdin) : readDockerfile(path, ctx.cwd);
      // Invalid UTF-8 becomes U+FFFD, as Go's string handling would show it.
      const text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(bytes);
      const file = path === '-' ? '<stdin>' : path;
      try {
        const out = flags.ast === true ? dockerfileAstToJson(parseDockerfileAst(text, { file }).nodes) : parseDockerfile(text, { file });
        ctx.stdout.write(JSON.stringify(out, null, 2) + '\n');
      } catch (err) {
        if (err instanceof DockerfileError) {
          throw new StrataError(err.code, formatDiagnostic(text, err), err.hint === undefined ? { cause: err } : { hint: err.hint, cause: err });
        }
        throw err;
      }
    });
}
