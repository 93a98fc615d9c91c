import { dirname } from 'node:path';
import { runCli } from './run.js';

// The one place that touches the process for a command: argv, env, cwd, the standard streams and the
// exit code. main.ts loads it (bundled, or as it is); no top-level await, since the bundle is CommonJS.
void runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  isTty: process.stdout.isTTY === true,
  isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
  ...(process.argv[1] !== undefined ? { programDir: dirname(dirname(process.argv[1])) } : {}),
}).then((code) => {
  process.exitCode = code;
});
