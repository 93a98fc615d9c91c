import { constants } from 'node:os';
import { dirname } from 'node:path';
import { StrataError } from '../src/internals.js';
import { runCli } from './run.js';

// The one place that touches the process for a command: argv, env, cwd, the standard streams, signals and
// the exit code. main.ts loads it (bundled, or as it is); no top-level await, since the bundle is CommonJS.
// SIGINT/SIGTERM abort the command through its AbortSignal: temp files go on the way out, no name is
// written, and the exit status is 128 + the signal's number, as a shell reports a killed program. A
// second signal, or a command still running well after the first, ends the process at once.
const interrupt = new AbortController();
let received: NodeJS.Signals | undefined;
const signalled = (name: NodeJS.Signals): number => 128 + constants.signals[name];
for (const name of ['SIGINT', 'SIGTERM'] as const) {
  process.on(name, () => {
    if (received !== undefined) process.exit(signalled(received));
    received = name;
    interrupt.abort(new StrataError('E_ABORTED', `interrupted by ${name}`));
    setTimeout(() => process.exit(signalled(name)), 10_000).unref();
  });
}

// A reader that goes away (`strata images | head -1`) ends the output, not in a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(received !== undefined ? signalled(received) : 0);
  throw error;
});

void runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  isTty: process.stdout.isTTY === true,
  isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
  ...(process.argv[1] !== undefined ? { programDir: dirname(dirname(process.argv[1])) } : {}),
  signal: interrupt.signal,
}).then((code) => {
  process.exitCode = received !== undefined ? signalled(received) : code;
});
