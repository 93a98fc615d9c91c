import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { StrataError } from '../errors/index.js';
import { formatPlatform, hostPlatform, normalizePlatform, type Platform } from '../oci/index.js';

const QEMU_NAMES: Record<string, string> = {
  amd64: 'x86_64',
  arm64: 'aarch64',
  arm: 'arm',
  '386': 'i386',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64le: 'mips64el',
  loong64: 'loongarch64',
};

/**
 * RUN for another architecture needs the kernel to run its binaries through an emulator
 * (binfmt_misc, usually qemu-user-static). Says which handler is missing instead of letting the
 * command die with "exec format error".
 */
export function checkRunPlatform(platform: Platform, at: string, binfmtDir = '/proc/sys/fs/binfmt_misc', host: Platform = hostPlatform()): void {
  const wanted = normalizePlatform(platform);
  const native = normalizePlatform(host);
  if (wanted.architecture === native.architecture || (native.architecture === 'amd64' && wanted.architecture === '386')) return;
  const qemu = QEMU_NAMES[wanted.architecture] ?? wanted.architecture;
  if (hasHandler(binfmtDir, qemu)) return;
  throw new StrataError(
    'E_RUN_UNSUPPORTED',
    `${at}: RUN for ${formatPlatform(wanted)} needs emulation, and this ${formatPlatform(native)} machine has no binfmt_misc handler for ${qemu}`,
    {
      hint: 'install qemu-user-static and binfmt-support (apt-get install qemu-user-static binfmt-support), or build this platform on a native runner; stages without RUN need no emulation',
    },
  );
}

function hasHandler(dir: string, qemu: string): boolean {
  if (!existsSync(dir)) return false;
  try {
    for (const name of readdirSync(dir)) {
      if (name === 'register' || name === 'status') continue;
      if (name === `qemu-${qemu}`) return enabled(`${dir}/${name}`);
      const text = readFileSync(`${dir}/${name}`, 'utf8');
      if (new RegExp(`interpreter .*qemu-${qemu}(-static)?\\b`).test(text)) return enabled(`${dir}/${name}`);
    }
  } catch {
    return false;
  }
  return false;
}

function enabled(file: string): boolean {
  try {
    return readFileSync(file, 'utf8').startsWith('enabled');
  } catch {
    return false;
  }
}
