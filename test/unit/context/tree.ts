import { mkdir, mkdtemp, realpath, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A tree spec: string = file content, { link } = symlink, {} nested object = directory. */
export type Spec = { [name: string]: string | { link: string } | Spec };

export async function tempBase(prefix: string): Promise<string> {
  return realpath(await mkdtemp(join(tmpdir(), `strata-context-${prefix}-`)));
}

export async function makeTree(dir: string, spec: Spec): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, value] of Object.entries(spec)) {
    const path = join(dir, name);
    await mkdir(dirname(path), { recursive: true });
    if (typeof value === 'string') await writeFile(path, value);
    else if (typeof value.link === 'string') await symlink(value.link, path);
    else await makeTree(path, value as Spec);
  }
}
